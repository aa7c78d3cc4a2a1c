"""First solve against Parameter re-solves of the compiled allocation model (frontier points).

    python bench/bench_frontier.py                  # bundled catalog, configs/default.yaml
    python bench/bench_frontier.py --scenarios 500  # fewer optimisation scenarios
    python bench/bench_frontier.py --set model.groups.recoupment.max_shortfall_share=0.8
    python bench/bench_frontier.py --solver highs_direct  # the cut model (portopt/model/direct.py)

A frontier task builds one :class:`~portopt.model.AllocationModel` and re-solves it per point
with :func:`portopt.model.optimize` (``model=``). For each point p of :data:`POINTS` (budget
and recoupment tolerance ε), on the bundled catalog with the default config's optimisation
scenarios (scenario generation is not timed):

* ``first_s[p]``: p solved on a fresh model: build, CVXPY compile and DPP canonicalisation,
  starting incumbent, HiGHS, shadow prices, in-sample figures;
* ``resolve_s[p]``: p solved on the model that has just solved the previous point: new
  Parameter values, the cached canonicalisation re-applied, HiGHS warm-started from the
  previous selection, shadow prices, in-sample figures.

With ``--solver highs_direct`` the model is a :class:`~portopt.model.direct.DirectSweep`
instead: ``first_s[p]`` builds it from the catalog and scenarios (scenario data, group compile,
every cut found from scratch), ``resolve_s[p]`` re-targets the one that has just solved the
previous point (Parameters re-applied, the previous points' cut pool offered back, the previous
selection as the start).

The ratio is the median over points of ``resolve_s[p] / first_s[p]`` (the same MILP both
times, so only what the re-solve saves counts); target: at most 0.5. The split of each time
(``optimize``'s own timings: canonicalisation, incumbent, HiGHS, ...) is printed too. When the
config is infeasible, the recoupment limits are relaxed (``RELAX``) and the output says so:
what is measured is the solve time, not the portfolio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"
TARGET_RATIO = 0.5
POINTS: tuple[tuple[float, float], ...] = (
    (5.5e11, 0.60),
    (2.0e11, 0.62),
    (1.2e11, 0.65),
    (9.0e10, 0.70),
)
"""(budget_usd, max_shortfall_share) of the points, solved in this order."""
RELAX = (
    "model.groups.recoupment.max_shortfall_share=0.8",
    "model.groups.recoupment.min_expected_recovery=0.6",
)
SPLIT = (
    "model_data_s",
    "model_build_s",
    "compile_s",
    "lp_cuts_s",
    "incumbent_s",
    "solve_s",
    "shadow_s",
)


def _point(config: Any, budget: float, tolerance: float) -> Any:
    cfg = config.model_copy(deep=True)
    cfg.model.budget_usd = budget
    cfg.model.groups.recoupment.max_shortfall_share = tolerance
    return cfg


def measure(
    scenarios: int | None = None,
    overrides: tuple[str, ...] = (),
    solver: str | None = None,
    repeat: int = 5,
) -> dict[str, Any]:
    """Time each point of :data:`POINTS` first-solved and re-solved; the figures as a dict.

    ``solver``: ``solver.name`` (default: the config's); ``highs_direct`` times the direct path.
    Each first solve, and each sequence of re-solves, is timed ``repeat`` times; the fastest
    counts.
    """
    from portopt.catalog import load_catalog
    from portopt.config import load_config
    from portopt.engine.generate import generate_scenarios
    from portopt.errors import InfeasibleError
    from portopt.model import build_model, optimize

    sets = list(overrides) + ([f"scenarios.optimisation={scenarios}"] if scenarios else [])
    sets += [f"solver.name={solver}"] if solver else []
    config = load_config(DEFAULT_CONFIG, sets)
    catalog = load_catalog(config.catalog)
    opt = generate_scenarios(
        catalog, config, backend=config.backend, scenarios=range(config.scenarios.optimisation)
    )
    points = [_point(config, b, e) for b, e in POINTS]
    relaxed = False
    try:
        optimize(catalog, points[0], opt)
    except InfeasibleError:
        relaxed = True
        config = load_config(DEFAULT_CONFIG, [*sets, *RELAX])
        points = [_point(config, b, e) for b, e in POINTS]

    def timed(cfg: Any, model: Any = None) -> tuple[float, Any]:
        t0 = time.perf_counter()
        alloc = optimize(catalog, cfg, opt, model=model or build_model(catalog, opt, cfg))
        return time.perf_counter() - t0, alloc

    def best(runs: list[tuple[float, Any]]) -> tuple[float, Any]:
        # the fastest of repeated timings: the machine's noise only ever adds time
        return min(runs, key=lambda run: run[0])

    first = [best([timed(cfg) for _ in range(repeat)]) for cfg in points]
    sequences = []
    for _ in range(repeat):
        shared = build_model(catalog, opt, points[0])
        timed(points[0], shared)
        sequences.append([timed(cfg, shared) for cfg in points[1:]])
    again = [best(list(runs)) for runs in zip(*sequences, strict=True)]
    ratios = [r / f for (r, _), (f, _) in zip(again, first[1:], strict=True)]
    return {
        "solver": config.solver.name,
        "projects": len(catalog.project_ids),
        "scenarios": config.scenarios.optimisation,
        "repeat": repeat,
        "relaxed_recoupment": relaxed,
        "points": [list(p) for p in POINTS],
        "statuses": [a.status for _, a in first],
        "objectives_first": [a.objective for _, a in first[1:]],
        "objectives_resolve": [a.objective for _, a in again],
        "same_portfolio": [
            a.selected == b.selected for (_, a), (_, b) in zip(first[1:], again, strict=True)
        ],
        "first_s": [t for t, _ in first[1:]],
        "resolve_s": [t for t, _ in again],
        "ratios": ratios,
        "ratio": statistics.median(ratios),
        "first_split_s": _split([a for _, a in first[1:]]),
        "resolve_split_s": _split([a for _, a in again]),
        "target_ratio": TARGET_RATIO,
    }


def _split(allocations: list[Any]) -> dict[str, float]:
    """Median seconds of each stage of ``optimize`` over the points."""
    return {k: statistics.median(a.timings.get(k, 0.0) for a in allocations) for k in SPLIT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=None, help="optimisation scenarios")
    parser.add_argument("--set", action="append", default=[], help="dotted override key=value")
    parser.add_argument(
        "--solver",
        default=None,
        choices=["auto", "highs", "cuopt", "highs_direct"],
        help="solver.name (default: the config's); highs_direct times the direct cut model",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timings per solve; the fastest")
    args = parser.parse_args()
    result = measure(args.scenarios, tuple(args.set), args.solver, args.repeat)
    json.dump(result, sys.stdout, indent=2)
    print()
    verdict = "meets" if result["ratio"] <= TARGET_RATIO else "misses"
    print(
        f"{result['solver']}: re-solve / first solve = {result['ratio']:.2f} (median of"
        f" {', '.join(f'{r:.2f}' for r in result['ratios'])}); {verdict} the target of"
        f" {TARGET_RATIO}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
