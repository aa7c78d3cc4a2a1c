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

from portopt.config import Override, RunConfig, find_config, load_config
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
    sets: list[str | Override] = list(overrides or [])
    if seed is not None:
        sets.append(Override("seed", seed, f"--seed {seed}"))
    return load_config(None if path is None else find_config(path), sets)


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
