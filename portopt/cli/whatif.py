"""``portopt whatif CONFIG [--add FOLDER] [--drop ID ...] [--variant-set KEY=VALUE ...]
[--set KEY=VALUE ...] [--out DIR]``: ``--variant-set`` changes the variant only, ``--set`` the
run (both sides), as everywhere else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group
from rich.table import Table

from portopt.catalog import load_catalog
from portopt.cli.options import (
    ConfigArgument,
    JsonOption,
    config_with_overrides,
    print_json,
    refuse_plan_keys,
)
from portopt.errors import ConfigError, Problem
from portopt.outputs import check_target

if TYPE_CHECKING:
    from portopt.config import RunConfig
    from portopt.whatif import Delta, WhatIf

DEFAULT_OUT = Path("runs") / "whatif"
LABELS = {
    "projects_selected": "Projects",
    "capital_committed_usd": "Capital",
    "coverage_score": "Coverage score",
    "recovery_ratio": "Japan recovery",
    "p_recoup": "P(recoup)",
}
"""The terminal's name of each figure of whatif.json's ``deltas``."""


def command(
    config: ConfigArgument,
    add: Annotated[
        Path | None,
        typer.Option(
            "--add",
            help="Folder of extra candidates: projects.csv (and optionally capacity.csv) in the"
            " catalog's columns, against the base catalog's chokepoints.",
        ),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option("--drop", help="Candidate id to drop (repeatable); its dependents go too."),
    ] = None,
    variant_set: Annotated[
        list[str] | None,
        typer.Option(
            "--variant-set",
            help="Dotted override KEY=VALUE of the variant only (repeatable), e.g."
            " --variant-set model.budget_usd=4e11.",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Dotted override KEY=VALUE of the run: both the base and the variant"
            " (repeatable), as in portopt plan and run.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help=f"Output folder (default: {DEFAULT_OUT}).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Solve the base and a variant on the same scenarios and show the difference.

    Writes whatif.csv (each project whose selection or amount changed) and whatif.json (the
    headline deltas with their paired standard errors over the evaluation scenarios, and both
    solves). Exit code 3 names the infeasible side.
    """
    # the engine and the model load when a command runs, not for ``portopt --help``
    from portopt.whatif import Variant, load_additions, whatif, write_whatif

    base_config = config_with_overrides(config, set_)
    if add is None and not drop and not variant_set:
        hint = (
            "; --set changes both sides (the run), --variant-set KEY=VALUE the variant only"
            if set_
            else ""
        )
        raise ConfigError(
            [
                Problem(
                    "whatif",
                    None,
                    None,
                    f"give the variant: --add FOLDER, --drop ID or --variant-set KEY=VALUE{hint}",
                )
            ],
            "no variant",
        )
    variant_config = _variant_config(config, set_ or [], variant_set) if variant_set else None
    refuse_plan_keys("whatif", base_config, *([variant_config] if variant_config else []))
    target = out if out is not None else DEFAULT_OUT
    check_target(target, base_config.output.overwrite)
    catalog = load_catalog(base_config.catalog)
    added = None if add is None else load_additions(add, catalog)
    with Console(stderr=True).status("Solving and evaluating the base and the variant"):
        result = whatif(catalog, base_config, Variant(added, tuple(drop or ()), variant_config))
    write_whatif(result, target, base_config.output.overwrite)
    if json_:
        print_json({**result.summary(), "out_dir": target})
    else:
        Console().print(summary(result, target))


def _variant_config(config: Path | str, run_sets: list[str], variant_sets: list[str]) -> RunConfig:
    """The variant's config: the run's ``--set`` then the variant's ``--variant-set``, a problem
    of the latter named by its own option."""
    try:
        return config_with_overrides(config, [*run_sets, *variant_sets])
    except ConfigError as error:
        named = [
            replace(p, file=f"--variant-set {p.file.removeprefix('--set ')}")
            if p.file.removeprefix("--set ") in variant_sets
            else p
            for p in error.problems
        ]
        raise ConfigError(named, str(error).split("\n", 1)[0]) from None


def summary(result: WhatIf, target: Path) -> Group:
    """The headline deltas, then the projects that changed."""
    gaps = "; ".join(
        f"{side} {a.status}"
        + (f", MIP gap {100 * a.mip_gap:.2f}%" if a.mip_gap is not None else "")
        for side, a in (("base", result.base), ("variant", result.variant))
    )
    figures = Table(title=f"portopt whatif: {result.description}", title_justify="left")
    for name in ("figure", "base", "variant", "delta", "SE", "z", ""):
        figures.add_column(
            name, justify="left" if name in ("figure", "") else "right", no_wrap=name == "figure"
        )
    for d in result.deltas:
        figures.add_row(
            LABELS[d.figure],
            _shown(d, d.base),
            _shown(d, d.variant),
            _shown(d, d.delta, signed=True),
            "-" if d.se is None else _shown(d, d.se),
            "-" if d.z is None else f"{d.z:+.1f}",
            d.noise,
        )
    figures.caption = f"{gaps}" + ("; the base's portfolio kept" if result.kept_base else "")
    projects = Table(title="Projects that changed", title_justify="left")
    for name in ("project", "change", "base", "variant", "why"):
        projects.add_column(name)
    for r in result.changes.to_dict("records"):
        projects.add_row(
            r["name"],
            r["change"],
            _usd(r["base_fund_usd"]),
            _usd(r["variant_fund_usd"]),
            r["cause"] or r["noise"],
        )
    projects.caption = " and ".join(sorted(p.name for p in target.iterdir())) + f" in {target}"
    return Group(figures, projects)


def _shown(delta: Delta, x: float, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if delta.figure == "capital_committed_usd":
        return _usd(x, sign)
    if delta.figure == "projects_selected":
        return f"{x:{sign}.0f}"
    return f"{x:{sign}.4f}"


def _usd(x: float, sign: str = "") -> str:
    return f"{'-' if x < 0 else sign}${abs(x) / 1e9:,.2f}B"


__all__ = ["command"]
