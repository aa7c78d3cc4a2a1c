"""Philox4x32-10 (Random123) vectorised in NumPy, with the uniforms and normals of the model.

One call maps a 128-bit counter and a 64-bit key to four 32-bit words. The counter is
``(scenario, entity, quarter, purpose)`` and the key is the seed (docs/scenario-model.md), so
every draw of the scenario model is addressed, never sequenced: a scenario, a project or a
quarter can be generated alone and gives the same numbers as in any batch. ``kernels/philox.cuh``
is the CUDA twin.

Each round, with the multipliers :math:`M_0 = \\mathtt{0xD2511F53}`,
:math:`M_1 = \\mathtt{0xCD9E8D57}` and the 64-bit products split into high and low words,

.. math::
    (x_0, x_1, x_2, x_3) \\leftarrow
    (\\mathrm{hi}(M_1 x_2) \\oplus x_1 \\oplus k_0,\\ \\mathrm{lo}(M_1 x_2),\\
     \\mathrm{hi}(M_0 x_0) \\oplus x_3 \\oplus k_1,\\ \\mathrm{lo}(M_0 x_0))

and the key is bumped by the Weyl constants :math:`(\\mathtt{0x9E3779B9}, \\mathtt{0xBB67AE85})`
between rounds.
"""

from __future__ import annotations

import numpy as np

from portopt.engine import compiled

__all__ = [
    "TWO_PI",
    "box_muller",
    "key_of_seed",
    "normals",
    "philox4x32",
    "philox_words",
    "round_keys",
    "uniforms",
]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
TWO_PI = 6.283185307179586
"""2π as the double both engines multiply by (docs/scenario-model.md)."""
_TWO_M53 = 1.1102230246251565e-16  # 2^-53


def key_of_seed(seed: int) -> np.ndarray:
    """The Philox key of a seed ``0 <= seed < 2^64``: ``(seed mod 2^32, seed div 2^32)``."""
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must lie in [0, 2^64), got {seed}")
    return np.array([int(seed) & 0xFFFFFFFF, int(seed) >> 32], dtype=np.uint32)


def round_keys(key: np.ndarray) -> np.ndarray:
    """The ten round keys of ``key`` (2,) as a (10, 2) uint64 array: the key bumped by the
    Weyl constants between rounds."""
    keys = np.empty((10, 2), dtype=np.uint64)
    k0, k1 = int(key[0]), int(key[1])
    for rnd in range(10):
        keys[rnd] = (k0, k1)
        k0 = (k0 + _W0) & 0xFFFFFFFF
        k1 = (k1 + _W1) & 0xFFFFFFFF
    return keys


def philox_words(
    c0: np.ndarray | int,
    c1: np.ndarray | int,
    c2: np.ndarray | int,
    c3: np.ndarray | int,
    key: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Philox4x32-10 of the counters ``(c0, c1, c2, c3)`` (broadcast together).

    Returns the four output words as uint64 arrays holding 32-bit values (the engine's working
    form: the 32×32-bit products need 64 bits, and keeping the words wide saves casts).
    """
    x0, x1, x2, x3 = np.broadcast_arrays(
        *(np.asarray(c, dtype=np.uint64) for c in (c0, c1, c2, c3))
    )
    # the round keys: the key bumped by the Weyl constants between rounds
    keys = round_keys(key)
    if compiled.AVAILABLE and x0.size:
        words = [np.array(x, dtype=np.uint64, order="C") for x in (x0, x1, x2, x3)]
        compiled.philox(*(w.reshape(-1) for w in words), keys)
        return words[0], words[1], words[2], words[3]
    p0 = np.empty(x0.shape, dtype=np.uint64)
    p1 = np.empty(x0.shape, dtype=np.uint64)
    for rnd in range(10):
        k0, k1 = keys[rnd]
        np.multiply(x0, _M0, out=p0)
        np.multiply(x2, _M1, out=p1)
        # new x0 = hi(p1) ^ x1 ^ k0; new x2 = hi(p0) ^ x3 ^ k1; new x1 = lo(p1); new x3 = lo(p0)
        n0 = np.right_shift(p1, _S32)
        n0 ^= x1
        n0 ^= k0
        n2 = np.right_shift(p0, _S32)
        n2 ^= x3
        n2 ^= k1
        if rnd == 0:  # the inputs may be broadcast views: never write into them
            x1 = np.empty(x0.shape, dtype=np.uint64)
            x3 = np.empty(x0.shape, dtype=np.uint64)
        np.bitwise_and(p1, _LO, out=x1)
        np.bitwise_and(p0, _LO, out=x3)
        x0, x2 = n0, n2
    return x0, x1, x2, x3


def philox4x32(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 of ``counter`` (n, 4) uint32 under ``key`` (2,) uint32, as (n, 4) uint32."""
    counter = np.asarray(counter, dtype=np.uint32)
    if counter.ndim != 2 or counter.shape[1] != 4:
        raise ValueError(f"counter must have shape (n, 4), got {counter.shape}")
    key = np.asarray(key, dtype=np.uint32)
    words = philox_words(counter[:, 0], counter[:, 1], counter[:, 2], counter[:, 3], key)
    return np.stack(words, axis=1).astype(np.uint32)


def _u53(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    # ((hi >> 5) 2^26 + (lo >> 6) + 0.5) 2^-53: the integer is below 2^53, so exact in a double
    n = np.right_shift(hi, np.uint64(5))
    n <<= np.uint64(26)
    n |= np.right_shift(lo, np.uint64(6))
    u = np.array(n, dtype=np.float64)  # an array even for 0-d input (in-place ops below)
    u += 0.5
    u *= _TWO_M53
    return u


def uniforms_of_words(
    x: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """``(ua, ub)`` from four Philox words: ``ua`` from ``x0, x1``, ``ub`` from ``x2, x3``.

    .. math:: u = (\\lfloor x_{hi} / 2^5 \\rfloor 2^{26} + \\lfloor x_{lo} / 2^6 \\rfloor + 0.5)
              \\, 2^{-53} \\in (0, 1]
    """
    return _u53(x[0], x[1]), _u53(x[2], x[3])


def normals_of_words(
    x: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """``(z0, z1)`` by Box-Muller from the uniforms of four Philox words.

    .. math:: r = \\sqrt{-2 \\ln u_a}, \\quad z_0 = r \\cos(2\\pi u_b), \\quad
              z_1 = r \\sin(2\\pi u_b)

    Every transcendental call runs on a contiguous float64 array, so NumPy takes the same
    (SIMD or scalar) path for every element whatever the array's length: the draws of a
    scenario are bitwise the same alone or in a batch.
    """
    ua, ub = uniforms_of_words(x)
    return box_muller(ua, ub)


def box_muller(ua: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(z0, z1)`` from the uniforms ``ua``, ``ub`` (contiguous float64 arrays, overwritten:
    ``ub`` becomes ``z1``) by NumPy's ``log``, ``sqrt``, ``cos`` and ``sin``, in this order."""
    np.log(ua, out=ua)
    ua *= -2.0
    r = np.sqrt(ua, out=ua)
    ub *= TWO_PI
    z0 = np.cos(ub)
    np.sin(ub, out=ub)
    z0 *= r
    ub *= r
    return z0, ub


def uniforms(
    scenario: np.ndarray | int,
    entity: np.ndarray | int,
    quarter: np.ndarray | int,
    purpose: np.ndarray | int,
    key: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(ua, ub)`` of counter ``(scenario, entity, quarter, purpose)`` (broadcast together)."""
    return uniforms_of_words(philox_words(scenario, entity, quarter, purpose, key))


def normals(
    scenario: np.ndarray | int,
    entity: np.ndarray | int,
    quarter: np.ndarray | int,
    purpose: np.ndarray | int,
    key: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(z0, z1)`` of counter ``(scenario, entity, quarter, purpose)`` (broadcast together)."""
    return normals_of_words(philox_words(scenario, entity, quarter, purpose, key))
