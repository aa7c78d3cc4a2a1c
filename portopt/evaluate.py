"""Out-of-sample evaluation: the chosen portfolio on scenarios the optimiser never saw.

For selection y and fund dollars f, per scenario s:

.. math::

    c_s = \\frac{\\sum_k w_k m_{ks} \\min(1, \\sum_i a_{iks} y_i)}{\\sum_k w_k}, \\qquad
    R_s = \\frac{\\sum_i f_i\\, \\mathrm{pvjapan}_{is}}{\\sum_i f_i\\, \\mathrm{pvdraw}_{is}},
    \\qquad L_s = \\sum_i f_i (\\mathrm{pvdraw}_{is} - \\mathrm{pvjapan}_{is}).

Reported: the distribution of the coverage score c (mean, P10/P50/P90, lower-tail CVaR),
Japan's recovery ratio R (mean, P10/P50/P90), P(R >= 1) (recouped by the horizon in PV),
CVaR_alpha(L) / Σf, each chokepoint's coverage, per project P(recoup_q >= 0), E[recovery] and
E[online share], and the gap between in-sample and out-of-sample figures. Scenarios are read
in chunks so a million-scenario set never needs (scenarios × projects × chokepoints) memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.scenario_set import ScenarioSet
from portopt.model.coverage import chokepoint_coverage, coverage_score
from portopt.model.data import aligned, aligned_stress, coverage_ratio
from portopt.model.risk import cvar, lower_cvar

CHUNK = 65_536
"""Scenarios per chunk."""


@dataclass
class Evaluation:
    """Tables for allocation.csv and coverage.csv and the figures for metrics.json."""

    allocation: pd.DataFrame
    coverage: pd.DataFrame
    metrics: dict[str, Any]


def _quantiles(x: np.ndarray) -> dict[str, float]:
    p10, p50, p90 = np.quantile(x, [0.1, 0.5, 0.9]) if x.size else (np.nan,) * 3
    return {
        "mean": float(x.mean()) if x.size else float("nan"),
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
    }


def _per_scenario(
    catalog: Catalog, scenarios: ScenarioSet, y: np.ndarray, f: np.ndarray, chunk: int
) -> dict[str, np.ndarray]:
    ratio, weights = coverage_ratio(catalog)
    n = scenarios.n
    out = {
        "score": np.empty(n),
        "japan": np.empty(n),
        "draw": np.empty(n),
        "cov": np.empty((n, ratio.shape[1]), dtype=np.float32),
        "recouped": np.zeros(len(y)),
        "online": np.zeros(len(y)),
        "pv_japan": np.zeros(len(y)),
        "pv_draw": np.zeros(len(y)),
    }
    online_all = aligned(scenarios, catalog, "online_share")
    stress_all = aligned_stress(scenarios, catalog)
    japan_all = aligned(scenarios, catalog, "pv_japan")
    draw_all = aligned(scenarios, catalog, "pv_draw")
    recoup_all = aligned(scenarios, catalog, "recoup_q")
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        online = online_all[a:b]
        cov = chokepoint_coverage(online, ratio, y)
        out["cov"][a:b] = cov
        out["score"][a:b] = coverage_score(cov, stress_all[a:b], weights)
        out["japan"][a:b] = japan_all[a:b] @ f
        out["draw"][a:b] = draw_all[a:b] @ f
        out["recouped"] += (recoup_all[a:b] >= 0).sum(axis=0)
        out["online"] += online.sum(axis=0)
        out["pv_japan"] += japan_all[a:b].sum(axis=0)
        out["pv_draw"] += draw_all[a:b].sum(axis=0)
    return out


def portfolio_figures(
    catalog: Catalog,
    config: RunConfig,
    scenarios: ScenarioSet,
    y: np.ndarray,
    fund_usd: np.ndarray,
    chunk: int = CHUNK,
) -> dict[str, Any]:
    """The scalar figures of a portfolio on ``scenarios`` (money in USD)."""
    figures, _ = _figures(catalog, config, scenarios, y, fund_usd, chunk)
    return figures


def _figures(
    catalog: Catalog,
    config: RunConfig,
    scenarios: ScenarioSet,
    y: np.ndarray,
    fund_usd: np.ndarray,
    chunk: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    y = np.asarray(y, dtype=float)
    f = np.asarray(fund_usd, dtype=float)
    per = _per_scenario(catalog, scenarios, y, f, chunk)
    capital = f.sum()
    recovery = (
        per["japan"] / np.where(per["draw"] > 0, per["draw"], np.nan)
        if capital > 0
        else np.full(scenarios.n, np.nan)
    )
    recovery = np.nan_to_num(recovery, nan=0.0)
    alpha = config.model.groups.recoupment.alpha
    beta = config.model.coverage_cvar_alpha
    shortfall = per["draw"] - per["japan"]
    figures = {
        "scenarios": int(scenarios.n),
        "first_scenario": int(scenarios.first),
        "capital_usd": float(capital),
        "coverage": {
            **_quantiles(per["score"]),
            f"cvar_low_{beta:g}": float(lower_cvar(per["score"], beta)),
        },
        "recovery_ratio": _quantiles(recovery),
        "p_recoup": float((recovery >= 1.0).mean()) if capital > 0 else 0.0,
        f"shortfall_cvar_{alpha:g}_share": float(cvar(shortfall, alpha) / capital)
        if capital > 0
        else 0.0,
        "expected_shortfall_share": float(shortfall.mean() / capital) if capital > 0 else 0.0,
    }
    return figures, per


def evaluate(
    allocation: Any, catalog: Catalog, config: RunConfig, scenarios: ScenarioSet, chunk: int = CHUNK
) -> Evaluation:
    """The allocation on fresh ``scenarios`` (indices after the optimisation set).

    ``allocation`` is a :class:`portopt.model.Allocation` (``y``, ``fund_usd``, ``in_sample``
    and the solve's status, solver, objective, gap, timings, shadow prices).
    """
    y = np.asarray(allocation.y, dtype=float)
    f = np.asarray(allocation.fund_usd, dtype=float)
    figures, per = _figures(catalog, config, scenarios, y, f, chunk)
    n = max(scenarios.n, 1)
    p = catalog.projects
    base = p["base_cost_usd"].astype(float).to_numpy()
    table = pd.DataFrame(
        {
            "id": catalog.project_ids,
            "name": p["name"].astype(str).to_numpy() if "name" in p else catalog.project_ids,
            "sector": p["sector"].astype(str).to_numpy(),
            "selected": y > 0.5,
            "fund_usd": np.round(f, 2),
            "fund_share": np.round(f / base, 6),
            "expected_recovery_ratio": np.round(
                per["pv_japan"] / np.maximum(per["pv_draw"], 1e-300), 6
            ),
            "p_recoup": np.round(per["recouped"] / n, 6),
            "expected_online_share": np.round(per["online"] / n, 6),
        }
    )
    _, weights = coverage_ratio(catalog)
    cov = per["cov"].astype(np.float64)
    q = (
        np.quantile(cov, [0.1, 0.5, 0.9], axis=0)
        if scenarios.n
        else np.full((3, len(weights)), np.nan)
    )
    coverage = pd.DataFrame(
        {
            "id": catalog.chokepoint_ids,
            "name": catalog.chokepoints["name"].astype(str).to_numpy()
            if "name" in catalog.chokepoints
            else catalog.chokepoint_ids,
            "weight": weights,
            "expected_coverage": np.round(cov.mean(axis=0), 6),
            "p10": np.round(q[0], 6),
            "p50": np.round(q[1], 6),
            "p90": np.round(q[2], 6),
        }
    )
    inside = getattr(allocation, "in_sample", {}) or {}
    metrics = {
        "status": allocation.status,
        "solver": allocation.solver,
        "objective": allocation.objective,
        "mip_gap": allocation.mip_gap,
        "capital_committed_usd": float(f.sum()),
        "selected": [i for i, v in zip(catalog.project_ids, y, strict=True) if v > 0.5],
        "sector_shares": {
            s: float(f[table["sector"].to_numpy() == s].sum() / max(f.sum(), 1e-300))
            for s in sorted(set(table["sector"]))
        },
        "in_sample": inside,
        "out_of_sample": figures,
        "in_vs_out": _gaps(inside, figures),
        "binding": list(getattr(allocation, "binding", [])),
        "shadow_prices": list(getattr(allocation, "shadow_prices", [])),
        "timings": dict(getattr(allocation, "timings", {})),
    }
    return Evaluation(table, coverage, metrics)


def _gaps(inside: dict[str, Any], outside: dict[str, Any]) -> dict[str, float]:
    """Out-of-sample minus in-sample for every scalar figure both hold."""
    out: dict[str, float] = {}
    for key, value in outside.items():
        other = inside.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            out.update({f"{key}.{k}": float(v - other[k]) for k, v in value.items() if k in other})
        elif isinstance(value, float) and isinstance(other, float):
            out[key] = float(value - other)
    return out
