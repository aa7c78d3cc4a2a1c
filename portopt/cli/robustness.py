"""``portopt robustness CONFIG --batches B [--vary scenarios|weights|both] [--scheduler ADDRESS]
[--out DIR] [--report RUN]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from portopt.catalog import CHOKEPOINTS, RANGED, load_catalog
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
from portopt.config import SCENARIO_INDICES, refuse_plan_keys
from portopt.errors import ConfigError, Problem
from portopt.outputs import METRICS_FILE, REPORT_FILE, check_target
from portopt.priorities import Mode, has_ranges

DEFAULT_OUT = Path("runs") / "robustness"


def command(
    config: ConfigArgument,
    batches: Annotated[int, typer.Option("--batches", help="Independent scenario batches (>= 2).")],
    scheduler: SchedulerOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help=f"Output folder (default: {DEFAULT_OUT}).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="A run's output folder whose report.html gains the core indices."
        ),
    ] = None,
    workers: WorkersOption = 2,
    set_: SetOption = None,
    vary: Annotated[
        Mode | None,
        typer.Option(
            "--vary",
            help="What each batch draws: its scenarios, its chokepoint weights and gaps (from"
            " the catalog's ranges, on the run's own scenarios), or both (default: both when"
            " the catalog has ranges, else scenarios).",
        ),
    ] = None,
    json_: JsonOption = False,
    commitments: Annotated[
        Path | None,
        typer.Option(
            "--commitments",
            help="CSV of decisions made (project, quarter, amount_usd) for every batch's plan"
            " (default: plan.commitments, else the bundled first tranche). Plans only.",
        ),
    ] = None,
    one_shot: Annotated[
        bool,
        typer.Option(
            "--one-shot",
            help="Re-optimise one-shot portfolios (every project at its earliest start) instead"
            " of plans.",
        ),
    ] = False,
) -> None:
    """Re-plan on B independent batches: each project's core index.

    Each batch is a plan (`portopt plan`'s, on the batch's scenarios), or with --one-shot a
    one-shot portfolio; a project counts as selected when the batch's plan proposes it.

    The core index is the share of batches that select the project, with its 95% interval.
    A batch draws its scenarios, its chokepoint weights and gaps from the catalog's ranges, or
    both (--vary). Writes robustness.csv, batches.csv and robustness.html.
    """
    from portopt.sweeps import (
        attach_to_report,
        check_report,
        cluster,
        dashboard_link,
        run_robustness,
        status_counts,
        write_robustness,
    )
    from portopt.sweeps.html import identity

    cfg = config_with_overrides(config, set_)
    if batches < 2:
        raise ConfigError(
            [Problem("--batches", None, None, f"needs at least 2 batches, got {batches}")],
            "bad --batches",
        )
    s_opt = cfg.scenarios.optimisation
    if s_opt * (batches + 1) > SCENARIO_INDICES:  # batch b draws [S (b + 1), S (b + 2))
        raise ConfigError(
            [
                Problem(
                    "--batches",
                    None,
                    None,
                    f"{batches:,} batches of {s_opt:,} scenarios pass the last scenario index"
                    f" 2^32 (scenarios are 32-bit Philox counters): at most"
                    f" {SCENARIO_INDICES // s_opt - 1:,}",
                )
            ],
            "bad --batches",
        )
    if report is not None and not (report / METRICS_FILE).is_file():
        raise ConfigError(
            [Problem("--report", None, None, f"'{report}' is not the output folder of a run")],
            "bad --report",
        )
    if one_shot:
        if commitments is not None:
            raise ConfigError(
                [Problem("--commitments", None, None, "works on plans: drop --one-shot")],
                "bad robustness",
            )
        refuse_plan_keys("robustness", cfg, report=None if report is None else _metrics(report))
    elif report is not None and "plan" not in _metrics(report):
        raise ConfigError(
            [
                Problem(
                    "--report",
                    None,
                    None,
                    f"'{report}' is the output folder of a one-shot run (`portopt run`), and"
                    " robustness plans: give a `portopt plan` folder, or add --one-shot",
                )
            ],
            "bad --report",
        )
    if report is not None:
        check_report(report)
    target = out if out is not None else DEFAULT_OUT
    check_target(target, overwrite=True)
    catalog = load_catalog(cfg.catalog)
    ranged = has_ranges(catalog)
    vary = vary or ("both" if ranged else "scenarios")
    if vary != "scenarios" and not ranged:
        file = Path(catalog.source) / CHOKEPOINTS.file
        columns = ", ".join(f"{c}_low/{c}_high" for c in RANGED)
        raise ConfigError(
            [
                Problem(
                    "--vary",
                    None,
                    None,
                    f"'{vary}' draws chokepoint priorities from their ranges, but {file} gives"
                    f" none ({columns} blank or absent); add ranges or use --vary scenarios",
                )
            ],
            "bad --vary",
        )
    with cluster(scheduler, workers) as client:
        verb = "Optimising" if one_shot else "Planning"
        label = f"{verb} on {batches} batches (varying {vary})"
        with sweep_progress(label, batches, dashboard_link(client)) as on_result:
            core, per_batch = run_robustness(
                catalog,
                cfg,
                batches,
                client,
                on_result=on_result,
                vary=vary,
                plan=not one_shot,
                commitments=commitments,
            )
    write_robustness(core, per_batch, target, identity(cfg, catalog.source))
    if report is not None:
        attach_to_report(report, core)
    counts = status_counts(per_batch)
    if json_:
        print_json(
            {
                "batches": per_batch["status"].value_counts().to_dict(),
                "core": core.loc[core["class"] == "core", "project_id"].tolist(),
                "borderline": core.loc[core["class"] == "borderline", "project_id"].tolist(),
                "out_dir": target,
                "report": None if report is None else report / REPORT_FILE,
            }
        )
    else:
        Console().print(_summary(core, counts, target, report))


def _summary(core: pd.DataFrame, counts: str, target: Path, report: Path | None) -> Table:
    vary = core["vary"].iloc[0]
    table = Table(title=f"portopt robustness ({counts}, varying {vary})", title_justify="left")
    for name in ("project", "class", "core index", "95% interval"):
        table.add_column(name)
    for r in core[core["selected_in"] > 0].to_dict("records"):
        table.add_row(
            r["name"],
            r["class"],
            f"{100 * r['core_index']:.0f}%",
            f"{100 * r['ci_low']:.0f}-{100 * r['ci_high']:.0f}%",
        )
    caption = f"robustness.csv and robustness.html in {target}"
    if report is not None:
        caption += f"; core indices added to {report / REPORT_FILE}"
    table.caption = caption
    return table


def _metrics(folder: Path) -> dict:
    """The run's metrics.json, or exit 2 naming it when it is not readable JSON."""
    path = folder / METRICS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            [Problem("--report", None, None, f"'{path}' is not a run's metrics.json ({exc})")],
            "bad --report",
        ) from None


__all__ = ["command"]
