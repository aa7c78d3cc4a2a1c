"""US support for a project, as a lever of the plan (``support.projects.<id>.*``).

Each entry is a policy choice the user makes (no figure here is sourced; the basis says so):

- ``capex_reduction``: the share of the project's base cost the US carries (federal land, water
  or power access; a grant): the project's ``base_cost_usd`` falls by that share, so the fund's
  amounts (shares of it) and Japan's draws fall with it while the project's cash does not. Its
  cost to the US is that share of the base cost, for each project the plan proposes (nominal
  dollars at commitment, expected with Japan's declines: a declined proposal gets no support).
- ``delay_reduction_quarters``: expedited permitting: the project's median delay
  (``delay_median_quarters``) shortened by that many quarters (not below zero). Its cost to
  the US is not estimated: no source prices a permitting acceleration; the report says so.
- ``price_floor`` (with ``price_floor_share`` and ``price_floor_years``): a US guarantee of
  the price term on that share of the output, fixed in nominal dollars, for that many years
  from completion (the life when null): the MP Materials and DoD kind of deal. It replaces the
  row's own offtake terms (``offtake_share``, ``offtake_floor``, ``offtake_years``,
  ``offtake_indexed`` 0, ``offtake_guarantor``), so the engine pays the floor as it pays any
  offtake floor (docs/scenario-model.md). Its cost to the US is what the floor pays above the
  market price: the engine's ``pv_floor`` (discounted as the US's receipts ``pv_us`` are)
  times the base cost, averaged over the evaluation scenarios with Japan's declines (a
  declined proposal gets no floor), for each project the plan proposes.

:func:`with_support` applies them to the catalog before the plan's columns are built;
:func:`support_cost` gives each supported project's cost beside the plan's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.errors import ConfigError, Problem, did_you_mean

NOT_COSTED = "not estimated: no source prices it"
US_GUARANTOR = "US (support.projects)"
"""The ``offtake_guarantor`` of a floor the support lever sets."""


def with_support(catalog: Catalog, config: RunConfig) -> Catalog:
    """``catalog`` with each supported project's base cost and median delay changed (a new
    catalog); :class:`ConfigError` naming the key of an unknown project."""
    given = config.support.projects
    if not given:
        return catalog
    ids = [str(p) for p in catalog.projects.index]
    problems = [
        Problem(
            f"support.projects.{pid}",
            None,
            None,
            f"'{pid}' is not a catalog project{did_you_mean(pid, ids)}",
        )
        for pid in given
        if pid not in catalog.projects.index
    ]
    if problems:
        raise ConfigError(problems, "bad support")
    projects = catalog.projects.copy()
    for pid, s in given.items():
        cut_capex(projects, [pid], s.capex_reduction)
        delay = float(projects.loc[pid, "delay_median_quarters"])
        projects.loc[pid, "delay_median_quarters"] = max(0.0, delay - s.delay_reduction_quarters)
        if s.price_floor is not None:
            set_price_floor(
                projects, [pid], s.price_floor, s.price_floor_share, s.price_floor_years
            )
    return Catalog(projects, catalog.chokepoints, catalog.capacity, catalog.source)


def cut_capex(projects: pd.DataFrame, ids: Sequence[str], share: Any) -> None:
    """The ``capex_reduction`` lever on the catalog rows ``ids``, in place: the base cost falls
    by ``share`` (a number, or one per row)."""
    cost = projects.loc[ids, "base_cost_usd"].to_numpy(float)
    projects.loc[ids, "base_cost_usd"] = cost * (1.0 - np.asarray(share, float))


def set_price_floor(
    projects: pd.DataFrame,
    ids: Sequence[str],
    floor: Any,
    share: float = 1.0,
    years: float | None = None,
) -> None:
    """The ``price_floor`` lever on the catalog rows ``ids``, in place: the row's offtake terms
    replaced by a US floor ``floor`` (a number, or one per row) on ``share`` of the output for
    ``years`` from completion (None: the life), fixed in nominal dollars."""
    projects.loc[ids, "offtake_share"] = share
    projects.loc[ids, "offtake_floor"] = floor
    projects.loc[ids, "offtake_years"] = np.nan if years is None else years
    projects.loc[ids, "offtake_indexed"] = 0.0
    projects.loc[ids, "offtake_guarantor"] = US_GUARANTOR


def _text(value: Any) -> str:
    """A catalog text cell, "" when blank (None or NaN)."""
    return (
        ""
        if value is None or (isinstance(value, float) and np.isnan(value))
        else str(value).strip()
    )


def own_offtake(row: pd.Series) -> str | None:
    """The catalog row's own offtake floor, in words (None when it has none)."""
    share, floor = float(row.get("offtake_share", 0.0)), float(row.get("offtake_floor", 0.0))
    if not share > 0.0 or not floor > 0.0:
        return None
    who = _text(row.get("offtake_guarantor")) or "its offtaker"
    years = row.get("offtake_years")
    term = "the life" if years is None or pd.isna(years) else f"{float(years):g} years"
    return f"share {share:g} at floor {floor:g} for {term}, paid by {who}"


def support_cost(
    catalog: Catalog,
    config: RunConfig,
    plan: pd.DataFrame | None,
    floor_cost: dict[str, float] | None = None,
) -> dict[str, Any]:
    """metrics.json's ``support``: each supported project's levers, whether the plan proposes
    it, and its cost to the US (``catalog``: the catalog as loaded, before support;
    ``floor_cost``: each proposed project's expected PV of its floor's top-ups, dollars, from
    the evaluation, :meth:`portopt.evaluate.Aggregates.floor_cost`); the total expected cost
    of the capex support and of the price floors."""
    given = config.support.projects
    floor_cost = floor_cost or {}
    rows, total, floors = [], 0.0, 0.0
    proposed = {}
    if plan is not None and len(plan):
        proposed = dict(
            zip(
                plan["project"].astype(str),
                1.0 - plan["decline_prob"].astype(float).to_numpy(),
                strict=True,
            )
        )
    for pid, s in given.items():
        base = float(catalog.projects.loc[pid, "base_cost_usd"])
        share = proposed.get(pid, 0.0)
        cost = s.capex_reduction * base * share
        total += cost
        floor = None
        if s.price_floor is not None:
            floor = float(np.round(floor_cost.get(pid, 0.0), 2)) if pid in proposed else 0.0
            floors += floor
        rows.append(
            {
                "project": pid,
                "capex_reduction": s.capex_reduction,
                "delay_reduction_quarters": s.delay_reduction_quarters,
                "price_floor": s.price_floor,
                "price_floor_share": s.price_floor_share if s.price_floor is not None else None,
                "price_floor_years": s.price_floor_years,
                "basis": s.basis,
                "proposed": pid in proposed,
                "capex_cost_usd": s.capex_reduction * base if pid in proposed else 0.0,
                "capex_cost_expected_usd": cost,
                "floor_cost_expected_usd": floor,
                "replaces_offtake": own_offtake(catalog.projects.loc[pid])
                if s.price_floor is not None
                else None,
                "permitting_cost": NOT_COSTED if s.delay_reduction_quarters > 0 else None,
            }
        )
    return {
        "projects": rows,
        "cost_expected_usd": float(np.round(total + floors, 2)),
        "capex_cost_expected_usd": float(np.round(total, 2)),
        "floor_cost_expected_usd": float(np.round(floors, 2)),
    }


def floor_payers(catalog: Catalog, floor_cost: dict[str, float]) -> dict[str, Any]:
    """metrics.json's ``offtake_floors``: what the offtake floors of the plan's projects are
    expected to pay above the market price (``floor_cost``: each project's expected PV of its
    floor's top-ups, dollars, Japan's declines drawn), by project and by payer (the catalog's
    ``offtake_guarantor``; the US for a floor the support lever set)."""
    names = catalog.projects.get("offtake_guarantor")
    rows = []
    for pid, cost in floor_cost.items():
        if cost > 0.0:
            who = "" if names is None else _text(names.get(pid))
            rows.append(
                {
                    "project_id": pid,
                    "guarantor": who or "not named",
                    "cost_expected_usd": float(np.round(cost, 2)),
                }
            )
    rows.sort(key=lambda r: (-r["cost_expected_usd"], r["project_id"]))
    by: dict[str, float] = {}
    for r in rows:
        by[r["guarantor"]] = by.get(r["guarantor"], 0.0) + r["cost_expected_usd"]
    return {
        "projects": rows,
        "by_guarantor": {k: float(np.round(v, 2)) for k, v in sorted(by.items())},
        "total_usd": float(np.round(sum(by.values()), 2)),
    }


__all__ = [
    "NOT_COSTED",
    "US_GUARANTOR",
    "cut_capex",
    "floor_payers",
    "set_price_floor",
    "support_cost",
    "with_support",
]
