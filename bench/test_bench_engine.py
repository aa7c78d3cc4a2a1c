"""Benchmarks of the NumPy scenario engine (run with ``pytest bench -m bench``).

Throughput in project-scenario-quarters per second and peak memory, each measured in a fresh
subprocess (``bench/bench_engine.py``): the engine against the materialising baseline at
1,000 scenarios × 60 projects × H quarters (every project to its own end, H about 360: the
baseline's arrays of that shape bound the size), 10,000 scenarios of the bundled catalog, and
the deployment plan's engine columns (the bundled catalog expanded to its start options, about
630 columns) at the plan's 2,000 optimisation scenarios on 1 and 2 threads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import (
    PLAN_SCENARIOS,
    TARGET_MEMORY_RATIO,
    TARGET_PLAN_SECONDS,
    TARGET_THROUGHPUT_RATIO,
    bundled_available,
    measure,
)

pytestmark = pytest.mark.bench

SCENARIOS = 1_000


@pytest.fixture(scope="module")
def baseline():
    return measure("baseline", "synthetic60", SCENARIOS)


def test_engine_vs_materialising_baseline(benchmark, baseline):
    engine = benchmark.pedantic(
        measure, args=("engine", "synthetic60", SCENARIOS), rounds=1, iterations=1
    )
    speed = engine["throughput"] / baseline["throughput"]
    memory = baseline["peak_mib"] / max(engine["peak_mib"], 1.0)
    benchmark.extra_info.update(
        {
            "engine_psq_per_s": engine["throughput"],
            "baseline_psq_per_s": baseline["throughput"],
            "engine_peak_mib": engine["peak_mib"],
            "baseline_peak_mib": baseline["peak_mib"],
            "throughput_ratio": speed,
            "memory_ratio": memory,
        }
    )
    assert speed >= TARGET_THROUGHPUT_RATIO
    assert memory >= TARGET_MEMORY_RATIO


@pytest.mark.skipif(not bundled_available(), reason="the bundled catalog is not installed")
def test_bundled_catalog_10k(benchmark):
    result = benchmark.pedantic(measure, args=("engine", "bundled", 10_000), rounds=1, iterations=1)
    benchmark.extra_info.update(result)


@pytest.mark.skipif(not bundled_available(), reason="the bundled catalog is not installed")
def test_plan_start_options_on_two_threads(benchmark):
    """The plan-sized case on 2 threads (timed) and on 1: the speed-up from the second core."""
    two = benchmark.pedantic(
        measure, args=("engine", "plan", PLAN_SCENARIOS, 2), rounds=1, iterations=1
    )
    one = measure("engine", "plan", PLAN_SCENARIOS, 1)
    benchmark.extra_info.update(
        {
            "columns": two["projects"],
            "seconds_2_threads": two["seconds"],
            "seconds_1_thread": one["seconds"],
            "threads_speedup": one["seconds"] / two["seconds"],
        }
    )
    assert two["seconds"] <= TARGET_PLAN_SECONDS


@pytest.mark.skipif(not bundled_available(), reason="the bundled catalog is not installed")
def test_compiled_quarter_against_numpy_calls(benchmark):
    """The plan-sized case on 1 thread, the quarter compiled by Numba (timed) and in NumPy calls
    (``PORTOPT_NUMBA=0``): the same doubles (tests/engine/test_engine_compiled.py), the ratio
    here. A warm-up run first fills Numba's cache, so the timed run loads the kernels, as every run
    after a machine's first does."""
    measure("engine", "plan", 10, 1)
    fast = benchmark.pedantic(
        measure, args=("engine", "plan", PLAN_SCENARIOS, 1), rounds=1, iterations=1
    )
    slow = measure("numpy", "plan", PLAN_SCENARIOS, 1)
    benchmark.extra_info.update(
        {
            "columns": fast["projects"],
            "seconds_compiled": fast["seconds"],
            "seconds_numpy": slow["seconds"],
            "compiled_speedup": slow["seconds"] / fast["seconds"],
        }
    )
    assert fast["seconds"] < slow["seconds"]
