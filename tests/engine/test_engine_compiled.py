"""The compiled quarter (portopt/engine/compiled.py): the NumPy engine's numbers, bit for bit.

The Numba kernels step each (project, scenario) cell with the NumPy engine's operations in its
order, so every output double must be identical: on the plan's engine columns of the bundled
catalog (every start option), with a portfolio's cash, under each option that takes another
branch of the quarter (the stack's positions, carried interest apart, re-allocation, salvage,
the yen unhedged, quarterly compounding, fuel not following gas, no inflation, no senior debt),
and Philox's words with and without Numba.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine import compiled, philox
from portopt.engine import numpy_engine as engine_numpy
from portopt.engine.inputs import prepare_inputs
from portopt.planning import Plan

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="Numba is not available")

SCENARIOS = range(1000, 1040)
"""40 scenarios: enough for failures, salvage, coercion and the delay tails to occur."""

VARIANTS = {
    "default": [],
    "preferred, interest apart": ["deal.stack.position=preferred", "deal.shortfall_accrues=false"],
    "senior, re-allocation, salvage": [
        "deal.stack.position=senior",
        "deal.reallocation.enabled=true",
        "deal.reallocation.after_years=3",
        "scenarios.salvage_share=0.3",
    ],
    "unhedged, quarterly, no fuel": [
        "deal.funding.fx_parity=false",
        "deal.compounding=quarterly",
        "scenarios.fuel_follows_gas=false",
    ],
    "no inflation (real money), fuel": ["scenarios.inflation.mean=0", "scenarios.inflation.vol=0"],
}


def _plan_inputs(overrides: list[str]):
    config = Plan().prepare(load_config(None, overrides))
    catalog = load_catalog(config.catalog)
    columns = Plan().columns(catalog, config)
    return prepare_inputs(columns.engine_catalog, config)


def _assert_identical(a, b) -> None:
    for group in ("project", "scenario", "cash"):
        left, right = getattr(a, group), getattr(b, group)
        assert left.keys() == right.keys()
        for name, value in left.items():
            # bytes, so that a -0.0 against a +0.0 or a NaN's payload would count
            assert value.tobytes() == right[name].tobytes(), f"{group}.{name} differs"
    assert a.stress.tobytes() == b.stress.tobytes()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_compiled_equals_numpy_bitwise(variant: str) -> None:
    inputs = _plan_inputs(VARIANTS[variant])
    weights = np.linspace(0.5, 2.0, inputs.n_projects)
    numpy = engine_numpy.run(inputs, SCENARIOS, weights, compiled=False)
    fast = engine_numpy.run(inputs, SCENARIOS, weights, compiled=True)
    _assert_identical(numpy, fast)
    # the outputs are not trivially equal: the portfolio had cash, projects failed, floors paid
    assert np.abs(fast.cash["cash_japan"]).sum() > 0
    assert (fast.project["complete_q"] == -1).any()
    assert (fast.project["pv_floor"] > 0).any()


def test_compiled_equals_numpy_without_senior_debt_and_in_chunks() -> None:
    inputs = _plan_inputs([])
    inputs = dataclasses.replace(inputs, leverage=np.ones_like(inputs.leverage))
    numpy = engine_numpy.run(inputs, SCENARIOS, compiled=False)
    for chunk, workers in ((7, 1), (13, 2)):
        fast = engine_numpy.run(inputs, SCENARIOS, compiled=True, chunk=chunk, workers=workers)
        _assert_identical(numpy, fast)


def test_philox_words_with_and_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    key = philox.key_of_seed(0x243F6A8885A308D3)
    rng = np.random.default_rng(7)
    scen = rng.integers(0, 2**32, 300, dtype=np.uint64)[None, :]
    ent = np.arange(5, dtype=np.uint64)[:, None]
    fast = philox.philox_words(scen, ent, 17, 3, key)
    scalar = philox.philox_words(5, 6, 7, 8, key)
    monkeypatch.setattr(compiled, "AVAILABLE", False)
    slow = philox.philox_words(scen, ent, 17, 3, key)
    assert all(np.array_equal(f, s) for f, s in zip(fast, slow, strict=True))
    assert fast[0].shape == (5, 300)
    expected = philox.philox_words(5, 6, 7, 8, key)
    assert [int(np.asarray(w)) for w in scalar] == [int(np.asarray(w)) for w in expected]


@pytest.mark.parametrize("fast", [False, True], ids=["numpy", "compiled"])
def test_coercion_counted_over_the_whole_horizon(fast: bool) -> None:
    """The coercion episodes and the window's share, read off the spec (docs/scenario-model.md:
    purpose 4 of the market's counters, every quarter to the horizon), equal the engine's,
    which past a chunk's last stepped quarter advances the coercion state alone."""
    inputs = _plan_inputs(["scenarios.coercion.rate_per_year=0.5"])
    out = engine_numpy.run(inputs, SCENARIOS, compiled=fast)
    s = np.arange(SCENARIOS.start, SCENARIOS.stop, dtype=np.uint64)
    coerced = np.zeros(s.size, dtype=bool)
    episodes = np.zeros(s.size, dtype=np.int64)
    window = np.zeros(s.size)
    complete = out.project["complete_q"]
    last = int(np.where(complete >= 0, complete + inputs.life_quarters[None, :] - 1, -1).max())
    late = 0
    for t in range(inputs.horizon):
        ua, ub = philox.uniforms(s, 0, t, 4, inputs.key)
        started = ~coerced & (ua < inputs.p_start)
        coerced = np.where(coerced, ub >= inputs.p_end, started)
        episodes += started
        if inputs.w0 <= t <= inputs.w1:
            window += coerced
        if t > last:  # past every project's last operating quarter
            late += int(started.sum())
    assert np.array_equal(out.scenario["coercion_episodes"], episodes)
    assert np.array_equal(out.scenario["coercion_share"], window / inputs.window_len)
    assert late > 0  # episodes start after every project has ended: those quarters count
