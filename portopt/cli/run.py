"""``portopt run [CONFIG] [--out DIR] [--backend B] [--seed N] [--set key=value ...]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from portopt.cli.options import (
    BackendOption,
    JsonOption,
    SeedOption,
    SetOption,
    config_with_overrides,
    print_json,
)
from portopt.config import refuse_plan_keys
from portopt.outputs import headline

DEFAULT_CONFIG = Path("configs") / "default.yaml"


def command(
    config: Annotated[
        str | None,
        typer.Argument(
            help="YAML run configuration: a file or a bundled config's name (default:"
            " configs/default.yaml if present, else the bundled default)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: output.dir).")
    ] = None,
    backend: BackendOption = None,
    seed: SeedOption = None,
    set_: SetOption = None,
    json_: JsonOption = False,
) -> None:
    """Choose the portfolio, evaluate it on fresh scenarios and write the output folder."""
    from portopt.run import run

    cfg = config_with_overrides(resolve_config(config), set_, seed)
    refuse_plan_keys("run", cfg)
    console = Console(stderr=True)
    with RichProgress(console) as progress:
        result = run(cfg, out_dir=out, backend=backend, progress=progress)
    if json_:
        print_json(json_summary(result.metrics, result.out_dir))
    else:
        Console().print(summary_table(result.metrics, result.allocation, result.out_dir))


def resolve_config(arg: str | None) -> str | Path:
    """``arg``, else ``configs/default.yaml`` in the working directory, else the bundled
    ``default``."""
    if arg is not None:
        return arg
    local = Path.cwd() / DEFAULT_CONFIG
    return local if local.is_file() else "default"


def json_summary(metrics: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """What ``--json`` prints: the headline figures in and out of sample, and the files."""
    alpha = metrics.get("recoupment_alpha", 0.95)
    return {
        "status": metrics.get("status"),
        "solver": metrics.get("solver"),
        "capital_committed_usd": metrics.get("capital_committed_usd"),
        "projects_selected": metrics["projects"]["selected"],
        "out_of_sample": headline(metrics.get("out_of_sample") or {}, alpha),
        "in_sample": headline(metrics.get("in_sample") or {}, alpha),
        "out_dir": str(out_dir),
        "files": sorted(str(p) for p in Path(out_dir).iterdir()),
    }


class _Steps(MofNCompleteColumn):
    """``done/total`` for stages that count steps; nothing for the others."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("steps") else Text("")


class RichProgress:
    """A spinner per stage, with a bar for the stages that report steps (scenario generation)."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            BarColumn(),
            _Steps(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.label: str | None = None

    def __enter__(self) -> RichProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None and self.task is not None and not self.bar.tasks[self.task].finished:
            task = self.bar.tasks[self.task]
            self.bar.update(self.task, description=f"{task.description} [red]failed")
            self.bar.stop_task(self.task)
        self.bar.__exit__(*exc)

    def start(self, stage: str, label: str, total: int | None) -> None:
        self.task = self.bar.add_task(label, total=total, steps=total is not None)
        self.label: str | None = None

    def advance(self, done: int, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=done, total=total, steps=True)

    def solving(self, progress: Any) -> None:
        """The solve's incumbent, bound and gap beside the stage's label
        (:class:`portopt.model.SolveProgress`)."""
        if self.task is None:
            return
        if self.label is None:
            self.label = self.bar.tasks[self.task].description
        self.bar.update(self.task, description=f"{self.label} [dim]{solve_line(progress)}")

    def finish(self, stage: str, seconds: float) -> None:
        if self.task is not None:
            task = self.bar.tasks[self.task]
            total = task.total if task.total is not None else 1
            self.bar.update(self.task, completed=total, total=total)
            self.bar.stop_task(self.task)


def solve_line(progress: Any) -> str:
    """``round 2: incumbent 0.49172, bound 0.49184, gap 0.03%, 11 nodes`` (the objective is
    the coverage score plus the small terms, as the MILP of that round has it)."""

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.5f}"

    gap = "-" if progress.gap is None else f"{100 * progress.gap:.2f}%"
    return (
        f"round {progress.round}: incumbent {num(progress.incumbent)}, bound"
        f" {num(progress.bound)}, gap {gap}, {progress.nodes:,} nodes"
    )


def summary_table(metrics: dict[str, Any], allocation: Any, out_dir: Path, top: int = 5) -> Table:
    """The end-of-run summary: the headline figures, the top projects, the stage timings."""
    alpha = metrics.get("recoupment_alpha", 0.95)
    ins = headline(metrics.get("in_sample") or {}, alpha)
    oos = headline(metrics.get("out_of_sample") or {}, alpha)
    rows = [
        status_row(metrics),
        (
            "Capital committed",
            f"{usd_b(metrics.get('capital_committed_usd'))} of"
            f" {usd_b(metrics.get('budget_usd'))} ({pct(metrics.get('capital_committed_share'))})",
        ),
        (
            "Projects selected",
            f"{metrics['projects']['selected']} of {metrics['projects']['candidates']}",
        ),
        (
            "Coverage score",
            f"{pct(oos.get('coverage_score'), 1)} out of sample,"
            f" {pct(ins.get('coverage_score'), 1)} in sample",
        ),
        (
            "Japan recovery ratio",
            f"{num(oos.get('recovery_ratio'))} (in sample {num(ins.get('recovery_ratio'))})",
        ),
        (
            "P(Japan recoups)",
            f"{pct(oos.get('p_recoup'))} (in sample {pct(ins.get('p_recoup'))})",
        ),
        (
            f"CVaR{round(100 * alpha)} shortfall",
            f"{pct(oos.get('cvar_shortfall_share'), 1)} of capital (in sample"
            f" {pct(ins.get('cvar_shortfall_share'), 1)})",
        ),
    ]
    chosen = allocation[allocation["selected"]].sort_values("fund_usd", ascending=False)
    rows += [
        (f"  #{j + 1} by fund", f"{r.name} ({usd_b(r.fund_usd)})")
        for j, r in enumerate(chosen.head(top).itertuples(index=False))
    ]
    return figure_table("portopt run", rows, metrics, out_dir)


def status_row(metrics: dict[str, Any]) -> tuple[str, str]:
    """The summary's first row: the solve's status, solver and MIP gap."""
    gap = metrics.get("mip_gap")
    return (
        "Status",
        f"{metrics.get('status')} ({metrics.get('solver')}"
        + (f", MIP gap {100 * gap:.2f}%)" if gap is not None else ")"),
    )


def figure_table(
    title: str, rows: list[tuple[str, str]], metrics: dict[str, Any], out_dir: Path
) -> Table:
    """An end-of-run summary: ``rows``, then the stage timings and the output folder."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value")
    timings = metrics.get("timings_s", {})
    rows = [
        *rows,
        ("Stage timings", ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())),
        ("Output folder", str(out_dir)),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def usd_b(x: float | None) -> str:
    return "-" if x is None else f"${x / 1e9:,.1f}B"


def pct(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


__all__ = ["command"]
