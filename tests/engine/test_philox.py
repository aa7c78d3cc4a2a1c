"""Philox4x32-10 against Random123's known-answer vectors, and the uniforms and normals."""

from __future__ import annotations

import numpy as np
import pytest

from portopt.catalog import chokepoint_entity, fnv1a32, project_entity
from portopt.engine.philox import (
    key_of_seed,
    normals,
    philox4x32,
    philox_words,
    uniforms,
)

# Random123 tests/kat_vectors: counter[4] key[2] -> result[4], word 0 first.
KAT = [
    (
        (0x00000000, 0x00000000, 0x00000000, 0x00000000),
        (0x00000000, 0x00000000),
        (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8),
    ),
    (
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_known_answer_vectors(counter, key, expected):
    out = philox4x32(np.array([counter], dtype=np.uint32), np.array(key, dtype=np.uint32))
    assert out.dtype == np.uint32
    assert tuple(int(w) for w in out[0]) == expected


def test_vectorised_equals_one_at_a_time():
    rng = np.random.default_rng(1)
    counters = rng.integers(0, 2**32, size=(257, 4), dtype=np.uint64).astype(np.uint32)
    key = np.array([0xDEADBEEF, 0x12345678], dtype=np.uint32)
    batch = philox4x32(counters, key)
    for i in (0, 1, 128, 256):
        assert (philox4x32(counters[i : i + 1], key)[0] == batch[i]).all()


def test_broadcast_words_do_not_write_into_inputs():
    scen = np.arange(5, dtype=np.uint64)
    before = scen.copy()
    philox_words(
        scen[:, None],
        7,
        3,
        np.arange(3, dtype=np.uint64)[None, :],
        np.array([1, 2], dtype=np.uint32),
    )
    assert (scen == before).all()


def test_key_of_seed():
    assert key_of_seed(0).tolist() == [0, 0]
    assert key_of_seed(2**32 + 5).tolist() == [5, 1]
    assert key_of_seed(2**64 - 1).tolist() == [2**32 - 1, 2**32 - 1]
    with pytest.raises(ValueError):
        key_of_seed(2**64)


def test_uniforms_open_at_zero_and_in_range():
    key = key_of_seed(20260217)
    ua, ub = uniforms(np.arange(100_000, dtype=np.uint64), 0, 0, 4, key)
    for u in (ua, ub):
        assert (u > 0).all() and (u <= 1).all()
        assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)


def test_uniform_formula_by_hand():
    key = np.array([0, 0], dtype=np.uint32)
    x0, x1, x2, x3 = (int(w) for w in philox4x32(np.zeros((1, 4), dtype=np.uint32), key)[0])
    ua, ub = uniforms(0, 0, 0, 0, key)
    assert float(ua) == ((x0 >> 5) * 2.0**26 + (x1 >> 6) + 0.5) * 2.0**-53
    assert float(ub) == ((x2 >> 5) * 2.0**26 + (x3 >> 6) + 0.5) * 2.0**-53


def test_box_muller_by_hand():
    key = key_of_seed(7)
    ua, ub = uniforms(3, 5, 11, 2, key)
    z0, z1 = normals(3, 5, 11, 2, key)
    r = np.sqrt(-2.0 * np.log(ua))
    assert float(z0) == float(r * np.cos(6.283185307179586 * ub))
    assert float(z1) == float(r * np.sin(6.283185307179586 * ub))


def test_normals_moments():
    z0, z1 = normals(np.arange(200_000, dtype=np.uint64), 9, 1, 0, key_of_seed(3))
    z = np.concatenate([z0, z1])
    se = 1 / np.sqrt(z.size)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1) < 5 * np.sqrt(2) * se
    assert abs(np.corrcoef(z0, z1)[0, 1]) < 5 / np.sqrt(z0.size)


def test_entities():
    # FNV-1a test vectors (Fowler/Noll/Vo): "" and "a"
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert project_entity("x") >= 0x80000000
    assert 0x40000000 <= chokepoint_entity("x") < 0x80000000
