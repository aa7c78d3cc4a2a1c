"""``portopt whatif CONFIG [--commitments FILE] [--force-in ID[@QUARTER] ...] [--force-out ID ...]
[--drop ID ...] [--variant-set KEY=VALUE ...] [--set KEY=VALUE ...] [--one-shot [--add FOLDER]]
[--out DIR]``: ``--variant-set`` changes the variant only, ``--set`` the run (both sides), as
everywhere else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table

from portopt.catalog import load_catalog
from portopt.cli.options import (
    ConfigArgument,
    JsonOption,
    config_with_overrides,
    path_option,
    print_json,
    repeated,
    switch,
)
from portopt.config import refuse_plan_keys
from portopt.errors import ConfigError, Problem
from portopt.outputs import check_target

if TYPE_CHECKING:
    from portopt.config import RunConfig
    from portopt.whatif import Delta, PlanWhatIf, WhatIf

DEFAULT_OUT = Path("runs") / "whatif"
LABELS = {
    "projects_selected": "Projects",
    "capital_committed_usd": "Capital",
    "coverage_score": "Coverage score",
    "recovery_ratio": "Japan recovery",
    "p_recoup": "P(recoup)",
}
"""The terminal's name of each figure of whatif.json's ``deltas``."""


AddOption = path_option(
    "--add",
    "Folder of extra candidates: projects.csv (and optionally capacity.csv) in the catalog's"
    " columns, against the base catalog's chokepoints.",
)
DropOption = repeated("--drop", "Candidate id to drop (repeatable); its dependents go too.")
ForceInOption = repeated(
    "--force-in",
    "ID or ID@QUARTER: the variant's plan proposes this project (in that round, or in its"
    " best); repeatable. Plans only.",
)
ForceOutOption = repeated("--force-out", "ID: the variant's plan leaves it out (repeatable).")
CommitmentsOption = path_option(
    "--commitments",
    "CSV of decisions made (project, quarter, amount_usd), for both plans (default:"
    " plan.commitments, else the bundled first tranche). Plans only.",
)
OneShotOption = switch(
    "--one-shot",
    "Compare one-shot portfolios (every project at its earliest start, no rounds) instead of"
    " plans.",
)
VariantSetOption = repeated(
    "--variant-set",
    "Dotted override KEY=VALUE of the variant only (repeatable), e.g. --variant-set"
    " model.budget_usd=4e11.",
)
RunSetOption = repeated(
    "--set",
    "Dotted override KEY=VALUE of the run: both the base and the variant (repeatable), as in"
    " portopt plan and run.",
)
OutOption = path_option("--out", f"Output folder (default: {DEFAULT_OUT}).")


def command(
    config: ConfigArgument,
    add: AddOption = None,
    drop: DropOption = None,
    force_in: ForceInOption = None,
    force_out: ForceOutOption = None,
    commitments: CommitmentsOption = None,
    one_shot: OneShotOption = False,
    variant_set: VariantSetOption = None,
    set_: RunSetOption = None,
    out: OutOption = None,
    json_: JsonOption = False,
) -> None:
    """Plan the base and a variant on the same scenarios and show the difference.

    Both sides are plans (`portopt plan`) unless --one-shot. Writes whatif.csv (each project
    whose round, selection or amount changed, or that the variant names; a project the base
    left out is marked so) and whatif.json (the headline deltas and both solves; one-shot: with
    paired standard errors over the evaluation scenarios). Exit code 3 names the infeasible
    side.
    """
    # the engine and the model load when a command runs, not for ``portopt --help``
    from portopt.model.forcing import Forcing, parse_force_in
    from portopt.whatif import (
        Variant,
        load_additions,
        whatif,
        whatif_plan,
        write_plan_whatif,
        write_whatif,
    )

    base_config = config_with_overrides(config, set_)
    if add is None and not drop and not variant_set and not force_in and not force_out:
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
                    "give the variant: --force-in ID, --force-out ID, --drop ID,"
                    f" --variant-set KEY=VALUE or (with --one-shot) --add FOLDER{hint}",
                )
            ],
            "no variant",
        )
    problems = []
    if one_shot:
        for name, given in (
            ("--commitments", commitments),
            ("--force-in", force_in),
            ("--force-out", force_out),
        ):
            if given:
                problems.append(Problem(name, None, None, "works on plans: drop --one-shot"))
    elif add is not None:
        problems.append(Problem("--add", None, None, "works on one-shot portfolios: --one-shot"))
    if problems:
        raise ConfigError(problems, "bad what-if")
    variant_config = _variant_config(config, set_ or [], variant_set) if variant_set else None
    if one_shot:  # a plan's keys mean nothing to the one-shot question
        refuse_plan_keys("whatif", base_config, *([variant_config] if variant_config else []))
    target = out if out is not None else DEFAULT_OUT
    check_target(target, base_config.output.overwrite)
    if not one_shot:
        forcing = Forcing(parse_force_in(force_in), tuple(force_out or ()))
        with Console(stderr=True).status("Planning the base and the variant"):
            plans = whatif_plan(
                base_config, variant_config, commitments, forcing, tuple(drop or ())
            )
        write_plan_whatif(plans, target, base_config.output.overwrite)
        if json_:
            print_json({**plans.summary(), "out_dir": target})
        else:
            Console().print(plan_summary(plans, target))
        return
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
            else replace(p, file="--variant-set")
            if p.file == "--set" and any(f"'{v}'" in p.message for v in variant_sets)
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


PLAN_LABELS = {
    "proposals": "Proposals",
    "proposed_usd": "Proposed",
    "committed_expected_usd": "Committed (expected)",
    "coverage_score": "Coverage score",
    "recovery_ratio": "Japan recovery",
    "p_recoup": "P(recoup)",
}


def plan_summary(result: PlanWhatIf, target: Path) -> Group:
    """The two plans' figures, then the projects that changed."""
    figures = Table(title=f"portopt whatif (plans): {result.description}", title_justify="left")
    for name in ("figure", "base plan", "variant plan", "delta"):
        figures.add_column(name, justify="left" if name == "figure" else "right")
    for figure, d in result.deltas().items():
        figures.add_row(
            PLAN_LABELS[figure],
            _plan_cell(figure, d["base"]),
            _plan_cell(figure, d["variant"]),
            _plan_cell(figure, d["delta"], "+"),
        )
    figures.caption = (
        f"base {result.base.get('status')}, variant {result.variant.get('status')}"
        + (
            "; the base plan kept (it left out what the variant takes out)"
            if result.kept_base
            else ""
        )
        + "; each plan's own figures, not paired per scenario"
        + _support_words(result.summary()["us_support"])
    )
    projects = Table(title="Projects that changed", title_justify="left")
    for name in ("project", "change", "base", "variant", "why"):
        projects.add_column(name)
    for r in result.changes.to_dict("records"):
        projects.add_row(
            r["name"],
            r["change"] or "no change",
            f"{r['base_quarter'] or '-'} {_usd(r['base_fund_usd'])}",
            f"{r['variant_quarter'] or '-'} {_usd(r['variant_fund_usd'])}",
            "; ".join(x for x in (r["cause"], r["note"]) if x),
        )
    projects.caption = " and ".join(sorted(p.name for p in target.iterdir())) + f" in {target}"
    return Group(figures, projects)


def _support_words(support: dict[str, Any]) -> str:
    """The US support's cost beside the effect, when the variant changes it."""
    variant = support.get("variant") or {}
    if not variant.get("projects"):
        return ""
    floors = any(p.get("price_floor") is not None for p in variant["projects"])
    what = "capex and the PV of the price floors' top-ups" if floors else "capex"
    words = f"; US support costs {_usd(support['cost_expected_usd'])} more (expected, {what})"
    if any(p.get("permitting_cost") for p in variant["projects"]):
        words += "; expedited permitting: cost not estimated (no source)"
    return words


def _plan_cell(figure: str, x: float | None, sign: str = "") -> str:
    if x is None:
        return "-"
    if figure.endswith("_usd"):
        return _usd(x, sign)
    return f"{x:{sign}.0f}" if figure == "proposals" else f"{x:{sign}.4f}"


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
