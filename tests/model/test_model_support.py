"""Synthetic catalogs and scenario sets for the model tests, and a constraint group put to
work on them (no tests here).

The scenario engine and the bundled catalog are written elsewhere; these builders give the
model plausible inputs of any size, deterministic in ``seed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.scenario_set import ScenarioSet
from portopt.model import check_solution, optimize
from portopt.vocabulary import SECTORS

REGIONS = ("PJM", "ERCOT", "MISO", "SERC")


def synthetic_catalog(
    n: int = 8,
    k: int = 5,
    seed: int = 0,
    committed: int = 1,
    gap_lo: float = 0.3,
    gap_hi: float = 1.5,
) -> Catalog:
    """``n`` projects (the first ``committed`` of them committed) over ``k`` chokepoints."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i:03d}" for i in range(n)]
    cost = np.round(rng.uniform(1e9, 2.5e10, n), -6)
    lo = np.round(rng.uniform(0.3, 0.7, n), 2)
    hi = np.minimum(1.0, lo + np.round(rng.uniform(0.1, 0.5, n), 2))
    status = ["committed" if i < committed else "candidate" for i in range(n)]
    lo[:committed] = hi[:committed]
    projects = pd.DataFrame(
        {
            "id": ids,
            "name": [f"Project {i}" for i in range(n)],
            "sector": [SECTORS[i % len(SECTORS)] for i in range(n)],
            "sponsor": [f"sponsor{i % max(2, n // 3)}" for i in range(n)],
            "grid_region": [REGIONS[i % len(REGIONS)] for i in range(n)],
            "status": status,
            "base_cost_usd": cost,
            "build_quarters": rng.integers(4, 16, n),
            "earliest_start": [
                f"{2026 + int(q) // 4}Q{int(q) % 4 + 1}" for q in rng.integers(0, 10, n)
            ],
            "workers_per_year": np.round(rng.uniform(500, 5000, n)),
            "japan_content": np.round(rng.uniform(0.05, 0.5, n), 2),
            "min_fund_share": lo,
            "max_fund_share": hi,
            "dc_load_mw": np.where(rng.random(n) < 0.25, np.round(rng.uniform(200, 2000, n)), 0.0),
            "firm_gen_mw": np.where(rng.random(n) < 0.25, np.round(rng.uniform(200, 3000, n)), 0.0),
            "depends_on": [()] * n,
            "excludes": [()] * n,
        }
    ).set_index("id")
    chk_ids = [f"c{j:02d}" for j in range(k)]
    capacity = np.where(rng.random((n, k)) < min(0.6, 2.5 / k), rng.uniform(1, 10, (n, k)), 0.0)
    capacity[np.arange(n), rng.integers(0, k, n)] = rng.uniform(1, 10, n)
    gap = capacity.sum(axis=0) * rng.uniform(gap_lo, gap_hi, k) + 1.0
    chokepoints = pd.DataFrame(
        {
            "id": chk_ids,
            "name": chk_ids,
            "unit": "u",
            "us_gap": gap,
            "weight": rng.integers(1, 6, k).astype(float),
            "china_exposed": rng.random(k) < 0.5,
        }
    ).set_index("id")
    cap = pd.DataFrame(capacity, index=ids, columns=chk_ids)
    return Catalog(projects, chokepoints, cap, "<synthetic>")


def synthetic_scenarios(
    catalog: Catalog, n: int = 200, seed: int = 1, first: int = 0
) -> ScenarioSet:
    """Plausible random outcomes per (scenario, project) and stress per chokepoint."""
    rng = np.random.default_rng(seed + 7919 * first)
    p, k = len(catalog.project_ids), len(catalog.chokepoint_ids)
    failed = rng.random((n, p)) < 0.1
    overrun = np.exp(rng.normal(0.1, 0.2, (n, p)))
    pv_draw = 0.85 * overrun
    quality = rng.normal(1.0, 0.35, (1, p))
    pv_japan = np.where(
        failed, 0.05, np.clip(pv_draw * quality * np.exp(rng.normal(0, 0.3, (n, p))), 0, None)
    )
    online = np.where(failed, 0.0, np.clip(rng.beta(4, 2, (n, p)), 0, 1))
    recoup = np.where(pv_japan >= pv_draw, rng.integers(20, 79, (n, p)), -1).astype(np.int32)
    project = {
        "pv_draw": pv_draw,
        "pv_japan": pv_japan,
        "pv_us": pv_japan * 0.8,
        "recoup_q": recoup,
        "complete_q": np.where(failed, -1, rng.integers(8, 30, (n, p))).astype(np.int32),
        "online_share": online,
        "balance_end": np.clip(pv_draw - pv_japan, 0, None),
        "pv_floor": np.zeros((n, p)),
    }
    stress = np.exp(rng.normal(-0.01, 0.15, (n, k)))
    scen = {
        "coercion_share": rng.random(n) * 0.3,
        "coercion_episodes": rng.integers(0, 3, n).astype(np.int32),
    }
    return ScenarioSet(
        first, list(catalog.project_ids), list(catalog.chokepoint_ids), project, stress, scen
    )


def a_rule_at_work(name: str, settings: dict) -> list[str]:
    """The constraint group ``name`` at work on a synthetic catalog, with ``settings`` under
    ``model.groups.<name>`` (enabled): the portfolio solved with it passes the re-check and
    some of its entries bind with a price; returns the group's re-check lines on the portfolio
    solved without it (what the group catches)."""
    catalog = synthetic_catalog(12, 5, seed=3)
    scen = synthetic_scenarios(catalog, 200, seed=4)
    on, off = (
        RunConfig.model_validate(
            {
                "model": {"groups": {name: {**settings, "enabled": enabled}}},
                "solver": {"time_limit_s": 60},
            }
        )
        for enabled in (True, False)
    )
    held = optimize(catalog, on, scen)
    assert held.status == "optimal" and check_solution(held, catalog, scen, on) == []
    assert any(p["binding"] for p in held.shadow_prices if p["group"] == name), name
    free = optimize(catalog, off, scen)
    return [line for line in check_solution(free, catalog, scen, on) if line.startswith(name)]
