"""Throughput and peak memory of the NumPy scenario engine against the materialising baseline.

    python bench/bench_engine.py            # the full table (1k × 60 × H, bundled 10k)
    python bench/bench_engine.py --quick    # a smaller version (500 and 1k scenarios)
    python bench/bench_engine.py --plan [--scenarios N] [--old-ref REF] [--case bundled]
        [--repeat R]
        # the deployment plan's engine columns (the bundled catalog expanded to its start
        # options, :func:`plan_catalog`) on 1 and 2 threads; with --old-ref, the same runs of
        # the engine at git revision REF (a temporary worktree on PYTHONPATH) and the ratios;
        # --case bundled: the same for the bundled catalog itself

Every project runs to its own end, so ``H`` (the simulated quarters) is the catalog's longest
start + build + life plus the delay cap: about 360 quarters. The baseline holds several
(scenarios × projects × quarters) arrays, which is what bounds the synthetic case's size.

Each measurement runs in a fresh subprocess: wall time of the generation alone, and peak
memory as the rise of the process's peak RSS (``ru_maxrss``) over its RSS just before the run
(after imports and input preparation). Throughput is in project-scenario-quarters per second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_THROUGHPUT_RATIO = 3.0
TARGET_MEMORY_RATIO = 5.0
TARGET_BUNDLED_SECONDS = 20.0
PLAN_SCENARIOS = 2000
"""The plan's optimisation scenarios (``scenarios.optimisation`` of the default config)."""
TARGET_PLAN_SECONDS = 20.0
"""The plan-sized case (:func:`plan_catalog`, 2,000 scenarios) on 2 threads. About 40 s before
the active-prefix loop; 6.2 s measured after it (bench/RESULTS.md). The plan's whole run has a
60 s limit (goal 20 s)."""


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


PLAN_FIRST, PLAN_LAST = "2027Q2", "2029Q1"
"""Construction starts of the deployment plan's start options: the first after Japan's review of
a 2027Q1 proposal, the last before the 19 January 2029 deadline."""


def plan_catalog(first: str = PLAN_FIRST, last: str = PLAN_LAST):
    """The bundled catalog expanded to its start options, as the plan's engine columns.

    A committed project keeps its own row; a candidate gets one row ``"<id>~<quarter>"`` per
    construction start from ``max(earliest_start, first)`` to ``last`` (none when it cannot start
    by then), every column copied but ``earliest_start``, with ``entity_id`` = its id.
    """
    import pandas as pd

    from portopt.catalog import Catalog, load_catalog
    from portopt.config import quarter_index

    base = load_catalog(None)
    rows, index = [], []
    for pid, row in base.projects.iterrows():
        if row["status"] == "committed":
            rows.append({**row.to_dict(), "entity_id": pid})
            index.append(pid)
            continue
        lo = max(0, quarter_index(str(row["earliest_start"]), first))
        for k in range(lo, quarter_index(last, first) + 1):
            year, q = divmod(int(first[-1]) - 1 + k, 4)
            label = f"{int(first[:4]) + year}Q{q + 1}"
            rows.append({**row.to_dict(), "earliest_start": label, "entity_id": pid})
            index.append(f"{pid}~{label}")
    projects = pd.DataFrame(rows, index=pd.Index(index, name=base.projects.index.name))
    capacity = base.capacity.loc[[i.split("~")[0] for i in index]]
    capacity.index = projects.index
    return Catalog(projects, base.chokepoints, capacity, base.source + " (start options)")


def _inputs(case: str):
    from portopt.catalog import load_catalog
    from portopt.config import RunConfig
    from portopt.engine.inputs import prepare_inputs

    config = RunConfig()
    if case == "synthetic60":
        catalog = synthetic_catalog(60)
    elif case == "plan":
        catalog = plan_catalog()
    else:
        catalog = load_catalog(None)
    return prepare_inputs(catalog, config), config


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(impl: str, case: str, n: int, workers: int = 1) -> dict[str, float]:
    """Run one measurement in this process (called in a subprocess by :func:`measure`)."""
    import portopt

    inputs, config = _inputs(case)
    if impl in ("engine", "numpy"):
        from portopt.engine import numpy_engine as engine_numpy

        def go() -> object:
            return engine_numpy.run(
                inputs, range(n), memory_mb=config.scenarios.chunk_memory_mb, workers=workers
            )
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
        "workers": workers,
        "portopt": str(Path(portopt.__file__).resolve().parent),
        "scenarios": n,
        "projects": inputs.n_projects,
        "quarters": inputs.horizon,
        "seconds": seconds,
        "throughput": psq / seconds,
        "peak_mib": max(peak - before, 0.0),
    }


def measure(
    impl: str, case: str, n: int, workers: int = 1, tree: Path | None = None
) -> dict[str, float]:
    """One measurement in a fresh Python process; ``tree``: the checkout whose ``portopt`` it
    imports (first on PYTHONPATH; default the installed one). ``impl``: ``engine`` (the NumPy
    engine, its quarter compiled by Numba), ``numpy`` (the same with ``PORTOPT_NUMBA=0``: NumPy
    calls only) or ``baseline``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", impl, case, str(n)]
    cmd += ["--workers", str(workers)]
    env = dict(os.environ)
    if impl == "numpy":
        env["PORTOPT_NUMBA"] = "0"
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def revision(ref: str) -> Iterator[Path]:
    """A temporary detached git worktree of ``ref`` (removed afterwards)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(path), ref], check=True, cwd=ROOT
        )
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT)


def plan_table(
    n: int, old_ref: str | None = None, case: str = "plan", repeat: int = 1
) -> list[dict[str, float]]:
    """``case`` (default the plan-sized one) on 1 and 2 threads, this checkout and
    (``old_ref``) the old one; each the fastest of ``repeat`` runs, the variants interleaved
    (on a shared machine the minimum is the least disturbed)."""
    with contextlib.ExitStack() as stack:
        trees: list[tuple[str, Path | None]] = [("engine", None)]
        if old_ref is not None:
            trees.append((f"engine@{old_ref}", stack.enter_context(revision(old_ref))))
        best: dict[tuple[str, int], dict[str, float]] = {}
        for _ in range(repeat):
            for name, tree in trees:
                for w in (1, 2):
                    row = measure("engine", case, n, w, tree)
                    row["impl"] = name
                    if (name, w) not in best or row["seconds"] < best[name, w]["seconds"]:
                        best[name, w] = row
    return list(best.values())


def print_plan(rows: list[dict[str, float]]) -> None:
    print(f"{'impl':<22} {'threads':>7} {'S×P×Q':>16} {'seconds':>8} {'Mpsq/s':>8}")
    for r in rows:
        shape = f"{r['scenarios']}×{r['projects']}×{r['quarters']}"
        print(
            f"{r['impl']:<22} {r['workers']:>7} {shape:>16} {r['seconds']:8.2f}"
            f" {r['throughput'] / 1e6:8.1f}"
        )
    new1, new2 = rows[0], rows[1]
    print(f"this checkout: 1 / 2 threads x{new1['seconds'] / new2['seconds']:.2f}")
    if len(rows) > 2:
        old1, old2 = rows[2], rows[3]
        print(
            f"old / new: x{old1['seconds'] / new1['seconds']:.2f} on 1 thread,"
            f" x{old2['seconds'] / new2['seconds']:.2f} on 2 threads;"
            f" old 1 / 2 threads x{old1['seconds'] / old2['seconds']:.2f}"
        )
    for r in rows:
        print(f"  {r['impl']}: portopt from {r['portopt']}")


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
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--plan", action="store_true")
    parser.add_argument("--scenarios", type=int, default=PLAN_SCENARIOS)
    parser.add_argument("--old-ref", default=None)
    parser.add_argument("--case", default="plan", help="with --plan: plan, bundled, synthetic60")
    parser.add_argument("--repeat", type=int, default=1, help="with --plan: the best of N runs")
    args = parser.parse_args()
    if args.child:
        impl, case, n = args.child
        print(json.dumps(child(impl, case, int(n), args.workers)))
        return
    if args.plan:
        print_plan(plan_table(args.scenarios, args.old_ref, args.case, args.repeat))
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
