"""``portopt init-config NAME [--out FILE] [--force]``: write a bundled example config out."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from portopt.config import CONFIG_SUFFIX, bundled_configs
from portopt.errors import InputError, Problem
from portopt.outputs import atomic_file


def command(
    name: Annotated[
        str,
        typer.Argument(
            help="A bundled config: "
            + ", ".join(bundled_configs())
            + ". Edit the copy, then `portopt run FILE`."
        ),
    ] = "default",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: NAME.yaml here).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write one of the example configs shipped with portopt, to edit and run."""
    bundled = bundled_configs()
    key = name.removesuffix(CONFIG_SUFFIX)
    if key not in bundled:
        raise InputError(
            [Problem(name, None, None, f"no bundled config of that name; one of {list(bundled)}")],
            "unknown bundled config",
        )
    target = out if out is not None else Path(key + CONFIG_SUFFIX)
    if target.is_dir():
        raise InputError(
            [Problem(str(target), None, None, "is a folder; give the path of a file to write")],
            "not a file",
        )
    above = next((p for p in target.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise InputError(
            [Problem(str(target), None, None, f"{above} is a file, not a folder")], "not a file"
        )
    if target.exists() and not force:
        raise InputError(
            [Problem(str(target), None, None, "exists; pass --force to replace it")],
            "file exists",
        )
    with atomic_file(target) as tmp:
        shutil.copyfile(bundled[key], tmp)
    typer.echo(f"wrote {target} (the bundled '{key}' config)")
