"""What makes each project bankable: the US support that lifts Japan's expected recovery on it
to a target (``portopt bankable``).

The fund's candidates are "strategic but not bankable": many return Japan less than its money
and interest alone. For each catalog project, alone at its catalog start, over the optimisation
scenarios ``[0, S)`` (the optimiser's own), this finds the least of each US lever of
:mod:`portopt.plan.support` at which Japan's expected recovery on it,
:math:`E[\\mathrm{pv_{japan}}] / E[\\mathrm{pv_{draw}}]` (the ratio the plan's recovery floor
holds), reaches ``target`` (by default the config's recovery floor):

- ``capex_reduction``: the share of the project's base cost the US carries, on a 0.01 grid up to
  :data:`MAX_CAPEX_REDUCTION`; its cost is that share of the base cost (nominal dollars at
  commitment);
- ``price_floor``: a US floor on the price term of all the project's output for its life (1.0 =
  today's price, fixed in nominal dollars, replacing the row's own offtake terms), on a 0.05
  grid up to :data:`MAX_PRICE_FLOOR`; its cost is what it pays above the market price, the
  engine's ``pv_floor`` times the base cost, averaged over the scenarios (PV, discounted as the
  US's receipts are).

Each lever is searched alone, the other at none, from the catalog with the config's own
``support.projects`` applied (a lever found is on top of them: a capex share of the cost left,
a floor replacing a configured one). Japan's recovery on a project rises with each lever on the
same scenarios (less drawn for the same cash; more cash for the same draws), so a bisection on
the grid finds the least level: every unresolved project is stepped in one engine call per
bisection step. A project whose recovery already meets the target needs nothing (0); one that
the largest level does not lift to it is reported as out of reach (the level left empty).

The result is deterministic: the same catalog, config and seed give the same table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.generate import generate_scenarios
from portopt.errors import InputError, Problem, did_you_mean
from portopt.outputs import jsonable, staged_output, write_csv
from portopt.plan.support import cut_capex, own_offtake, set_price_floor, with_support

CAPEX_STEP = 0.01
MAX_CAPEX_REDUCTION = 0.95
"""The largest capex share searched (policy choice: a project the US pays for almost whole is
no longer the fund's)."""
FLOOR_STEP = 0.05
MAX_PRICE_FLOOR = 3.0
"""The highest price floor searched, times today's price (policy choice: three times today's
price for the whole life is past any offtake deal in the research files)."""
DEFAULT_TARGET = 1.0
"""The target when the config has no recovery floor: Japan gets its money and interest back."""

BANKABLE_CSV = "bankable.csv"
BANKABLE_JSON = "bankable.json"

COLUMNS = (
    "project_id",
    "name",
    "sector",
    "base_cost_usd",
    "recovery",
    "target",
    "capex_reduction",
    "capex_recovery",
    "capex_cost_usd",
    "price_floor",
    "price_floor_recovery",
    "price_floor_cost_usd",
    "replaces_offtake",
    "cheaper",
)
"""bankable.csv's columns (docs/outputs.md)."""


@dataclass(frozen=True)
class Lever:
    """One lever's grid, ``levels[k]`` for k = 0 .. K (level 0 is no support), and how it
    changes catalog rows (:mod:`portopt.plan.support`'s own edit of the lever)."""

    levels: np.ndarray
    apply: Callable[[pd.DataFrame, Sequence[str], np.ndarray], None]

    @property
    def top(self) -> int:
        return len(self.levels) - 1


CAPEX = Lever(
    np.round(np.arange(0, round(MAX_CAPEX_REDUCTION / CAPEX_STEP) + 1) * CAPEX_STEP, 10),
    cut_capex,
)
FLOOR = Lever(
    np.round(np.arange(0, round(MAX_PRICE_FLOOR / FLOOR_STEP) + 1) * FLOOR_STEP, 10),
    lambda projects, ids, floor: set_price_floor(projects, ids, floor),
)


@dataclass
class BankableResult:
    """``table``: bankable.csv, one row per project; ``summary``: bankable.json."""

    table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: str | Path, overwrite: bool = True) -> Path:
        """bankable.csv and bankable.json in ``out_dir``, written staged (a failure leaves
        nothing; an existing folder is replaced whole only when ``overwrite``)."""
        target = Path(out_dir)
        with staged_output(target, overwrite) as tmp:
            write_csv(self.table, tmp / BANKABLE_CSV)
            text = json.dumps(jsonable(self.summary), indent=2, allow_nan=False)
            (tmp / BANKABLE_JSON).write_text(text + "\n", encoding="utf-8")
        return target


def target_of(config: RunConfig, target: float | None) -> float:
    """The recovery to reach: ``target`` when given, else the config's expected-recovery
    floor, else :data:`DEFAULT_TARGET`; :class:`InputError` for a value that is not positive."""
    if target is None:
        floor = config.model.groups.recoupment
        target = floor.min_expected_recovery if floor.enabled else None
        target = DEFAULT_TARGET if target is None else float(target)
    try:
        value = float(target)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise InputError(
            [Problem("--target", None, None, f"must be a finite number above 0, got {target!r}")],
            "bad target",
        )
    return value


def chosen_projects(catalog: Catalog, projects: Sequence[str] | None) -> list[str]:
    """The catalog's ids of ``projects`` (all when None or empty), in catalog order;
    :class:`InputError` naming each unknown id."""
    ids = [str(p) for p in catalog.projects.index]
    if not projects:
        return ids
    unknown = [p for p in projects if p not in ids]
    if unknown:
        raise InputError(
            [
                Problem(
                    "--project", None, None, f"'{p}' is not a catalog project{did_you_mean(p, ids)}"
                )
                for p in unknown
            ],
            "bad project",
        )
    wanted = set(projects)
    return [p for p in ids if p in wanted]


def _with_levels(catalog: Catalog, lever: Lever, ids: list[str], level: np.ndarray) -> Catalog:
    """``catalog`` restricted to ``ids``, each with ``lever`` at its ``level`` (an index)."""
    projects = catalog.projects.loc[ids].copy()
    on = level > 0
    lever.apply(projects, list(projects.index[on]), lever.levels[level[on]])
    return Catalog(projects, catalog.chokepoints, catalog.capacity, catalog.source)


@dataclass
class _Outcome:
    """Per project at a level: Japan's expected recovery and the mean pv_floor per dollar."""

    recovery: np.ndarray
    floor_pv: np.ndarray


def _evaluate(
    catalog: Catalog,
    config: RunConfig,
    lever: Lever,
    ids: list[str],
    level: np.ndarray,
    backend: str,
) -> _Outcome:
    scenarios = generate_scenarios(
        _with_levels(catalog, lever, ids, level),
        config,
        backend=backend,
        scenarios=range(config.scenarios.optimisation),
    )
    draw = np.asarray(scenarios.project["pv_draw"]).mean(axis=0)
    japan = np.asarray(scenarios.project["pv_japan"]).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recovery = np.where(draw > 0, japan / draw, np.nan)
    return _Outcome(recovery, np.asarray(scenarios.project["pv_floor"]).mean(axis=0))


def least_levels(
    catalog: Catalog,
    config: RunConfig,
    lever: Lever,
    ids: list[str],
    target: float,
    backend: str = "auto",
    advance: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per project: the least level index of ``lever`` meeting ``target`` (-1: out of reach),
    the recovery and the mean ``pv_floor`` per dollar at that level (NaN out of reach), and
    the recovery at level 0.

    A bisection on the level grid, every unresolved project in one engine call per step: first
    levels 0 and the top (each project's bracket), then the midpoints."""

    def run(rows: np.ndarray, level: np.ndarray) -> _Outcome:
        out = _evaluate(catalog, config, lever, [ids[i] for i in rows], level, backend)
        if advance:
            advance()
        return out

    every = np.arange(len(ids))
    base = run(every, np.zeros(every.size, dtype=np.int64))
    found = np.where(base.recovery >= target, 0, -1)
    recovery = np.where(found == 0, base.recovery, np.nan)
    floor_pv = np.where(found == 0, base.floor_pv, np.nan)

    def take(rows: np.ndarray, level: np.ndarray, out: _Outcome, meets: np.ndarray) -> None:
        found[rows[meets]] = level[meets]
        recovery[rows[meets]] = out.recovery[meets]
        floor_pv[rows[meets]] = out.floor_pv[meets]

    rest = np.flatnonzero(found < 0)
    if rest.size:
        top = np.full(rest.size, lever.top)
        out = run(rest, top)
        meets = out.recovery >= target
        take(rest, top, out, meets)
        rest = rest[meets]  # each bracketed: fails at lo, meets at found
        lo = np.zeros(rest.size, dtype=np.int64)
        while (live := np.flatnonzero(found[rest] - lo > 1)).size:
            rows = rest[live]
            mid = (lo[live] + found[rows]) // 2
            out = run(rows, mid)
            meets = out.recovery >= target
            take(rows, mid, out, meets)
            lo[live[~meets]] = mid[~meets]
    return found, recovery, floor_pv, base.recovery


def bankable(
    catalog: Catalog,
    config: RunConfig,
    target: float | None = None,
    projects: Sequence[str] | None = None,
    backend: str = "auto",
    advance: Callable[[], None] | None = None,
) -> BankableResult:
    """bankable.csv and bankable.json (the module docstring) for ``projects`` (all when None)
    of ``catalog`` (as loaded; the config's ``support.projects`` are applied here)."""
    goal = target_of(config, target)
    ids = chosen_projects(catalog, projects)
    supported = with_support(catalog, config)
    cost = supported.projects.loc[ids, "base_cost_usd"].to_numpy(float)
    capex, capex_recovery, _, recovery = least_levels(
        supported, config, CAPEX, ids, goal, backend, advance
    )
    floor, floor_recovery, floor_pv, _ = least_levels(
        supported, config, FLOOR, ids, goal, backend, advance
    )
    rows = []
    for i, pid in enumerate(ids):
        row = supported.projects.loc[pid]
        c_share = float(CAPEX.levels[capex[i]]) if capex[i] >= 0 else None
        c_cost = round(float(c_share * cost[i]), 2) if c_share is not None else None
        f_level = float(FLOOR.levels[floor[i]]) if floor[i] >= 0 else None
        f_cost = None
        if f_level is not None:
            f_cost = 0.0 if f_level == 0 else round(float(floor_pv[i]) * cost[i], 2)
        options = {k: v for k, v in (("capex", c_cost), ("price floor", f_cost)) if v is not None}
        if recovery[i] >= goal:
            cheaper = "none needed"
        elif options:
            cheaper = min(options, key=lambda k: (options[k], k))
        else:
            cheaper = "out of reach"
        rows.append(
            {
                "project_id": pid,
                "name": str(row["name"]),
                "sector": str(row["sector"]),
                "base_cost_usd": cost[i],
                "recovery": float(recovery[i]),
                "target": goal,
                "capex_reduction": c_share,
                "capex_recovery": float(capex_recovery[i]) if c_share is not None else None,
                "capex_cost_usd": c_cost,
                "price_floor": f_level,
                "price_floor_recovery": float(floor_recovery[i]) if f_level is not None else None,
                "price_floor_cost_usd": f_cost,
                "replaces_offtake": own_offtake(row) if f_level else None,
                "cheaper": cheaper,
            }
        )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return BankableResult(table, summarise(table, config, goal))


def summarise(table: pd.DataFrame, config: RunConfig, target: float) -> dict[str, Any]:
    """bankable.json: the target and the grids, and how many projects (and how much of their
    cost) already meet it, each lever lifts to it, and neither does."""
    met = table["recovery"] >= target
    by_capex = ~met & table["capex_reduction"].notna()
    by_floor = ~met & table["price_floor"].notna()
    neither = ~met & ~by_capex & ~by_floor
    cost = table["base_cost_usd"]

    def part(mask: pd.Series) -> dict[str, Any]:
        return {"projects": int(mask.sum()), "base_cost_usd": float(cost[mask].sum())}

    cheapest = table.loc[~met, ["capex_cost_usd", "price_floor_cost_usd"]].min(axis=1)
    return {
        "target": target,
        "scenarios": config.scenarios.optimisation,
        "seed": config.seed,
        "config_hash": config.digest(),
        "capex_reduction_grid": [CAPEX_STEP, MAX_CAPEX_REDUCTION],
        "price_floor_grid": [FLOOR_STEP, MAX_PRICE_FLOOR],
        "projects": len(table),
        "meet_target": part(met),
        "by_capex_reduction": {
            **part(by_capex),
            "cost_usd": float(table.loc[by_capex, "capex_cost_usd"].sum()),
        },
        "by_price_floor": {
            **part(by_floor),
            "cost_usd": float(table.loc[by_floor, "price_floor_cost_usd"].sum()),
        },
        "out_of_reach": {**part(neither), "ids": table.loc[neither, "project_id"].tolist()},
        "cheapest_cost_usd": float(cheapest.dropna().sum()),
    }
