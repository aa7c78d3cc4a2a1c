"""``portopt scenarios CONFIG --out DIR [--backend B] [--scenarios N] [--first I] [--seed N]``."""

from __future__ import annotations

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

from portopt.cli.options import (
    BackendOption,
    ConfigArgument,
    JsonOption,
    SeedOption,
    SetOption,
    config_with_overrides,
    print_json,
)
from portopt.config import SCENARIO_INDICES
from portopt.errors import InputError, Problem
from portopt.memory import check_fits, scenarios_estimate
from portopt.outputs import check_target, staged_output


def command(
    config: ConfigArgument,
    out: Annotated[
        Path, typer.Option("--out", help="Folder of Parquet tables to write (replaced whole).")
    ],
    backend: BackendOption = None,
    scenarios: Annotated[
        int | None,
        typer.Option("--scenarios", help="How many scenarios (default: scenarios.optimisation)."),
    ] = None,
    first: Annotated[int, typer.Option("--first", help="Index of the first scenario.")] = 0,
    seed: SeedOption = None,
    set_: SetOption = None,
    json_: JsonOption = False,
) -> None:
    """Generate scenarios [FIRST, FIRST + N) and write them as a folder of Parquet tables."""
    from portopt.catalog import load_catalog
    from portopt.engine.backend import resolve_backend
    from portopt.engine.generate import generate_scenarios

    cfg = config_with_overrides(config, set_, seed)
    n = cfg.scenarios.optimisation if scenarios is None else scenarios
    problems = [
        Problem(flag, None, None, f"must be at least {low}, got {value}")
        for flag, value, low in (("--scenarios", n, 1), ("--first", first, 0))
        if value < low
    ]
    if n > SCENARIO_INDICES:
        problems.append(
            Problem("--scenarios", None, None, f"at most 2^32 (scenario indices), got {n:,}")
        )
    elif first + n > SCENARIO_INDICES:
        problems.append(
            Problem("--first", None, None, f"{first} + {n} scenarios passes the last index 2^32")
        )
    if problems:
        raise InputError(problems, "bad scenario range")
    check_target(out, overwrite=True)
    chosen = resolve_backend(backend or cfg.backend)  # fail before any work
    catalog = load_catalog(cfg.catalog)
    estimate = scenarios_estimate(n, len(catalog.project_ids), len(catalog.chokepoint_ids))
    check_fits(estimate, f"--scenarios {n}")
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
    with staged_output(out) as tmp:
        result.to_parquet(tmp)
    meta = result.metadata
    if json_:
        print_json({"scenarios": [first, first + n], "backend": meta["backend"], "out": out})
        return
    console.print(
        f"wrote {out} ({n:,} scenarios × {len(result.project_ids)} projects, backend"
        f" {meta['backend']}, {meta['seconds']:.1f} s)"
    )


__all__ = ["command"]
