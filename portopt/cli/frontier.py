"""``portopt frontier CONFIG --vary KEY=v1,v2,... [--vary ...] [--commitments FILE] [--one-shot]
[--scheduler ADDRESS]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from portopt.catalog import load_catalog
from portopt.cli.options import (
    ConfigArgument,
    JsonOption,
    SchedulerOption,
    SetOption,
    WorkersOption,
    config_with_overrides,
    print_json,
    sweep_progress,
)
from portopt.config import find_config, refuse_plan_keys
from portopt.errors import ConfigError, Problem
from portopt.outputs import check_target

DEFAULT_OUT = Path("runs") / "frontier"


def command(
    config: ConfigArgument,
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            help="KEY=v1,v2,... over any config key; repeat for a grid (cartesian product).",
        ),
    ],
    scheduler: SchedulerOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help=f"Output folder (default: {DEFAULT_OUT}).")
    ] = None,
    workers: WorkersOption = 2,
    set_: SetOption = None,
    json_: JsonOption = False,
    commitments: Annotated[
        Path | None,
        typer.Option(
            "--commitments",
            help="CSV of decisions made (project, quarter, amount_usd) for every point's plan"
            " (default: plan.commitments, else the bundled first tranche). Plans only.",
        ),
    ] = None,
    one_shot: Annotated[
        bool,
        typer.Option(
            "--one-shot",
            help="Solve one-shot portfolios (every project at its earliest start) instead of"
            " plans; points differing only in model Parameters then re-solve one model.",
        ),
    ] = False,
) -> None:
    """A frontier or sensitivity grid over any config key: one plan per point, on Dask.

    Each point is the plan `portopt plan` makes with those keys (capital expected committed
    by the deadline, coverage with Japan's declines, out of sample). With --one-shot, each
    point is a one-shot allocation solve, and points that differ only in model Parameters
    (budget, recoupment tolerance, sector bounds, ...) re-solve one compiled problem. Writes
    frontier.csv and frontier.html.
    """
    if one_shot and commitments is not None:
        raise ConfigError(
            [Problem("--commitments", None, None, "works on plans: drop --one-shot")],
            "bad frontier",
        )
    from portopt.sweeps import (
        cluster,
        dashboard_link,
        frontier_points,
        plan_tasks,
        run_frontier,
        write_frontier,
    )
    from portopt.sweeps.html import identity
    from portopt.sweeps.plans import run_plan_frontier

    target = out if out is not None else DEFAULT_OUT
    path = find_config(config)
    points = frontier_points(path, vary, set_)
    if one_shot:  # a plan's keys mean nothing to the one-shot question
        refuse_plan_keys("frontier", *(p.config for p in points))
    catalog = load_catalog(points[0].config.catalog)
    check_target(target, overwrite=True)
    keys = list(points[0].values)
    with cluster(scheduler, workers) as client:
        if one_shot:
            label = f"Solving {len(points)} one-shot frontier points (tasks done)"
            tasks = len(plan_tasks(points))
        else:
            label = f"Planning {len(points)} frontier points (plans done)"
            tasks = len(points)
        with sweep_progress(label, tasks, dashboard_link(client)) as on_result:
            if one_shot:
                table = run_frontier(catalog, points, client, on_result=on_result)
            else:
                table = run_plan_frontier(points, client, commitments, on_result=on_result)
    base = config_with_overrides(path, set_)  # the sweep's identity: before the varied keys
    write_frontier(table, keys, target, identity(base, catalog.source))
    counts = table["status"].value_counts().to_dict()
    if json_:
        model = "one-shot" if one_shot else "plan"
        print_json({"model": model, "points": len(table), "status": counts, "out_dir": target})
    else:
        Console().print(_summary(table, keys, counts, target, one_shot))


def _summary(
    table: pd.DataFrame, keys: list[str], counts: dict[str, int], target: Path, one_shot: bool
) -> Table:
    shown = ", ".join(f"{n} {status}" for status, n in counts.items())
    kind = "one-shot portfolios" if one_shot else "plans"
    summary = Table(title=f"portopt frontier ({len(table)} {kind}: {shown})", title_justify="left")
    for key in keys:
        summary.add_column(key.rsplit(".", 1)[-1])
    capital = "capital $B" if one_shot else "committed $B (expected)"
    for name in ("status", "coverage", capital, "CVaR shortfall", "projects", "re-solve"):
        summary.add_column(name)
    for r in table.to_dict("records"):
        summary.add_row(
            *(f"{r[k]:g}" if isinstance(r[k], float) else str(r[k]) for k in keys),
            str(r["status"]),
            _pct(r["coverage"]),
            "-" if r["capital_usd"] is None else f"{r['capital_usd'] / 1e9:,.1f}",
            _pct(r["cvar_shortfall_share"]),
            str(r["n_selected"]),
            "yes" if r["resolve"] else "no",
        )
    summary.caption = f"frontier.csv and frontier.html in {target}"
    return summary


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}%"


__all__ = ["command"]
