"""The plan frontier's points one after the other in this process: each point's seconds.

    python bench/frontier_points.py                          # configs/default.yaml
    python bench/frontier_points.py --highs mip_allow_restart=false
    python bench/frontier_points.py --set scenarios.optimisation=500

Chooses the default plan (scenarios, declines, the cut model's solve: not timed), builds its
frontier state as ``portopt plan`` does (:func:`portopt.tradeoff.frontier_state`), then solves
each deployment level (highest first) and the lowest floor as the frontier's tasks do
(:func:`portopt.tradeoff.frontier_points`), one after the other, and prints each point's
seconds, floor and objective, and their sum: the frontier stage's work, which ``plan.frontier
.workers`` solvers share. ``--highs KEY=VALUE`` sets a HiGHS option on every cut model the
points build (to compare options: the plans must agree within the gap).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))


def _value(text: str) -> object:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(ROOT / "configs" / "default.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--highs", action="append", default=[], metavar="OPTION=VALUE")
    args = parser.parse_args()

    from portopt import tradeoff
    from portopt.config import load_config
    from portopt.model import direct
    from portopt.pipeline import choose
    from portopt.planning import Plan

    options = {k: _value(v) for k, v in (item.split("=", 1) for item in args.highs)}
    if options:
        build = direct.DirectModel._build

        def _build(self: direct.DirectModel) -> None:
            build(self)
            for key, value in options.items():
                self.h.setOptionValue(key, value)

        direct.DirectModel._build = _build  # type: ignore[method-assign]

    job = Plan()
    config = job.prepare(load_config(args.config, args.set))
    chosen = choose(job, config)
    columns = chosen.columns
    _, mask = columns.declines(chosen.scenarios, columns.decline_prob, config)
    project = [str(p) for p in columns.project]
    state = tradeoff.frontier_state(
        chosen.model, chosen.allocation, mask, columns.unfunded_prob, project
    )
    low = tradeoff.committed_capital(state, chosen.allocation)
    t0 = time.perf_counter()
    high = tradeoff.most_reachable(state, config.plan.frontier.lowest_floor)
    print(f"most reachable at the lowest floor: ${high / 1e9:,.1f}B in", end=" ")
    print(f"{time.perf_counter() - t0:.2f} s")
    items = [("level", x) for x in sorted(tradeoff.frontier_levels(config, low, high))[::-1]]
    items.append(("floor", config.plan.frontier.lowest_floor))
    total = 0.0
    print(f"{'point':>16} {'seconds':>8} {'floor':>6} {'objective':>10}")
    for kind, value in items:
        t0 = time.perf_counter()
        (row,) = tradeoff.frontier_points(state, [(kind, value)])
        seconds = time.perf_counter() - t0
        total += seconds
        name = f"level ${value / 1e9:,.0f}B" if kind == "level" else f"floor {value:.2f}"
        objective = row.get("objective")
        shown = f"{objective:10.6f}" if objective is not None else f"{'—':>10}"
        print(f"{name:>16} {seconds:8.2f} {row['floor']:6.2f} {shown}")
    print(f"{'all points':>16} {total:8.2f}")


if __name__ == "__main__":
    main()
