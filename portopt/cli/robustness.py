"""``portopt robustness CONFIG --batches B [--scheduler ADDRESS] [--out DIR] [--report RUN]``."""

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
from portopt.errors import ConfigError, Problem
from portopt.outputs import METRICS_FILE, REPORT_FILE, check_target

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
    json_: JsonOption = False,
) -> None:
    """Re-optimise on B independent scenario batches: each project's core index.

    The core index is the share of batches that select the project, with its 95% interval.
    Writes robustness.csv, batches.csv and robustness.html.
    """
    from portopt.sweeps import (
        attach_to_report,
        cluster,
        dashboard_link,
        run_robustness,
        status_counts,
        write_robustness,
    )

    cfg = config_with_overrides(config, set_)
    if batches < 2:
        raise ConfigError(
            [Problem("--batches", None, None, f"needs at least 2 batches, got {batches}")],
            "bad --batches",
        )
    if report is not None and not (report / METRICS_FILE).is_file():
        raise ConfigError(
            [Problem("--report", None, None, f"'{report}' is not the output folder of a run")],
            "bad --report",
        )
    target = out if out is not None else DEFAULT_OUT
    check_target(target, overwrite=True)
    catalog = load_catalog(cfg.catalog)
    with cluster(scheduler, workers) as client:
        label = f"Optimising on {batches} scenario batches"
        with sweep_progress(label, batches, dashboard_link(client)) as on_result:
            core, per_batch = run_robustness(catalog, cfg, batches, client, on_result=on_result)
    write_robustness(core, per_batch, target)
    if report is not None:
        attach_to_report(report, core)
    counts = status_counts(per_batch)
    if json_:
        print_json(
            {
                "batches": per_batch["status"].value_counts().to_dict(),
                "core": core.loc[core["class"] == "core", "id"].tolist(),
                "borderline": core.loc[core["class"] == "borderline", "id"].tolist(),
                "out_dir": target,
                "report": None if report is None else report / REPORT_FILE,
            }
        )
    else:
        Console().print(_summary(core, counts, target, report))


def _summary(core: pd.DataFrame, counts: str, target: Path, report: Path | None) -> Table:
    table = Table(title=f"portopt robustness ({counts})", title_justify="left")
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


__all__ = ["command"]
