"""The plan's solve on the bundled catalog: generation, then the optimise stage alone.

    python bench/bench_plan.py [KEY=VALUE ...]

Each argument is a config override (as ``--set``), e.g. ``scenarios.optimisation=300
solver.time_limit_s=60 plan.rounds_per_project=3``. Prints the optimisation scenarios' time,
then the solve's wall and CPU time, status, objective, proven gap, the capital proposed and the
number of proposals, and the solver's notes (MILP rounds, cuts, branch-and-bound nodes per round;
bench/RESULTS.md, "The plan").
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.model import build_model, optimize
from portopt.plan import load_commitments, plan_options
from portopt.planning import model_scenarios, plan_config, with_declines

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def main(overrides: list[str]) -> None:
    config = plan_config(load_config(CONFIG, overrides))
    catalog = load_catalog(config.catalog)
    options = plan_options(catalog, config, load_commitments(None, catalog, config))
    t0 = time.perf_counter()
    engine = generate_scenarios(
        options.engine_catalog,
        config,
        backend="numpy",
        scenarios=range(config.scenarios.optimisation),
    )
    print(
        f"scenarios: {time.perf_counter() - t0:.1f} s for {len(options.catalog.project_ids)}"
        f" columns ({len(options.engine_catalog.project_ids)} engine columns)"
    )
    opt, p, _ = with_declines(model_scenarios(engine, options), options.catalog, config)
    options.catalog.projects["decline_prob"] = p
    t0, c0 = time.perf_counter(), time.process_time()
    allocation = optimize(
        options.catalog, config, opt, model=build_model(options.catalog, opt, config)
    )
    gap = "-" if allocation.mip_gap is None else f"{100 * allocation.mip_gap:.2f}%"
    print(
        f"solve: {time.perf_counter() - t0:.1f} s ({time.process_time() - c0:.1f} CPU-s),"
        f" {allocation.status}, objective"
        f" {allocation.objective:.4f}, gap {gap}, ${allocation.capital_usd / 1e9:.1f}B in"
        f" {len(allocation.selected)} proposals"
    )
    for note in allocation.notes:
        print(f"  {note}")


if __name__ == "__main__":
    main(sys.argv[1:])
