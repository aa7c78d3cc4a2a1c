"""Out-of-sample evaluation: the chosen portfolio on scenarios the optimiser never saw.

For selection y and fund dollars f, per scenario s:

.. math::

    c_s = \\frac{\\sum_k w_k m_{ks} \\min(1, \\sum_i a_{iks} y_i)}{\\sum_k w_k}, \\qquad
    R_s = \\frac{\\sum_i f_i\\, \\mathrm{pvjapan}_{is}}{\\sum_i f_i\\, \\mathrm{pvdraw}_{is}},
    \\qquad L_s = \\sum_i f_i (\\mathrm{pvdraw}_{is} - \\mathrm{pvjapan}_{is}).

Reported: the distribution of the coverage score c (mean, P10/P50/P90, lower-tail CVaR),
Japan's recovery ratio R (mean, P10/P50/P90), P(R >= 1), CVaR_alpha(L) / Σf, each chokepoint's
coverage, per project P(pvjapan >= pvdraw), E[recovery] and E[online share], and the gap between
in-sample and out-of-sample figures.

"Japan recoups" has one meaning for a project and for a portfolio (docs/scenario-model.md):
the PV of Japan's receipts, to the end of the last project's life, at least equals the PV of its
draws, both at JBIC's funding cost: :math:`\\sum_i f_i\\,\\mathrm{pvjapan}_{is} \\ge
\\sum_i f_i\\,\\mathrm{pvdraw}_{is}` (one project: a single term).

The scenarios arrive in blocks (:meth:`Aggregates.add`), each folded into running aggregates
and then dropped, so a million evaluation scenarios never need (scenarios × projects) memory:
what is kept per scenario is c_s, the two sums of R_s, each chokepoint's coverage and, when the
engine was given the portfolio, its cash per quarter; quantiles are taken over those, exactly.

**The committed tranche alone.** The projects marked ``committed`` in the catalog, at the
amounts the plan gives them (a committed project's fund amount is fixed), are a sub-portfolio
of every plan, so its figures come from the same evaluation scenarios: :class:`Aggregates`
keeps, per scenario, the tranche's own coverage score and its two PV sums beside the plan's
(three more values a scenario), and ``metrics["tranche_alone"]`` holds its capital, coverage,
Japan's expected recovery, P(recoups) and CVaR share, with the plan's minus the tranche's.
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
"""Scenarios per chunk inside a block."""
KEPT_DTYPE = np.float32
"""Precision of the per-(scenario, chokepoint) coverage and per-(scenario, quarter) cash kept
for quantiles: they are shown to three or four digits, and half the memory of float64."""


@dataclass
class Evaluation:
    """Tables for allocation.csv and coverage.csv, the figures for metrics.json, and the
    per-scenario aggregates they came from (for the report's distributions)."""

    allocation: pd.DataFrame
    coverage: pd.DataFrame
    metrics: dict[str, Any]
    aggregates: Aggregates


class Aggregates:
    """What the evaluation keeps of the scenarios it has seen, fed one block at a time.

    Per scenario s (rows in scenario order): the coverage score :math:`c_s`,
    :math:`\\sum_i f_i\\,\\mathrm{pvjapan}_{is}` (``japan``), :math:`\\sum_i f_i\\,
    \\mathrm{pvdraw}_{is}` (``draw``), each chokepoint's coverage :math:`\\min(1, \\sum_i
    a_{iks} y_i)` (``cov``) and the portfolio's cash per quarter (``cash``, when the engine was
    given weights). Per project: sums over scenarios of
    :math:`[\\mathrm{pvjapan}_{is} \\ge \\mathrm{pvdraw}_{is}]` (Japan recoups), the online
    share, pvjapan, pvdraw and pvfloor (the offtake floors' top-ups). Memory is ``n`` × (3 +
    K + 3 H) values, whatever the blocks.
    """

    def __init__(
        self,
        catalog: Catalog,
        y: np.ndarray,
        f: np.ndarray,
        n: int,
        chunk: int = CHUNK,
        tranche: bool = True,
    ) -> None:
        self.catalog, self.chunk = catalog, chunk
        self.y = np.asarray(y, dtype=float)
        self.f = np.asarray(f, dtype=float)
        self.ratio, self.weights = coverage_ratio(catalog)
        self.score, self.japan, self.draw = np.empty(n), np.empty(n), np.empty(n)
        self.cov = np.empty((n, self.ratio.shape[1]), dtype=KEPT_DTYPE)
        self.cash: dict[str, np.ndarray] = {}
        p = len(self.y)
        self.recouped, self.online = np.zeros(p), np.zeros(p)
        self.pv_japan, self.pv_draw = np.zeros(p), np.zeros(p)
        self.pv_floor = np.zeros(p)
        self.first: int | None = None
        self.n = 0
        committed = committed_mask(catalog)
        self.tranche: _Tranche | None = None
        """The committed projects alone (per-scenario score and PV sums), when ``tranche`` and
        the catalog has committed projects."""
        if tranche and committed.any():
            self.tranche = _Tranche(self.y * committed, self.f * committed, n)

    def add(self, scenarios: ScenarioSet) -> None:
        """Fold the next block of scenarios in (blocks must follow one another)."""
        if self.first is None:
            self.first = scenarios.first
        elif scenarios.first != self.first + self.n:
            raise ValueError(
                f"blocks must be consecutive: expected scenario {self.first + self.n},"
                f" got {scenarios.first}"
            )
        if self.n + scenarios.n > len(self.score):
            raise ValueError(f"more than the {len(self.score)} scenarios this was sized for")
        online_all = aligned(scenarios, self.catalog, "online_share")
        stress_all = aligned_stress(scenarios, self.catalog)
        japan_all = aligned(scenarios, self.catalog, "pv_japan")
        draw_all = aligned(scenarios, self.catalog, "pv_draw")
        self.pv_floor += aligned(scenarios, self.catalog, "pv_floor").sum(axis=0)
        for a in range(0, scenarios.n, self.chunk):
            b = min(scenarios.n, a + self.chunk)
            rows = slice(self.n + a, self.n + b)
            online = online_all[a:b]
            cov = chokepoint_coverage(online, self.ratio, self.y)
            self.cov[rows] = cov
            self.score[rows] = coverage_score(cov, stress_all[a:b], self.weights)
            self.japan[rows] = japan_all[a:b] @ self.f
            self.draw[rows] = draw_all[a:b] @ self.f
            if self.tranche is not None:
                self.tranche.add(rows, online, stress_all[a:b], japan_all[a:b], draw_all[a:b], self)
            self.recouped += (japan_all[a:b] >= draw_all[a:b]).sum(axis=0)
            self.online += online.sum(axis=0)
            self.pv_japan += japan_all[a:b].sum(axis=0)
            self.pv_draw += draw_all[a:b].sum(axis=0)
        for name, paths in scenarios.cash.items():
            if name not in self.cash:
                self.cash[name] = np.empty((len(self.score), paths.shape[1]), dtype=KEPT_DTYPE)
            self.cash[name][self.n : self.n + scenarios.n] = paths
        self.n += scenarios.n

    def floor_cost(self) -> dict[str, float]:
        """Each project's expected PV, in dollars, of what its offtake floor pays above the
        market price (``pv_floor`` times the base cost, over the scenarios seen): its
        guarantor's cost."""
        if self.n == 0:
            return {}
        base = self.catalog.projects["base_cost_usd"].to_numpy(dtype=float)
        mean = self.pv_floor / self.n * base
        return dict(zip(self.catalog.project_ids, mean.tolist(), strict=True))

    def recovery(self) -> np.ndarray:
        """Japan's recovery ratio :math:`R_s` per scenario seen (0 where nothing was drawn)."""
        japan, draw = self.japan[: self.n], self.draw[: self.n]
        return np.divide(japan, draw, out=np.zeros_like(japan), where=draw > 0)


def committed_mask(catalog: Catalog) -> np.ndarray:
    """(n,) whether each project (catalog order) is marked ``committed``."""
    p = catalog.projects
    if "status" not in p:
        return np.zeros(len(catalog.project_ids), dtype=bool)
    return (p["status"].astype(str) == "committed").to_numpy()


class _Tranche:
    """Per scenario, the committed tranche's coverage score and Japan's two PV sums."""

    def __init__(self, y: np.ndarray, f: np.ndarray, n: int) -> None:
        self.y, self.f = y, f
        self.score, self.japan, self.draw = np.empty(n), np.empty(n), np.empty(n)

    def add(
        self,
        rows: slice,
        online: np.ndarray,
        stress: np.ndarray,
        japan: np.ndarray,
        draw: np.ndarray,
        parent: Aggregates,
    ) -> None:
        cov = chokepoint_coverage(online, parent.ratio, self.y)
        self.score[rows] = coverage_score(cov, stress, parent.weights)
        self.japan[rows] = japan @ self.f
        self.draw[rows] = draw @ self.f

    def figures(self, config: RunConfig, n: int) -> dict[str, Any]:
        """The tranche's capital, coverage, recovery, P(recoups) and CVaR share (as
        :func:`_figures` words them) over the first ``n`` scenarios."""
        capital = float(self.f.sum())
        score, japan, draw = self.score[:n], self.japan[:n], self.draw[:n]
        recovery = np.divide(japan, draw, out=np.zeros_like(japan), where=draw > 0)
        alpha = config.model.groups.recoupment.alpha
        return {
            "capital_usd": capital,
            "coverage": _quantiles(score),
            "recovery_ratio": _quantiles(recovery),
            "p_recoup": float((recovery >= 1.0).mean()),
            f"shortfall_cvar_{alpha:g}_share": float(cvar(draw - japan, alpha) / capital),
        }


def tranche_alone(config: RunConfig, agg: Aggregates, plan: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's ``tranche_alone``: the committed projects alone on the evaluation
    scenarios, their ids, and the plan's figures minus theirs (``plan_minus_tranche``); an
    empty dict when the catalog commits nothing."""
    if agg.tranche is None:
        return {}
    ids = [i for i, c in zip(agg.catalog.project_ids, agg.tranche.f > 0, strict=True) if c]
    alone = agg.tranche.figures(config, agg.n)
    alpha = config.model.groups.recoupment.alpha
    cvar_key = f"shortfall_cvar_{alpha:g}_share"
    diff = {
        "capital_usd": plan["capital_usd"] - alone["capital_usd"],
        "coverage": plan["coverage"]["mean"] - alone["coverage"]["mean"],
        "recovery_ratio": plan["recovery_ratio"]["mean"] - alone["recovery_ratio"]["mean"],
        "p_recoup": plan["p_recoup"] - alone["p_recoup"],
        cvar_key: plan[cvar_key] - alone[cvar_key],
    }
    return {"projects": ids, **alone, "plan_minus_tranche": diff}


def capital_by_basis(catalog: Catalog, f: np.ndarray) -> dict[str, dict[str, Any]]:
    """metrics.json's ``capital_by_basis``: for each ``basis`` of the catalog's rows (fact,
    estimate, illustrative), the fund's dollars on the funded rows of that basis, their share
    of the capital committed and the rows' ids."""
    p = catalog.projects
    basis = p["basis"].astype(str).to_numpy() if "basis" in p else np.full(len(f), "unknown")
    total = max(float(f.sum()), 1e-300)
    ids = np.asarray(catalog.project_ids)
    out: dict[str, dict[str, Any]] = {}
    for b in sorted(set(basis)):
        rows = (basis == b) & (f > 0)
        usd = float(f[rows].sum())
        out[b] = {"usd": usd, "share": usd / total, "projects": ids[rows].tolist()}
    return out


def _quantiles(x: np.ndarray) -> dict[str, float]:
    p10, p50, p90 = np.quantile(x, [0.1, 0.5, 0.9]) if x.size else (np.nan,) * 3
    return {
        "mean": float(x.mean()) if x.size else float("nan"),
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
    }


def portfolio_figures(
    catalog: Catalog,
    config: RunConfig,
    scenarios: ScenarioSet,
    y: np.ndarray,
    fund_usd: np.ndarray,
    chunk: int = CHUNK,
) -> dict[str, Any]:
    """The scalar figures of a portfolio on ``scenarios`` (money in USD)."""
    aggregates = Aggregates(catalog, y, fund_usd, scenarios.n, chunk, tranche=False)
    aggregates.add(scenarios)
    return _figures(config, aggregates)


def _figures(config: RunConfig, agg: Aggregates) -> dict[str, Any]:
    capital = agg.f.sum()
    n = agg.n
    score, japan, draw = agg.score[:n], agg.japan[:n], agg.draw[:n]
    recovery = agg.recovery() if capital > 0 else np.zeros(n)
    alpha = config.model.groups.recoupment.alpha
    beta = config.model.coverage_cvar_alpha
    shortfall = draw - japan
    return {
        "scenarios": int(n),
        "first_scenario": int(agg.first or 0),
        "capital_usd": float(capital),
        "coverage": {
            **_quantiles(score),
            f"cvar_low_{beta:g}": float(lower_cvar(score, beta)),
        },
        "recovery_ratio": _quantiles(recovery),
        "p_recoup": float((recovery >= 1.0).mean()) if capital > 0 else 0.0,
        f"shortfall_cvar_{alpha:g}_share": float(cvar(shortfall, alpha) / capital)
        if capital > 0
        else 0.0,
        "expected_shortfall_share": float(shortfall.mean() / capital) if capital > 0 else 0.0,
    }


def evaluate(
    allocation: Any, catalog: Catalog, config: RunConfig, scenarios: ScenarioSet, chunk: int = CHUNK
) -> Evaluation:
    """The allocation on fresh ``scenarios`` (indices after the optimisation set), in memory.

    ``allocation`` is a :class:`portopt.model.Allocation` (``y``, ``fund_usd``, ``in_sample``
    and the solve's status, solver, objective, gap, timings, shadow prices). For scenarios that
    arrive in blocks, fold each into :class:`Aggregates` and call :func:`evaluation_of`.
    """
    aggregates = Aggregates(catalog, allocation.y, allocation.fund_usd, scenarios.n, chunk)
    aggregates.add(scenarios)
    return evaluation_of(allocation, catalog, config, aggregates)


def evaluation_of(
    allocation: Any, catalog: Catalog, config: RunConfig, agg: Aggregates
) -> Evaluation:
    """The tables and figures of ``allocation`` from the aggregates of every scenario seen."""
    if agg.n != len(agg.score):
        raise ValueError(f"only {agg.n} of the {len(agg.score)} scenarios were folded in")
    y, f = agg.y, agg.f
    figures = _figures(config, agg)
    n = max(agg.n, 1)
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
            "expected_recovery_ratio": np.round(agg.pv_japan / np.maximum(agg.pv_draw, 1e-300), 6),
            "p_recoup": np.round(agg.recouped / n, 6),
            "expected_online_share": np.round(agg.online / n, 6),
        }
    )
    cov = agg.cov[: agg.n].astype(np.float64)
    q = (
        np.quantile(cov, [0.1, 0.5, 0.9], axis=0)
        if agg.n
        else np.full((3, len(agg.weights)), np.nan)
    )
    coverage = pd.DataFrame(
        {
            "id": catalog.chokepoint_ids,
            "name": catalog.chokepoints["name"].astype(str).to_numpy()
            if "name" in catalog.chokepoints
            else catalog.chokepoint_ids,
            "weight": agg.weights,
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
        "capital_by_basis": capital_by_basis(catalog, f),
        "tranche_alone": tranche_alone(config, agg, figures),
        "in_vs_out": _gaps(inside, figures),
        "binding": list(getattr(allocation, "binding", [])),
        "shadow_prices": list(getattr(allocation, "shadow_prices", [])),
        "timings": dict(getattr(allocation, "timings", {})),
    }
    return Evaluation(table, coverage, metrics, agg)


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
