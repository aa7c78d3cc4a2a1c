"""The Python API of the two jobs: ``portopt.plan(...)`` and ``portopt.run(...)``.

Both run the pipeline (:mod:`portopt.pipeline`) and return a
:class:`~portopt.pipeline.PlanResult`: the tables as pandas DataFrames (``plan``,
``allocation``, ``coverage``, ``figures``, the scenario tables), ``metrics`` (metrics.json as a
dict), ``to_frames()``, ``write(out_dir)`` and a notebook display. Nothing is written to disk
unless ``out_dir`` is given::

    import portopt

    r = portopt.plan(overrides=["scenarios.evaluation=2000"])
    r.plan                      # one row per proposal
    r.write("runs/mine")        # the same output folder as `portopt plan --out runs/mine`
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from portopt.bankable import BankableResult
from portopt.bankable import bankable as find_bankable
from portopt.catalog import load_catalog
from portopt.config import (
    Override,
    RunConfig,
    bundled_configs,
    find_config,
    load_config,
    refuse_plan_keys,
)
from portopt.pipeline import PlanResult, RunProgress
from portopt.planning import run_plan
from portopt.run import run as run_once

ConfigLike = str | Path | RunConfig | None
"""A config file, the name of a bundled one (``default``, ``korea_terms`` ...), a validated
:class:`~portopt.config.RunConfig`, or None for the bundled default."""


def resolve_config(config: ConfigLike = None, overrides: Sequence[str] = ()) -> RunConfig:
    """The validated configuration: ``config`` (see :data:`ConfigLike`) with ``overrides``
    (``KEY=VALUE`` strings, as ``--set`` takes them) applied. Raises
    :class:`~portopt.errors.ConfigError` naming a bad key and where it came from."""
    if isinstance(config, RunConfig):
        if not overrides:
            return config
        given = [Override(k, v, "config") for k, v in config.model_dump().items()]
        return load_config(None, [*given, *overrides])
    path = bundled_configs()["default"] if config is None else find_config(config)
    return load_config(path, list(overrides))


def plan(
    config: ConfigLike = None,
    *,
    commitments: str | Path | pd.DataFrame | None = None,
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
    backend: str | None = None,
    progress: RunProgress | None = None,
) -> PlanResult:
    """Plan the deployment (``portopt plan``): which projects to propose in which round, with
    how much, evaluated on fresh scenarios with Japan's declines.

    ``commitments``: the decisions made, a CSV path or a DataFrame with its columns (project,
    quarter, amount_usd); None: ``plan.commitments``, else the bundled first tranche. The
    output folder is written only when ``out_dir`` is given. Raises a
    :class:`~portopt.errors.PortoptError` for bad input or an infeasible plan.
    """
    cfg = resolve_config(config, overrides)
    target = None if out_dir is None else Path(out_dir)
    return run_plan(
        cfg,
        commitments,
        out_dir=target,
        backend=backend,
        progress=progress,
        write=target is not None,
    )


def run(
    config: ConfigLike = None,
    *,
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
    backend: str | None = None,
    progress: RunProgress | None = None,
) -> PlanResult:
    """The one-shot selection (``portopt run``): every project at its earliest start, chosen
    at once, evaluated on fresh scenarios. The output folder is written only when ``out_dir``
    is given. Raises a :class:`~portopt.errors.PortoptError` for bad input or an infeasible
    configuration."""
    cfg = resolve_config(config, overrides)
    refuse_plan_keys("run", cfg)  # as the CLI does: the one-shot question would ignore them
    target = None if out_dir is None else Path(out_dir)
    return run_once(
        cfg, out_dir=target, backend=backend, progress=progress, write=target is not None
    )


def bankability(
    config: ConfigLike = None,
    *,
    overrides: Sequence[str] = (),
    target: float | None = None,
    projects: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    backend: str | None = None,
) -> BankableResult:
    """What makes each project bankable (``portopt bankable``): for each of ``projects`` (all
    when None), alone, the least US capex share and the least US price floor that lift Japan's
    expected recovery on it to ``target`` (default: the config's recovery floor, else 1.0),
    with what each costs the US (:mod:`portopt.bankable`). ``.table`` is bankable.csv,
    ``.summary`` bankable.json; the folder is written only when ``out_dir`` is given."""
    cfg = resolve_config(config, overrides)
    refuse_plan_keys("bankable", cfg)  # as the CLI does: each project alone
    result = find_bankable(load_catalog(cfg.catalog), cfg, target, projects, backend or cfg.backend)
    if out_dir is not None:
        result.write(out_dir)
    return result


__all__ = ["ConfigLike", "PlanResult", "bankability", "plan", "resolve_config", "run"]
