"""The CUDA engine equals the NumPy engine for the same seed: discrete outputs equal, amounts
within 1e-9 relative. Marked ``gpu``; skipped unless CuPy imports and sees a CUDA device (the
skip lives here, not in conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from portopt.catalog import load_catalog
from portopt.config import RunConfig
from portopt.engine import numpy_engine as engine_numpy
from portopt.engine.inputs import prepare_inputs
from portopt.engine.scenario_set import CASH_FIELDS, PROJECT_FIELDS, SCENARIO_FIELDS, EngineResult


def _device() -> str | None:
    """Why the GPU tests cannot run, or None when they can."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA runtime that fails to load
        return f"CuPy does not import ({exc.__class__.__name__}); install portopt[cuda12|cuda13]"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no CUDA device"
    except Exception as exc:
        return f"CuPy sees no CUDA device ({exc.__class__.__name__})"
    return None


_WHY = _device()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_WHY is not None, reason=_WHY or "")]

_INTEGER_FIELDS = ("recoup_q", "complete_q", "coercion_episodes")


def assert_equal_engines(got: EngineResult, ref: EngineResult) -> None:
    """Discrete outputs equal; amounts within 1e-9 relative (atol 1e-12)."""
    pairs = {
        **{k: (got.project[k], ref.project[k]) for k in PROJECT_FIELDS},
        "stress": (got.stress, ref.stress),
        **{k: (got.scenario[k], ref.scenario[k]) for k in SCENARIO_FIELDS},
        **{k: (got.cash[k], ref.cash[k]) for k in ref.cash},
    }
    assert set(got.cash) == set(ref.cash)
    for name, (have, want) in pairs.items():
        assert isinstance(have, np.ndarray) and have.shape == want.shape, name
        if name in _INTEGER_FIELDS:
            np.testing.assert_array_equal(have, want, err_msg=name)
        else:
            np.testing.assert_allclose(have, want, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.fixture(scope="module")
def bundled_inputs():
    return prepare_inputs(load_catalog(), RunConfig())


def test_small_catalog(small_catalog) -> None:
    from portopt.engine import cupy_engine as engine_cupy

    inputs = prepare_inputs(small_catalog, RunConfig())
    scenarios = range(4096)
    assert_equal_engines(engine_cupy.run(inputs, scenarios), engine_numpy.run(inputs, scenarios))


def test_bundled_catalog_with_portfolio(bundled_inputs) -> None:
    from portopt.engine import cupy_engine as engine_cupy

    weights = np.linspace(1e8, 5e9, bundled_inputs.n_projects)
    scenarios = range(10_000, 14_096)
    got = engine_cupy.run(bundled_inputs, scenarios, weights=weights)
    ref = engine_numpy.run(bundled_inputs, scenarios, weights=weights, workers=4)
    assert set(got.cash) == set(CASH_FIELDS)
    assert_equal_engines(got, ref)


@pytest.mark.parametrize("block", [128, 256])
def test_chunks_and_block_sizes(bundled_inputs, block: int) -> None:
    """Forced small chunks (not a divisor of n) and another block size change nothing but the
    order of the portfolio sums: project outputs are bitwise those of one launch."""
    from portopt.engine import cupy_engine as engine_cupy

    weights = np.full(bundled_inputs.n_projects, 1e9)
    scenarios = range(500, 1500)
    whole = engine_cupy.run(bundled_inputs, scenarios, weights=weights)
    calls = []
    parts = engine_cupy.run(
        bundled_inputs,
        scenarios,
        weights=weights,
        chunk=77,
        block=block,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (1000, 1000) and len(calls) == 13
    for k in PROJECT_FIELDS:
        np.testing.assert_array_equal(parts.project[k], whole.project[k], err_msg=k)
    np.testing.assert_array_equal(parts.stress, whole.stress)
    assert_equal_engines(parts, engine_numpy.run(bundled_inputs, scenarios, weights=weights))


def test_long_horizon_needs_large_shared_memory(small_catalog) -> None:
    """A 400-quarter delay cap (H = 676) with a portfolio needs over 48 KiB of shared memory per
    block (the opt-in path)."""
    from portopt.engine import cupy_engine as engine_cupy

    config = RunConfig.model_validate({"scenarios": {"max_delay_quarters": 400}})
    inputs = prepare_inputs(small_catalog, config)
    weights = np.full(inputs.n_projects, 2e9)
    scenarios = range(256)
    got = engine_cupy.run(inputs, scenarios, weights=weights)
    assert_equal_engines(got, engine_numpy.run(inputs, scenarios, weights=weights))


def test_generate_scenarios_on_cupy(small_catalog) -> None:
    from portopt.engine.generate import generate_scenarios

    config = RunConfig()
    gpu = generate_scenarios(small_catalog, config, backend="cupy", scenarios=range(100, 612))
    cpu = generate_scenarios(small_catalog, config, backend="numpy", scenarios=range(100, 612))
    assert gpu.metadata["backend"] == "cupy"
    for k in PROJECT_FIELDS:
        if k in _INTEGER_FIELDS:
            np.testing.assert_array_equal(gpu.project[k], cpu.project[k], err_msg=k)
        else:
            np.testing.assert_allclose(gpu.project[k], cpu.project[k], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.stress, cpu.stress, rtol=1e-9, atol=1e-12)
