"""``portopt synth``: write a synthetic catalog that follows the bundled one (portopt/synth.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portopt.errors import InputError, Problem


def command(
    projects: Annotated[int, typer.Option("--projects", help="Number of synthetic candidates.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (replaced atomically).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same catalog).")] = 0,
) -> None:
    """Write a synthetic catalog whose per-sector distributions follow the bundled catalog's."""
    from portopt.outputs import check_target
    from portopt.synth import MAX_PROJECTS, write_synth

    if not 1 <= projects <= MAX_PROJECTS:
        raise InputError(
            [Problem("--projects", None, None, f"expected 1 to {MAX_PROJECTS:,}, got {projects}")]
        )
    if seed < 0:
        raise InputError([Problem("--seed", None, None, f"expected >= 0, got {seed}")])
    if out.exists() and not out.is_dir():
        raise InputError([Problem(str(out), None, None, "is a file; expected a folder path")])
    check_target(out, overwrite=True)
    path = write_synth(projects, seed, out)
    typer.echo(f"wrote a synthetic catalog of {projects} projects (seed {seed}) to {path}")
