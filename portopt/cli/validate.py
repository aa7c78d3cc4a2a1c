"""``portopt validate``: check a catalog (and a run config) before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from portopt.catalog import BUNDLED, Catalog, load_catalog
from portopt.cli.options import SetOption, config_with_overrides
from portopt.config import PlanConfig, RunConfig
from portopt.errors import InputError
from portopt.plan.commitments import load_commitments
from portopt.plan.options import NO_COVERAGE
from portopt.plan.support import with_support
from portopt.vocabulary import SECTORS

CONFIG_SUFFIXES = (".yaml", ".yml")


def command(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A folder of catalog CSVs (projects.csv, chokepoints.csv, capacity.csv), or a"
            " YAML run config whose catalog is then checked too. Default: the bundled catalog.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="Also validate this YAML run config (a file or a bundled config's name); its"
            " catalog is checked unless PATH is given.",
        ),
    ] = None,
    set_: SetOption = None,
    commitments: Annotated[
        Path | None,
        typer.Option(
            "--commitments",
            help="Also check this commitments file (project, quarter, amount_usd) as `portopt"
            " plan` would, against the catalog and the config's plan.",
        ),
    ] = None,
) -> None:
    """Check a catalog and report every problem at once (file, row, column, what was expected)."""
    console = Console(soft_wrap=True)
    if path is not None and path.suffix.lower() in CONFIG_SUFFIXES:
        path, config = None, str(path)
    catalog_path: str | None = None if path is None else str(path)
    cfg = RunConfig()
    if config is not None or set_:
        cfg = config_with_overrides(config, set_)
        shown = escape(str(config or "<defaults>"))
        console.print(f"config [bold]{shown}[/] is valid (hash {cfg.digest()})")
        if path is None:
            catalog_path = cfg.catalog
    catalog = load_catalog(catalog_path)
    _summary(console, catalog)
    if commitments is not None:
        made = load_commitments(commitments, catalog, cfg)
        total = sum(c.amount_usd for c in made) / 1e9
        console.print(
            f"[bold green]commitments OK[/]: {len(made)} project(s), ${total:,.1f}B,"
            f" {escape(str(commitments))}"
        )
    if config is not None or set_ or commitments is not None:
        with_support(catalog, cfg)  # an unknown project there is refused by every command
        _check_plan(console, catalog, cfg, commitments)


def _check_plan(console: Console, catalog: Catalog, cfg: RunConfig, commitments: Path | None):
    """The checks `portopt plan` makes before any work (its target against the budget, the
    support levers, the commitments against the catalog and the config, the rounds open): a
    problem exits 2 when the inputs are a plan's (a commitments file, or a ``plan.*`` key away
    from its default), else it is shown as what `portopt plan` would refuse (a config for
    `portopt run` need not suit a plan)."""
    from portopt.pipeline import check_evaluation
    from portopt.planning import Plan

    job = Plan(commitments)
    check_evaluation(cfg, "plan or a run")
    try:
        columns = job.columns(catalog, job.prepare(cfg))
    except InputError as exc:
        if commitments is not None or cfg.plan != PlanConfig():
            raise
        console.print(
            f"[yellow]note[/]: `portopt plan` would refuse this config ({escape(str(exc))});"
            " `portopt run` takes it"
        )
        return
    rounds = len(columns.plan.rounds) if columns.plan is not None else 0
    console.print(
        f"[bold green]plan inputs OK[/]: {rounds} rounds open,"
        f" {len(columns.catalog.project_ids)} (project, round) columns, as `portopt plan` would"
        " build them"
    )


def _summary(console: Console, catalog: Catalog) -> None:
    """What was checked: projects by sector, chokepoints, capacity pairs, committed capital."""
    p = catalog.projects
    committed = p[p["status"] == "committed"]
    name = "(bundled)" if catalog.source == BUNDLED else escape(catalog.source)
    table = Table(title=f"catalog {name}")
    for header in ("sector", "projects", "committed", "base cost $B"):
        table.add_column(header, justify="left" if header == "sector" else "right")
    for sector in SECTORS:
        rows = p[p["sector"] == sector]
        table.add_row(sector, *_counts(rows))
    table.add_row("total", *_counts(p), style="bold")
    console.print(table)
    exposed = int(catalog.chokepoints["china_exposed"].sum())
    pairs = int((catalog.capacity_matrix() > 0).sum())
    cost = committed["base_cost_usd"].sum() / 1e9
    fund = (committed["base_cost_usd"] * committed["min_fund_share"]).sum() / 1e9
    console.print(
        f"{len(catalog.chokepoints)} chokepoints ({exposed} China-exposed), {pairs} capacity pairs"
    )
    console.print(
        f"committed: {len(committed)} project(s), ${cost:,.1f}B base cost,"
        f" ${fund:,.1f}B of it from the fund"
    )
    if pairs == 0:
        console.print(f"[yellow]note[/]: {NO_COVERAGE}")
    console.print("[bold green]catalog OK[/]: no problems found")


def _counts(rows: pd.DataFrame) -> tuple[str, str, str]:
    committed = int((rows["status"] == "committed").sum())
    cost = rows["base_cost_usd"].sum() / 1e9
    return str(len(rows)), str(committed), f"{cost:,.1f}"
