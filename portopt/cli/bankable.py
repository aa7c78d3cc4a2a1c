"""``portopt bankable CONFIG [--out DIR] [--target R] [--project ID ...]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from portopt.cli.options import (
    BackendOption,
    ConfigArgument,
    JsonOption,
    SeedOption,
    SetOption,
    config_with_overrides,
    print_json,
    repeated,
)

if TYPE_CHECKING:
    import pandas as pd


def command(
    config: ConfigArgument,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for bankable.csv and bankable.json (replaced whole)."),
    ] = None,
    target: Annotated[
        float | None,
        typer.Option(
            "--target",
            help="Japan's expected recovery to reach (default: the config's recovery floor,"
            " else 1.0).",
        ),
    ] = None,
    project: repeated(
        "--project", "A catalog project to analyse (repeatable; default all)."
    ) = None,
    backend: BackendOption = None,
    seed: SeedOption = None,
    set_: SetOption = None,
    json_: JsonOption = False,
) -> None:
    """What makes each project bankable: the least US capex share, and the least US price
    floor, that lifts Japan's expected recovery on it, alone, to the target, with what each
    costs the US (the config's scenarios, deal and support; docs/outputs.md)."""
    from portopt.bankable import bankable, chosen_projects, target_of
    from portopt.catalog import load_catalog
    from portopt.config import refuse_plan_keys
    from portopt.engine.backend import resolve_backend
    from portopt.memory import check_fits, scenarios_estimate
    from portopt.outputs import check_target

    cfg = config_with_overrides(config, set_, seed)
    refuse_plan_keys("bankable", cfg)  # each project alone: no rounds, commitments or target
    goal = target_of(cfg, target)  # fail before any work
    if out is not None:
        check_target(out, overwrite=True)
    chosen = resolve_backend(backend or cfg.backend)
    catalog = load_catalog(cfg.catalog)
    ids = chosen_projects(catalog, project)
    estimate = scenarios_estimate(cfg.scenarios.optimisation, len(ids), len(catalog.chokepoint_ids))
    check_fits(estimate, "scenarios.optimisation")
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        label = f"Searching each lever for {len(ids)} projects, engine run"
        task = bar.add_task(f"{label} 0", total=None)
        runs = [0]

        def advance() -> None:
            runs[0] += 1
            bar.update(task, description=f"{label} {runs[0]}")

        result = bankable(catalog, cfg, goal, ids, chosen, advance)
    if out is not None:
        result.write(out)
    if json_:
        print_json({**result.summary, "out_dir": out})
        return
    show(console, result.table, result.summary)
    if out is not None:
        console.print(f"wrote {out}", highlight=False)


def show(console: Console, table: pd.DataFrame, summary: dict[str, Any]) -> None:
    """The projects that miss the target, cheapest lever first, and the totals."""
    import pandas as pd

    goal = summary["target"]
    short = table[table["recovery"] < goal].copy()
    short["cheapest"] = short[["capex_cost_usd", "price_floor_cost_usd"]].min(axis=1)
    short = short.sort_values(["cheapest", "project_id"], na_position="last")
    view = Table(
        title=f"portopt bankable: what lifts Japan's expected recovery to {goal:.2f}"
        f" ({summary['scenarios']:,} scenarios, each project alone)",
        title_justify="left",
    )
    view.add_column("project", no_wrap=True)
    for name in ("recovery", "capex share", "its cost", "price floor", "its cost"):
        view.add_column(name, justify="right")

    def usd(value: float) -> str:
        return "—" if pd.isna(value) else f"${value / 1e9:,.2f}B"

    def level(value: float, fmt: str) -> str:
        return "out of reach" if pd.isna(value) else format(value, fmt)

    for r in short.itertuples():
        view.add_row(
            str(r.project_id),
            f"{r.recovery:.2f}",
            level(r.capex_reduction, ".0%"),
            usd(r.capex_cost_usd),
            level(r.price_floor, ".2f") + ("×" if not pd.isna(r.price_floor) else ""),
            usd(r.price_floor_cost_usd),
        )
    console.print(view)
    met, capex, floor = (
        summary["meet_target"],
        summary["by_capex_reduction"],
        summary["by_price_floor"],
    )
    console.print(
        f"{met['projects']} of {summary['projects']} projects already meet {goal:.2f};"
        f" a capex share lifts {capex['projects']} more (${capex['cost_usd'] / 1e9:,.1f}B in all),"
        f" a price floor {floor['projects']} (${floor['cost_usd'] / 1e9:,.1f}B expected, PV);"
        f" {summary['out_of_reach']['projects']} neither.",
        highlight=False,
        soft_wrap=True,
    )


__all__ = ["command"]
