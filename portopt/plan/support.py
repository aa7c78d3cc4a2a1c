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

:func:`with_support` applies them to the catalog before the plan's columns are built;
:func:`support_cost` gives each supported project's cost beside the plan's figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.errors import ConfigError, Problem

NOT_COSTED = "not estimated: no source prices it"


def with_support(catalog: Catalog, config: RunConfig) -> Catalog:
    """``catalog`` with each supported project's base cost and median delay changed (a new
    catalog); :class:`ConfigError` naming the key of an unknown project."""
    given = config.support.projects
    if not given:
        return catalog
    problems = [
        Problem(f"support.projects.{pid}", None, None, f"'{pid}' is not a catalog project")
        for pid in given
        if pid not in catalog.projects.index
    ]
    if problems:
        raise ConfigError(problems, "bad support")
    projects = catalog.projects.copy()
    for pid, s in given.items():
        projects.loc[pid, "base_cost_usd"] = float(projects.loc[pid, "base_cost_usd"]) * (
            1.0 - s.capex_reduction
        )
        delay = float(projects.loc[pid, "delay_median_quarters"])
        projects.loc[pid, "delay_median_quarters"] = max(0.0, delay - s.delay_reduction_quarters)
    return Catalog(projects, catalog.chokepoints, catalog.capacity, catalog.source)


def support_cost(catalog: Catalog, config: RunConfig, plan: pd.DataFrame | None) -> dict[str, Any]:
    """metrics.json's ``support``: each supported project's levers, whether the plan proposes
    it, and its cost to the US (``catalog``: the catalog as loaded, before support); the
    total expected cost of the capex support."""
    given = config.support.projects
    rows, total = [], 0.0
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
        rows.append(
            {
                "project": pid,
                "capex_reduction": s.capex_reduction,
                "delay_reduction_quarters": s.delay_reduction_quarters,
                "basis": s.basis,
                "proposed": pid in proposed,
                "capex_cost_usd": s.capex_reduction * base if pid in proposed else 0.0,
                "capex_cost_expected_usd": cost,
                "permitting_cost": NOT_COSTED if s.delay_reduction_quarters > 0 else None,
            }
        )
    return {"projects": rows, "cost_expected_usd": float(np.round(total, 2))}


__all__ = ["NOT_COSTED", "support_cost", "with_support"]
