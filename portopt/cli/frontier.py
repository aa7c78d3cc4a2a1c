"""``portopt frontier CONFIG --vary KEY=v1,v2,... [--vary ...] [--scheduler ADDRESS]``."""

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
    refuse_plan_keys,
    sweep_progress,
)
from portopt.config import find_config
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
) -> None:
    """An efficient frontier or sensitivity grid: one allocation solve per point, on Dask.

    Points that differ only in model Parameters (budget, recoupment tolerance, sector bounds,
    ...) re-solve one compiled problem; the others regenerate their scenarios. Writes
    frontier.csv and frontier.html.
    """
    from portopt.sweeps import (
        cluster,
        dashboard_link,
        frontier_points,
        plan_tasks,
        run_frontier,
        write_frontier,
    )
    from portopt.sweeps.html import identity

    target = out if out is not None else DEFAULT_OUT
    path = find_config(config)
    points = frontier_points(path, vary, set_)
    refuse_plan_keys("frontier", *(p.config for p in points))
    catalog = load_catalog(points[0].config.catalog)
    check_target(target, overwrite=True)
    keys = list(points[0].values)
    with cluster(scheduler, workers) as client:
        label = f"Solving {len(points)} frontier points (tasks done)"
        tasks = len(plan_tasks(points))
        with sweep_progress(label, tasks, dashboard_link(client)) as on_result:
            table = run_frontier(catalog, points, client, on_result=on_result)
    base = config_with_overrides(path, set_)  # the sweep's identity: before the varied keys
    write_frontier(table, keys, target, identity(base, catalog.source))
    counts = table["status"].value_counts().to_dict()
    if json_:
        print_json({"points": len(table), "status": counts, "out_dir": target})
    else:
        Console().print(_summary(table, keys, counts, target))


def _summary(table: pd.DataFrame, keys: list[str], counts: dict[str, int], target: Path) -> Table:
    shown = ", ".join(f"{n} {status}" for status, n in counts.items())
    summary = Table(title=f"portopt frontier ({len(table)} points: {shown})", title_justify="left")
    for key in keys:
        summary.add_column(key.rsplit(".", 1)[-1])
    for name in ("status", "coverage", "capital $B", "CVaR shortfall", "projects", "re-solve"):
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
