"""Throughput and peak memory of the NumPy scenario engine against the materialising baseline.

    python bench/bench_engine.py            # the full table (1k × 60 × H, bundled 10k)
    python bench/bench_engine.py --quick    # a smaller version (500 and 1k scenarios)

Every project runs to its own end, so ``H`` (the simulated quarters) is the catalog's longest
start + build + life plus the delay cap: about 360 quarters. The baseline holds several
(scenarios × projects × quarters) arrays, which is what bounds the synthetic case's size.

Each measurement runs in a fresh subprocess: wall time of the generation alone, and peak
memory as the rise of the process's peak RSS (``ru_maxrss``) over its RSS just before the run
(after imports and input preparation). Throughput is in project-scenario-quarters per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_THROUGHPUT_RATIO = 3.0
TARGET_MEMORY_RATIO = 5.0
TARGET_BUNDLED_SECONDS = 20.0


def synthetic_catalog(n_projects: int = 60, seed: int = 0):
    """The test suite's small catalog replicated to ``n_projects``, costs and betas perturbed."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_small_catalog, make_catalog

    small = build_small_catalog()
    base = small.projects.reset_index().to_dict("records")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_projects):
        row = dict(base[i % len(base)])
        row["id"] = f"{row['id']}_{i}"
        row["base_cost_usd"] *= float(np.exp(0.3 * rng.standard_normal()))
        row["price_beta"] = round(row["price_beta"] * (1 + 0.2 * rng.standard_normal()), 3)
        row["spread"] = round(float(rng.uniform(0.01, 0.03)), 3)
        row["earliest_start"] = f"{2026 + int(rng.integers(0, 4))}Q{int(rng.integers(1, 5))}"
        rows.append(row)
    return make_catalog(rows)


def _inputs(case: str):
    from portopt.catalog import load_catalog
    from portopt.config import RunConfig
    from portopt.engine.inputs import prepare_inputs

    config = RunConfig()
    catalog = synthetic_catalog(60) if case == "synthetic60" else load_catalog(None)
    return prepare_inputs(catalog, config), config


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(impl: str, case: str, n: int) -> dict[str, float]:
    """Run one measurement in this process (called in a subprocess by :func:`measure`)."""
    inputs, config = _inputs(case)
    if impl == "engine":
        from portopt.engine import numpy_engine as engine_numpy

        def go() -> object:
            return engine_numpy.run(inputs, range(n), memory_mb=config.scenarios.chunk_memory_mb)
    else:
        sys.path.insert(0, str(HERE))
        from baseline_materialising import simulate

        def go() -> object:
            return simulate(inputs, range(n))

    before = _rss_mib()
    t0 = time.perf_counter()
    go()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    psq = n * inputs.n_projects * inputs.horizon
    return {
        "impl": impl,
        "case": case,
        "scenarios": n,
        "projects": inputs.n_projects,
        "quarters": inputs.horizon,
        "seconds": seconds,
        "throughput": psq / seconds,
        "peak_mib": max(peak - before, 0.0),
    }


def measure(impl: str, case: str, n: int) -> dict[str, float]:
    """One measurement in a fresh Python process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", impl, case, str(n)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bundled_available() -> bool:
    from portopt.catalog import bundled_path

    return (bundled_path() / "projects.csv").is_file()


def table(quick: bool = False) -> list[dict[str, float]]:
    n_syn, n_bundled = (500, 1000) if quick else (1000, 10000)
    rows = [measure("engine", "synthetic60", n_syn), measure("baseline", "synthetic60", n_syn)]
    if bundled_available():
        rows.append(measure("engine", "bundled", n_bundled))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("IMPL", "CASE", "N"))
    args = parser.parse_args()
    if args.child:
        impl, case, n = args.child
        print(json.dumps(child(impl, case, int(n))))
        return
    rows = table(args.quick)
    print(f"{'case':<12} {'impl':<9} {'S×P×Q':>16} {'seconds':>8} {'Mpsq/s':>8} {'peak MiB':>9}")
    for r in rows:
        shape = f"{r['scenarios']}×{r['projects']}×{r['quarters']}"
        print(
            f"{r['case']:<12} {r['impl']:<9} {shape:>16} {r['seconds']:8.2f}"
            f" {r['throughput'] / 1e6:8.1f} {r['peak_mib']:9.0f}"
        )
    eng, base = rows[0], rows[1]
    speed = eng["throughput"] / base["throughput"]
    mem = base["peak_mib"] / max(eng["peak_mib"], 1.0)
    print(
        f"engine / baseline: throughput x{speed:.1f} (target >= {TARGET_THROUGHPUT_RATIO:g}),"
        f" peak memory 1/{mem:.1f} (target <= 1/{TARGET_MEMORY_RATIO:g})"
    )
    if len(rows) > 2:
        print(
            f"bundled catalog: {rows[2]['scenarios']} scenarios in {rows[2]['seconds']:.1f} s"
            f" (target <= {TARGET_BUNDLED_SECONDS:g} s)"
        )


if __name__ == "__main__":
    main()
