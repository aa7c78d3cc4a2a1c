"""Options that several commands share, declared once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from portopt.config import PlanConfig, RunConfig, find_config, load_config
from portopt.errors import ConfigError, Problem
from portopt.outputs import jsonable


class Backend(StrEnum):
    """The scenario engine's backends, as ``--backend`` shows them in ``--help``."""

    auto = "auto"
    numpy = "numpy"
    cupy = "cupy"


def repeated(flag: str, help: str) -> Any:
    """The type of a repeatable text option ``flag`` (None when not given)."""
    return Annotated[list[str] | None, typer.Option(flag, help=help)]


def path_option(flag: str, help: str) -> Any:
    """The type of an option ``flag`` naming a file or folder (None when not given)."""
    return Annotated[Path | None, typer.Option(flag, help=help)]


def switch(flag: str, help: str) -> Any:
    """The type of an on/off option ``flag``."""
    return Annotated[bool, typer.Option(flag, help=help)]


ConfigArgument = Annotated[
    str, typer.Argument(help="YAML run configuration: a file, or a bundled config's name.")
]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="dotted override key=value, repeatable")
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Random seed (Philox key).")]
BackendOption = Annotated[
    Backend | None, typer.Option("--backend", help="Scenario engine (default: the config's).")
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", help="Print a JSON summary (headline figures, output paths) on stdout only."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
]
WorkersOption = Annotated[
    int, typer.Option("--workers", help="Worker processes of the local cluster.")
]


def config_with_overrides(
    path: str | Path | None, overrides: list[str] | None, seed: int | None = None
) -> RunConfig:
    """The validated config at ``path`` (a file or a bundled name; None: the schema's defaults)
    with ``--set`` overrides and ``--seed`` applied."""
    sets = list(overrides or [])
    if seed is not None:
        sets.append(f"seed={seed}")
    return load_config(None if path is None else find_config(path), sets)


def refuse_plan_keys(
    command: str, *configs: RunConfig, report: dict[str, Any] | None = None
) -> None:
    """Refuse a plan's inputs given to a command that answers the one-shot question and would
    ignore them (``run``, ``whatif``, ``frontier``, ``robustness``): any ``plan.*`` key away from
    its default, from the config file, ``--set`` or ``--vary``, and a plan's output folder
    (``report``: its metrics.json). Raises :class:`ConfigError` (exit 2) naming them.

    One check in one place: remove it when these commands run plans (research/layout-sketch.md).
    """
    default = _leaves(PlanConfig().model_dump(mode="json"))
    given: dict[str, Any] = {}
    for cfg in configs:
        for key, value in _leaves(cfg.plan.model_dump(mode="json")).items():
            if default.get(key) != value:
                given.setdefault(f"plan.{key}", value)
    problems = [
        Problem(
            key,
            None,
            None,
            f"{value!r} is an input of `portopt plan`; `portopt {command}` answers the one-shot"
            " question without the plan's rounds, commitments or target and would ignore it:"
            " remove it, or run `portopt plan`",
        )
        for key, value in sorted(given.items())
    ]
    if report is not None and "plan" in report:
        problems.append(
            Problem(
                "--report",
                None,
                None,
                f"is the output folder of a plan; `portopt {command}` re-optimises the one-shot"
                " question and would describe another model in the plan's report",
            )
        )
    if problems:
        raise ConfigError(problems, f"plan inputs given to `portopt {command}`")


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def print_json(summary: dict[str, Any]) -> None:
    """``summary`` as one JSON document on stdout (NaN as null, paths as strings)."""
    typer.echo(json.dumps(jsonable(summary), indent=2))


@contextmanager
def sweep_progress(
    label: str, total: int, dashboard: str | None
) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr with done/total, elapsed and time left for a sweep's tasks;
    the cluster's dashboard link first, when it has one. Yields ``on_result(done, total)``."""
    console = Console(stderr=True)
    if dashboard:
        console.print(f"Dask dashboard: {dashboard}", highlight=False, soft_wrap=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda done, n: bar.update(task, completed=done, total=n)
