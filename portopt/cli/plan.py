"""``portopt plan [CONFIG] [--commitments FILE] [--out DIR] [--set key=value ...]``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from portopt.cli.options import (
    BackendOption,
    JsonOption,
    SchedulerOption,
    SeedOption,
    SetOption,
    config_with_overrides,
    print_json,
)
from portopt.cli.run import (
    RichProgress,
    figure_table,
    pct,
    resolve_config,
    status_row,
    usd_b,
)
from portopt.errors import ConfigError, Problem
from portopt.outputs import headline

if TYPE_CHECKING:
    from portopt.tradeoff import Mapper


def command(
    config: Annotated[
        str | None,
        typer.Argument(
            help="YAML run configuration: a file or a bundled config's name (default:"
            " configs/default.yaml if present, else the bundled default)."
        ),
    ] = None,
    commitments: Annotated[
        Path | None,
        typer.Option(
            "--commitments",
            help="CSV of decisions made (project, quarter, amount_usd): fixed, and only what is"
            " still open is re-optimised (default: plan.commitments, else the bundled first"
            " tranche of 2026Q1).",
        ),
    ] = None,
    no_commitments: Annotated[
        bool,
        typer.Option(
            "--no-commitments",
            help="Plan from scratch: no decision made, every project a candidate (a"
            " commitments file with a header and no rows is refused without it).",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: output.dir).")
    ] = None,
    backend: BackendOption = None,
    seed: SeedOption = None,
    set_: SetOption = None,
    json_: JsonOption = False,
    scheduler: SchedulerOption = None,
    alternatives: Annotated[
        int | None,
        typer.Option(
            "--alternatives",
            help="Also find K near-optimal plans (alternatives.csv): within --slack of the"
            " optimum, differing most from it and from each other (plan.alternatives.count).",
        ),
    ] = None,
    slack: Annotated[
        str | None,
        typer.Option(
            "--slack",
            help="How much of the optimum's objective an alternative may give up: 1% or 0.01"
            " (plan.alternatives.slack).",
        ),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="Output folder of a previous plan: write compare.csv, what changed since it"
            " and why (a project now committed, one declined, a changed input).",
        ),
    ] = None,
) -> None:
    """Plan the deployment: which projects to propose in which round, with how much, to the
    deadline; evaluate the plan on fresh scenarios (Japan's declines included) and write
    plan.csv, the tables, metrics.json and the report; and the plan frontier (frontier.csv:
    the plan at each expected-recovery floor down to plan.frontier.lowest_floor), solved in
    local processes or, with --scheduler, on a Dask cluster."""
    from portopt.planning import run_plan

    if no_commitments and commitments is not None:
        raise ConfigError(
            [Problem("--no-commitments", None, None, "cannot be given with --commitments")],
            "conflicting options",
        )
    sets = list(set_ or [])
    if alternatives is not None:
        if alternatives < 0:
            raise ConfigError(
                [
                    Problem(
                        "--alternatives", None, None, f"needs 0 or more plans, got {alternatives}"
                    )
                ],
                "bad --alternatives",
            )
        sets.append(f"plan.alternatives.count={alternatives}")
    if slack is not None:
        sets.append(f"plan.alternatives.slack={_share(slack)}")
    cfg = config_with_overrides(resolve_config(config), sets, seed)
    if slack is not None and cfg.plan.alternatives.count == 0:
        raise ConfigError(
            [
                Problem(
                    "--slack",
                    None,
                    None,
                    "is the alternatives' slack, but none are asked for: add --alternatives K"
                    " (or plan.alternatives.count)",
                )
            ],
            "bad --slack",
        )
    console = Console(stderr=True)
    with dask_mapper(scheduler) as mapper, RichProgress(console) as progress:
        result = run_plan(
            cfg,
            commitments,
            out_dir=out,
            backend=backend,
            progress=progress,
            no_commitments=no_commitments,
            mapper=mapper,
            compare=compare,
        )
    if json_:
        print_json(json_summary(result.metrics, result.out_dir))
    else:
        Console().print(summary_table(result.metrics, result.out_dir))


def _share(text: str) -> float:
    """``1%`` or ``0.01`` as a share; :class:`ConfigError` naming --slack otherwise."""
    raw = text.strip()
    try:
        return float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(
            [Problem("--slack", None, None, f"'{text}' is not a share like 1% or 0.01")],
            "bad --slack",
        ) from None


@contextmanager
def dask_mapper(scheduler: str | None) -> Iterator[Mapper | None]:
    """A mapper onto the Dask cluster at ``scheduler`` (tasks with retries, results in order),
    or None without one (the frontier then runs in local processes)."""
    if not scheduler:
        yield None
        return
    from portopt.sweeps import cluster, gather_as_completed, submit_all

    with cluster(scheduler) as client:

        def mapper(fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
            return gather_as_completed(client, submit_all(client, fn, args, "plan-frontier"))

        yield mapper


def json_summary(metrics: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """What ``--json`` prints: the plan's headline figures and the files.

    ``status`` and ``mip_gap`` say how far the solve proved the plan (``mip_gap`` is the proven
    relative gap, null when no bound was proved); the out-of-sample figures are those of the
    plan with Japan's declines drawn: ``coverage``, ``recovery_ratio`` (Japan's mean recovery),
    ``p_recoup`` and ``cvar_shortfall_share`` (CVaR of Japan's shortfall over capital, at
    ``recoupment_alpha``)."""
    plan = metrics["plan"]
    alpha = metrics.get("recoupment_alpha", 0.95)
    figures = headline(metrics.get("out_of_sample") or {}, alpha)
    keys = (
        "target_usd",
        "proposed_usd",
        "committed_expected_usd",
        "committed_p10_usd",
        "committed_p90_usd",
        "pipeline_reserve_usd",
        "deployment_gap_usd",
        "coverage",
        "coverage_lost_to_declines",
    )
    return {
        "status": metrics.get("status"),
        "mip_gap": metrics.get("mip_gap"),
        "proposals": metrics["projects"]["selected"],
        **{k: plan[k] for k in keys},
        "recovery_ratio": figures["recovery_ratio"],
        "p_recoup": figures["p_recoup"],
        "cvar_shortfall_share": figures["cvar_shortfall_share"],
        "recoupment_alpha": alpha,
        **({"compare": metrics["compare"]} if "compare" in metrics else {}),
        "out_dir": str(out_dir),
        "files": sorted(str(p) for p in Path(out_dir).iterdir()),
    }


def summary_table(metrics: dict[str, Any], out_dir: Path) -> Table:
    """The end-of-plan summary: deployment against the target, the rounds, the timings."""
    plan = metrics["plan"]
    alpha = metrics.get("recoupment_alpha", 0.95)
    recovery = headline(metrics.get("out_of_sample") or {}, alpha).get("recovery_ratio")
    rows = [
        status_row(metrics),
        (
            "Committed by the deadline",
            f"{usd_b(plan['committed_expected_usd'])} expected of the"
            f" {usd_b(plan['target_usd'])} target"
            f" (P10-P90 {usd_b(plan['committed_p10_usd'])}-{usd_b(plan['committed_p90_usd'])}),"
            f" deadline {plan['deadline']}",
        ),
        (
            "Proposed",
            f"{usd_b(plan['proposed_usd'])} in {metrics['projects']['selected']} proposals;"
            f" reserve for declines {usd_b(plan['pipeline_reserve_usd'])}",
        ),
        ("Deployment gap", usd_b(plan["deployment_gap_usd"])),
        (
            "Coverage score",
            f"{pct(plan['coverage'], 1)} ({pct(plan['coverage_lost_to_declines'], 1)} lost to"
            " declines)",
        ),
        ("Japan recovery ratio", "-" if recovery is None else f"{recovery:.2f}"),
    ]
    for r in plan["rounds"]:
        if r["proposals"]:
            cap = f"/{r['capacity']}" if r["capacity"] is not None else ""
            rows.append(
                (
                    f"  {r['proposal_quarter']}",
                    f"{r['proposals']}{cap} proposals, {usd_b(r['proposed_usd'])}, cumulative"
                    f" expected {usd_b(r['cumulative_committed_usd'])}",
                )
            )
    if "compare" in metrics:
        rows.append(compare_row(metrics["compare"]))
    return figure_table("portopt plan", rows, metrics, out_dir)


def compare_row(compare: dict[str, Any]) -> tuple[str, str]:
    """The summary's line on what changed since the previous plan (``--compare``)."""
    changes = ", ".join(f"{n} {k}" for k, n in compare["changes"].items()) or "no project changed"
    inputs = compare["inputs_changed"]
    words = f"{changes}; inputs changed: {'; '.join(inputs)}" if inputs else changes
    return (f"Since {compare['previous']}", words + " (compare.csv)")


__all__ = ["command"]
