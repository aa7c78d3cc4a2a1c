"""Scale benchmark: how each stage grows with projects and scenarios (issue 6).

For each size ``NxS`` (N synthetic projects from ``portopt synth``, S optimisation scenarios) a
fresh child process times: catalog synthesis, scenario generation (NumPy engine), model build
(data, group compile, HiGHS model), solve (cuts + MILP) on the ``highs_direct`` path, and the
out-of-sample evaluation (fresh scenarios generated, then evaluated), and reports its peak
memory (``ru_maxrss``). Options add, in the same child and on the same scenarios:

* ``--naive``: the naive CVXPY baseline (``bench/naive_cvxpy.py``), for sizes with at most
  ``--naive-max-projects`` projects: its build, CVXPY compile + HiGHS time and status, the exact
  objective of its portfolio, the speed-up (its time to the gap over the direct path's) and the
  optimum gap between the two;
* ``--cvxpy``: portopt's CVXPY model (``portopt.model``, without its greedy incumbent, which
  is O(n² S K) per exchange pass), split into expression build, CVXPY canonicalisation and
  solver time (the profile of issue 6);
* ``--baseline REV``: each size measured a second time, first, with the package as it was at
  git revision ``REV`` (exported with ``git archive``; the same child code), so that before and
  after come from one invocation on one machine state.

``highs_s`` is the time inside HiGHS's ``run`` on the direct path (where the code records
it); the rest of ``solve_s`` is cut separation and bookkeeping.

Usage (each size's wall time on the 2-core machine is in bench/RESULTS.md)::

    python bench/bench_scale.py --sizes 60x2000,200x10000 --naive
    python bench/bench_scale.py --sizes 1000x50000 --time-limit 300
    python bench/bench_scale.py --sizes 200x10000 --cvxpy --json runs/bench_scale.json
    python bench/bench_scale.py --sizes 1000x25000 --eval 0 --baseline 79b5578
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Run every stage for one size in this process; returns the row of the table."""
    sys.path.insert(0, str(HERE))
    from portopt.catalog import load_catalog
    from portopt.config import load_config
    from portopt.engine.generate import generate_scenarios
    from portopt.evaluate import evaluate
    from portopt.model import optimize
    from portopt.synth import write_synth

    n, S = (int(x) for x in args.child.lower().split("x"))
    row: dict[str, Any] = {"projects": n, "scenarios": S}
    overrides: dict[str, Any] = {
        "scenarios": {"optimisation": S},
        "solver": {"name": "highs_direct", "time_limit_s": args.time_limit, "mip_gap": args.gap},
    }
    if args.threads:
        overrides["solver"]["threads"] = args.threads
    config = load_config(None, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = write_synth(n, args.seed, Path(tmp) / "catalog")
        catalog = load_catalog(folder)
        row["synth_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scenarios = generate_scenarios(catalog, config, "numpy", scenarios=range(S))
    row["generate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    allocation = optimize(catalog, config, scenarios)
    row["direct_total_s"] = time.perf_counter() - t0
    tm = allocation.timings
    row["build_s"] = sum(tm.get(k, 0.0) for k in ("model_data_s", "compile_s", "model_build_s"))
    row["solve_s"] = sum(tm.get(k, 0.0) for k in ("lp_cuts_s", "incumbent_s", "solve_s"))
    row["highs_s"] = tm.get("highs_s")
    row.update(
        status=allocation.status,
        objective=allocation.objective,
        bound=allocation.bound,
        mip_gap=allocation.mip_gap,
        selected=len(allocation.selected),
        notes=allocation.notes,
    )
    time_to_gap = row["build_s"] + row["solve_s"]

    if args.naive and n <= args.naive_max_projects:
        naive_config = config
        if args.naive_time_limit:
            naive_config = load_config(
                None,
                {
                    **overrides,
                    "solver": {**overrides["solver"], "time_limit_s": args.naive_time_limit},
                },
            )
        row.update(_naive(catalog, scenarios, naive_config, allocation, time_to_gap))
    if args.cvxpy:
        row.update(_cvxpy(catalog, scenarios, config, allocation))

    S_eval = args.eval if args.eval is not None else min(S, 10_000)
    del scenarios
    if S_eval > 0:
        t0 = time.perf_counter()
        fresh = generate_scenarios(catalog, config, "numpy", scenarios=range(S, S + S_eval))
        row["eval_generate_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        evaluate(allocation, catalog, config, fresh)
        row["evaluate_s"] = time.perf_counter() - t0
        row["eval_scenarios"] = S_eval
    row["peak_gib"] = _peak_gib()
    return row


def _naive(catalog, scenarios, config, allocation, time_to_gap: float) -> dict[str, Any]:
    from naive_cvxpy import solve_naive

    from portopt.model.data import BILLION, build_data
    from portopt.model.direct import cuts_of

    res = solve_naive(catalog, scenarios, config)
    out: dict[str, Any] = {
        "naive_build_s": res.build_s,
        "naive_compile_s": max(0.0, res.compile_solve_s - res.solver_s),
        "naive_solver_s": res.solver_s,
        "naive_status": res.status,
        "naive_gap": res.mip_gap,
    }
    total = res.build_s + res.compile_solve_s
    reached = res.status == "optimal" and res.mip_gap is not None
    reached = reached and res.mip_gap <= config.solver.mip_gap + 1e-12
    out["naive_time_to_gap_s"] = total if reached else None
    out["speedup"] = total / time_to_gap
    out["speedup_is_lower_bound"] = not reached
    if res.y is not None:
        d = build_data(catalog, scenarios, config)
        m = config.model
        tiebreak = m.recovery_tiebreak / (m.budget_usd / BILLION)
        value = cuts_of(d).value(res.y) + tiebreak * float((d.e_japan - d.e_draw) @ res.f)
        out["naive_objective"] = value
        out["optimum_gap"] = (allocation.objective - value) / abs(allocation.objective)
    return out


def _cvxpy(catalog, scenarios, config, allocation) -> dict[str, Any]:
    """portopt's CVXPY model without its greedy incumbent: expression build, CVXPY
    canonicalisation (``get_problem_data``) and HiGHS time, and the portfolio it reached."""
    from portopt.model import AllocationModel, solve_milp

    t0 = time.perf_counter()
    model = AllocationModel(catalog, scenarios, config)
    data_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.variant("milp")
    build_s = time.perf_counter() - t0
    result = solve_milp(model, config.solver)
    value = model.objective_value(result.solution) if result.solution is not None else None
    return {
        "cvxpy_build_s": data_s + build_s,
        "cvxpy_canonicalise_s": result.compile_s,
        "cvxpy_solver_s": result.solve_s,
        "cvxpy_status": result.status,
        "cvxpy_gap": result.mip_gap,
        "cvxpy_objective": value,
        "cvxpy_optimum_gap": (allocation.objective - value) / abs(allocation.objective)
        if value is not None
        else None,
    }


def _fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The compact scaling table (seconds, GiB, gap in %)."""
    head = (
        f"{'code':>18} {'size':>12} {'gen':>7} {'build':>6} {'solve':>6} {'highs':>6}"
        f" {'eval':>6} {'peakGiB':>7}"
        f" {'status':>10} {'gap%':>6} {'naive':>22} {'speedup':>8} {'opt.gap%':>8}"
    )
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"{r.get('code', ''):>18} {r['size']:>12} error: {r['error']}")
            continue
        ev = (r.get("eval_generate_s") or 0.0) + (r.get("evaluate_s") or 0.0)
        naive = "-"
        if "naive_status" in r:
            naive = (
                f"{r['naive_build_s'] + r['naive_compile_s'] + r['naive_solver_s']:.0f}s "
                f"{r['naive_status']} {_pct(r['naive_gap'])}%"
            )
        speed = "-"
        if "speedup" in r:
            speed = (">" if r["speedup_is_lower_bound"] else "") + f"{r['speedup']:.1f}x"
        og = r.get("optimum_gap")
        lines.append(
            f"{r.get('code', ''):>18} {r['projects']:>5}x{r['scenarios']:<6}"
            f" {r['generate_s']:>7.1f} {r['build_s']:>6.1f} {r['solve_s']:>6.1f}"
            f" {_fmt(r.get('highs_s')):>6} {ev:>6.1f} {r['peak_gib']:>7.2f} {r['status']:>10}"
            f" {_pct(r['mip_gap']):>6}"
            f" {naive:>22} {speed:>8} {_pct(og):>8}"
        )
        if "cvxpy_status" in r:
            lines.append(
                f"{'':>12}   cvxpy model: build {r['cvxpy_build_s']:.1f}s,"
                f" canonicalise {r['cvxpy_canonicalise_s']:.1f}s,"
                f" solver {r['cvxpy_solver_s']:.1f}s, {r['cvxpy_status']}"
                f" gap {_pct(r['cvxpy_gap'])}%"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="60x2000,200x10000,1000x50000")
    p.add_argument("--naive", action="store_true", help="also the naive CVXPY baseline")
    p.add_argument("--naive-max-projects", type=int, default=200)
    p.add_argument(
        "--naive-time-limit", type=float, default=None, help="naive's own limit (--time-limit)"
    )
    p.add_argument("--cvxpy", action="store_true", help="also portopt's CVXPY model (profile)")
    p.add_argument("--time-limit", type=float, default=120.0, help="solver time limit, s")
    p.add_argument("--gap", type=float, default=0.01, help="relative MIP gap")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="synthetic catalog seed")
    p.add_argument("--eval", type=int, default=None, help="evaluation scenarios (min(S, 10k))")
    p.add_argument("--json", type=Path, default=None, help="write the rows here too")
    p.add_argument("--baseline", default=None, help="also measure git revision REV, first")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("ROW " + json.dumps(child(args), default=str), flush=True)
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"current": None}
        if args.baseline:
            trees = {f"baseline {args.baseline}": _export(args.baseline, Path(tmp)), **trees}
        for size in args.sizes.split(","):
            for code, tree in trees.items():
                t0 = time.perf_counter()
                rows.append({"code": code, **measure(size, _forward(args), tree)})
                seconds = time.perf_counter() - t0
                print(f"{size} ({code}): done in {seconds:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    return 0


def measure(size: str, options: list[str], tree: Path | None = None) -> dict[str, Any]:
    """One size (``"NxS"``) measured in a fresh child process; ``options`` as on the command line;
    ``tree``: a folder holding the ``portopt`` package to measure instead of the installed one.

    Returns the row (``{"size", "error"}`` when the child failed), with ``wall_s`` added.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", size, *options]
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
    if proc.returncode or not found:
        return {"size": size, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    row = json.loads(found[-1][4:])
    row["wall_s"] = time.perf_counter() - t0
    return row


def _export(revision: str, into: Path) -> Path:
    """The package at git ``revision``, written under ``into``."""
    archive = subprocess.run(
        ["git", "archive", revision, "portopt"], cwd=HERE.parent, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _forward(args: argparse.Namespace) -> list[str]:
    out = ["--time-limit", str(args.time_limit), "--gap", str(args.gap), "--seed", str(args.seed)]
    out += ["--naive-max-projects", str(args.naive_max_projects)]
    if args.naive_time_limit:
        out += ["--naive-time-limit", str(args.naive_time_limit)]
    if args.naive:
        out.append("--naive")
    if args.cvxpy:
        out.append("--cvxpy")
    if args.threads:
        out += ["--threads", str(args.threads)]
    if args.eval is not None:
        out += ["--eval", str(args.eval)]
    return out


if __name__ == "__main__":
    sys.exit(main())
