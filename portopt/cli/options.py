"""Options that several commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portopt.config import RunConfig, load_config

SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="dotted override key=value, repeatable")
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Random seed (Philox key).")]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
]
WorkersOption = Annotated[
    int, typer.Option("--workers", help="Worker processes of the local cluster.")
]


def config_with_overrides(
    path: Path | None, overrides: list[str] | None, seed: int | None = None
) -> RunConfig:
    """The validated config at ``path`` with ``--set`` overrides and ``--seed`` applied."""
    sets = list(overrides or [])
    if seed is not None:
        sets.append(f"seed={seed}")
    return load_config(path, sets)
