"""``portopt scenarios CONFIG --out FILE [--backend B] [--scenarios N] [--first I] [--seed N]``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

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

from portopt.cli.options import SeedOption, SetOption, config_with_overrides
from portopt.errors import ScenarioError


def command(
    config: Annotated[Path, typer.Argument(help="YAML run configuration.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    backend: Annotated[
        str | None, typer.Option("--backend", help="auto, numpy or cupy (default: the config's).")
    ] = None,
    scenarios: Annotated[
        int | None,
        typer.Option("--scenarios", help="How many scenarios (default: scenarios.optimisation)."),
    ] = None,
    first: Annotated[int, typer.Option("--first", help="Index of the first scenario.")] = 0,
    seed: SeedOption = None,
    set_: SetOption = None,
) -> None:
    """Generate scenarios [FIRST, FIRST + N) and write them to a Parquet file."""
    from portopt.catalog import load_catalog
    from portopt.engine.backend import resolve_backend
    from portopt.engine.generate import generate_scenarios

    cfg = config_with_overrides(config, set_, seed)
    n = cfg.scenarios.optimisation if scenarios is None else scenarios
    if n < 1 or first < 0:
        raise ScenarioError(
            f"--scenarios must be at least 1 and --first at least 0 (got {n}, {first})"
        )
    chosen = resolve_backend(backend or cfg.backend)  # fail before any work
    catalog = load_catalog(cfg.catalog)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"Generating {n:,} scenarios", total=n)
        result = generate_scenarios(
            catalog,
            cfg,
            backend=chosen,
            scenarios=range(first, first + n),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    write_atomically(result.to_parquet, out)
    meta = result.metadata
    console.print(
        f"wrote {out} ({n:,} scenarios × {len(result.project_ids)} projects, backend"
        f" {meta['backend']}, {meta['seconds']:.1f} s)"
    )


def write_atomically(write: Callable[[Path], None], path: Path) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["command"]
