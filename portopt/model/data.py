"""The numbers the allocation model is made of, taken from the catalog and the scenarios.

Money is in **billions of dollars** inside the model (HiGHS loses its feasibility tolerance with
coefficients near 1e10). Symbols follow DESIGN.md: ``i`` a project, ``k`` a chokepoint, ``s`` an
optimisation scenario, ``S`` their number.

The coverage fields (``c_lin``, ``sat_rows``, ...) are the full-scenario lowering of
:mod:`portopt.model.coverage`: one aux per saturating (chokepoint, scenario) pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from portopt.catalog import Catalog
from portopt.config import RunConfig, quarter_index
from portopt.engine.scenario_set import ScenarioSet
from portopt.model.coverage import chokepoint_coverage, chokepoint_parts, coverage_score
from portopt.plan.calendar import shift

BILLION = 1e9
COMMIT_DEADLINE_YEAR = 2028
"""Commitments must be made by 19 January 2029: later start years count in 2028's bucket."""


@dataclass
class ModelData:
    """Arrays the model terms compile from (all money in $B)."""

    ids: list[str]
    capex: np.ndarray  # (n,) base cost, $B
    lo: np.ndarray  # (n,) min fund share
    hi: np.ndarray  # (n,) max fund share
    committed: np.ndarray  # (n,) bool
    sector: np.ndarray  # (n,) sector name
    sponsor: np.ndarray  # (n,) sponsor name
    region: np.ndarray  # (n,) grid region
    japan_content: np.ndarray  # (n,)
    dc_load_mw: np.ndarray  # (n,)
    firm_gen_mw: np.ndarray  # (n,)
    workers: np.ndarray  # (n,) workers per year during the build
    start_q: np.ndarray  # (n,) quarter index of the (construction) start, clipped at 0
    build_q: np.ndarray  # (n,) base build quarters
    start_year: int  # calendar year of quarter 0
    start: str  # quarter 0's label (scenarios.start)
    depends_on: list[tuple[int, int]]  # (i, q): column i needs project q (an index of projects)
    excludes: list[tuple[int, int]]  # (q, r), q < r: projects that exclude each other
    # the plan: a column is a (project, proposal round); one column per project without a plan
    project: np.ndarray  # (n,) index into ``projects`` of each column's project
    projects: list[str]  # the projects' ids
    proposal_q: np.ndarray  # (n,) quarter index of the proposal round
    funding_q: np.ndarray  # (n,) quarter index the money is committed in
    decline: np.ndarray  # (n,) probability that Japan declines the proposal
    deploy_reward: float  # objective per $B expected committed (the plan's soft target), else 0
    weights: np.ndarray  # (K,) chokepoint weights
    chokepoint_ids: list[str]
    n_scen: int
    # coverage, pre-scaled by w_k m_ks / (S Σw) so the objective is c_lin·y + c_sat·t
    c_lin: np.ndarray  # (n,) linear coverage coefficient per project
    sat_rows: sp.csr_matrix  # (P, n) min(1, a_iks) of each saturating pair
    sat_pair: np.ndarray  # (P, 2) (k, s) of each saturating pair
    c_sat: np.ndarray  # (P,) objective coefficient of each pair's aux
    score_lin: sp.csr_matrix  # (S, n) per-scenario score from the linear pairs (×S)
    score_sat: sp.csr_matrix  # (S, P) per-scenario score from the aux (×S)
    # recoupment
    loss: np.ndarray  # (S, n) pv_draw - pv_japan per fund dollar
    e_japan: np.ndarray  # (n,) E[pv_japan]
    e_draw: np.ndarray  # (n,) E[pv_draw]
    # raw numbers for exact re-evaluation
    ratio: np.ndarray  # (n, K) cap_ik / gap_k
    online: np.ndarray  # (S, n)
    stress: np.ndarray  # (S, K)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def f_reward(self) -> np.ndarray:
        """(n,) the soft deployment target's objective per $B of each column's amount: the
        shortfall ``target - sum_i (1 - p_i) f_i`` costs ``deploy_reward`` per $B, so each
        expected committed $B earns it back (the target is at least the budget)."""
        return self.deploy_reward * self.expected_share

    @property
    def expected_share(self) -> np.ndarray:
        """(n,) share of a column's proposed amount expected to be committed: ``1 - decline``."""
        return 1.0 - self.decline

    def columns_of(self, q: int) -> np.ndarray:
        """Columns of project ``q``."""
        return np.flatnonzero(self.project == q)

    def quarter_label(self, q: int) -> str:
        """``YYYYQn`` of quarter index ``q``."""
        return shift(self.start, int(q))

    @property
    def is_plan(self) -> bool:
        """Whether the columns are a plan's (some project has more than one round)."""
        return bool(len(self.projects) < self.n)

    def eligible(self, i: int, q: int) -> np.ndarray:
        """Columns of project ``q`` that column ``i`` may need: in a plan, those proposed in
        the same round or earlier (a later tranche is not proposed before the one it needs);
        without a plan, q's one column."""
        cols = self.columns_of(q)
        if not self.is_plan:
            return cols
        return cols[self.proposal_q[cols] <= self.proposal_q[i]]

    def linked_columns(self) -> set[int]:
        """Columns whose project takes part in a dependency or an exclusion."""
        touched = {int(self.project[i]) for i, _ in self.depends_on}
        touched |= {q for _, q in self.depends_on}
        touched |= {q for pair in self.excludes for q in pair}
        return {int(i) for i in np.flatnonzero(np.isin(self.project, sorted(touched)))}

    @property
    def f_max(self) -> np.ndarray:
        """Largest fund amount of each project, $B."""
        return self.hi * self.capex

    @property
    def f_min(self) -> np.ndarray:
        """Smallest fund amount of each project when selected, $B."""
        return self.lo * self.capex

    def build_years(self) -> dict[int, np.ndarray]:
        """Person-years of construction work per calendar year: ``{year: (n,) array}``.

        A project builds during quarters ``start_q .. start_q + build_q - 1`` and employs
        ``workers`` people meanwhile, so a year holding ``m`` of those quarters needs
        ``workers · m / 4`` person-years.
        """
        cached = self.__dict__.get("_build_years")
        if cached is not None:
            return cached
        out: dict[int, np.ndarray] = {}
        for i in range(self.n):
            for q in range(int(self.start_q[i]), int(self.start_q[i] + self.build_q[i])):
                year = self.start_year + q // 4
                out.setdefault(year, np.zeros(self.n))[i] += self.workers[i] / 4.0
        self.__dict__["_build_years"] = dict(sorted(out.items()))  # the greedy asks often
        return self.__dict__["_build_years"]

    @cached_property
    def loss_by_project(self) -> np.ndarray:
        """(n, S) ``loss`` by project, so the rows of a portfolio's projects are contiguous."""
        return np.ascontiguousarray(self.loss.T)

    def commitment_year(self) -> np.ndarray:
        """Year each column's money is committed: its funding year, at most 2028 (deadline)."""
        years = self.start_year + self.funding_q // 4
        return np.minimum(years, COMMIT_DEADLINE_YEAR)


def aligned(scenarios: ScenarioSet, catalog: Catalog, name: str) -> np.ndarray:
    """The (S, n) field ``name`` with columns in the catalog's project order."""
    pos = {p: j for j, p in enumerate(scenarios.project_ids)}
    missing = [p for p in catalog.project_ids if p not in pos]
    if missing:
        raise ValueError(f"scenarios lack projects {missing[:5]}; regenerate them for this catalog")
    cols = np.array([pos[p] for p in catalog.project_ids], dtype=np.int64)
    arr = scenarios.project[name]
    return arr if np.array_equal(cols, np.arange(arr.shape[1])) else arr[:, cols]


def aligned_stress(scenarios: ScenarioSet, catalog: Catalog) -> np.ndarray:
    """The (S, K) stress with columns in the catalog's chokepoint order."""
    pos = {c: j for j, c in enumerate(scenarios.chokepoint_ids)}
    cols = np.array([pos[c] for c in catalog.chokepoint_ids], dtype=np.int64)
    return scenarios.stress[:, cols]


def coverage_ratio(catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """``cap_ik / gap_k`` as an (n, K) array, and the chokepoint weights (K,)."""
    gap = catalog.chokepoints["us_gap"].astype(float).to_numpy()
    weights = catalog.chokepoints["weight"].astype(float).to_numpy()
    return catalog.capacity_matrix() / gap[None, :], weights


def build_data(
    catalog: Catalog, scenarios: ScenarioSet, config: RunConfig, aux: bool = True
) -> ModelData:
    """Turn the catalog and the optimisation scenarios into :class:`ModelData`.

    ``aux=False`` leaves the full-scenario lowering of coverage empty (the cut model builds its
    own, :class:`~portopt.model.coverage.CoverageCuts`; at 1,000 × 50,000 the aux lowering is
    ~100M sparse entries).
    """
    p = catalog.projects
    ids = catalog.project_ids
    n = len(ids)
    start = config.scenarios.start

    def col(name: str) -> np.ndarray:
        return p[name].astype(float).to_numpy()

    start_q = np.array([max(0, quarter_index(str(q), start)) for q in p["earliest_start"]])
    base = [str(b) for b in p["project"]] if "project" in p else list(ids)
    projects = list(dict.fromkeys(base))
    where = {pid: q for q, pid in enumerate(projects)}
    project = np.array([where[b] for b in base], dtype=np.int64)
    deps = sorted(
        {
            (i, where[j])
            for i, js in enumerate(p["depends_on"])
            for j in js
            if j in where and where[j] != project[i]
        }
    )
    excl = sorted(
        {
            tuple(sorted((project[i], where[j])))
            for i, js in enumerate(p["excludes"])
            for j in js
            if j in where and where[j] != project[i]
        }
    )

    def quarters(name: str) -> np.ndarray:
        if name not in p:
            return start_q.copy()
        return np.array([quarter_index(str(q), start) for q in p[name]], dtype=np.int64)

    # not funded: own decline or a prerequisite's (unfunded_prob), else own only
    gone = "unfunded_prob" if "unfunded_prob" in p else "decline_prob"
    decline = col(gone) if gone in p else np.zeros(n)
    plan = "proposal_quarter" in p and config.plan.target == "soft"
    reward = config.plan.shortfall_price / 10.0 if plan else 0.0

    ratio, weights = coverage_ratio(catalog)
    online = aligned(scenarios, catalog, "online_share")
    stress = aligned_stress(scenarios, catalog)
    S = online.shape[0]
    lowering = _aux_lowering(online, ratio, stress, weights) if aux else _no_aux(n, S)

    draw = aligned(scenarios, catalog, "pv_draw")
    japan = aligned(scenarios, catalog, "pv_japan")
    return ModelData(
        ids=ids,
        capex=col("base_cost_usd") / BILLION,
        lo=col("min_fund_share"),
        hi=col("max_fund_share"),
        committed=(p["status"].astype(str) == "committed").to_numpy(),
        sector=p["sector"].astype(str).to_numpy(),
        sponsor=p["sponsor"].astype(str).to_numpy(),
        region=p["grid_region"].astype(str).to_numpy(),
        japan_content=col("japan_content"),
        dc_load_mw=col("dc_load_mw"),
        firm_gen_mw=col("firm_gen_mw"),
        workers=col("workers_per_year"),
        start_q=start_q,
        build_q=p["build_quarters"].astype(int).to_numpy(),
        start_year=int(start[:4]),
        start=start,
        depends_on=[(int(i), int(j)) for i, j in deps],
        excludes=[(int(a), int(b)) for a, b in excl],
        project=project,
        projects=projects,
        proposal_q=quarters("proposal_quarter"),
        funding_q=quarters("funding_quarter"),
        decline=decline,
        deploy_reward=reward,
        weights=weights,
        chokepoint_ids=catalog.chokepoint_ids,
        n_scen=S,
        **lowering,
        loss=draw - japan,
        e_japan=japan.mean(axis=0),
        e_draw=draw.mean(axis=0),
        ratio=ratio,
        online=online,
        stress=stress,
    )


def _aux_lowering(
    online: np.ndarray, ratio: np.ndarray, stress: np.ndarray, weights: np.ndarray
) -> dict[str, Any]:
    """The coverage fields of :class:`ModelData`: one aux per saturating pair."""
    S, n = online.shape
    scale = 1.0 / (S * weights.sum())

    c_lin = np.zeros(n)
    lin_parts, sat_parts, pairs, c_sat = [], [], [], []
    for part in chokepoint_parts(online, ratio, stress, weights):
        who, sat = part.who, part.saturating
        lin = np.where(sat[:, None], 0.0, part.a) * part.wm[:, None]
        c_lin[who] += lin.sum(axis=0) * scale
        lin_parts.append(
            sp.csr_matrix(
                (lin.ravel(), (np.repeat(np.arange(S), who.size), np.tile(who, S))), shape=(S, n)
            )
        )
        s_idx = np.flatnonzero(sat)
        if s_idx.size:
            rows = part.a[s_idx]
            sat_parts.append(
                sp.csr_matrix(
                    (
                        rows.ravel(),
                        (np.repeat(np.arange(s_idx.size), who.size), np.tile(who, s_idx.size)),
                    ),
                    shape=(s_idx.size, n),
                )
            )
            pairs.append(np.column_stack([np.full(s_idx.size, part.k), s_idx]))
            c_sat.append(part.wm[s_idx])
    sat_rows = sp.vstack(sat_parts, format="csr") if sat_parts else sp.csr_matrix((0, n))
    sat_rows.eliminate_zeros()
    sat_pair = np.vstack(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    wm_sat = np.concatenate(c_sat) if c_sat else np.zeros(0)
    P = sat_pair.shape[0]
    score_lin = (sum(lin_parts, sp.csr_matrix((S, n))) / weights.sum()).tocsr()
    score_sat = sp.csr_matrix(
        (wm_sat / weights.sum(), (sat_pair[:, 1], np.arange(P))), shape=(S, P)
    )

    return {
        "c_lin": c_lin,
        "sat_rows": sat_rows,
        "sat_pair": sat_pair,
        "c_sat": wm_sat * scale,
        "score_lin": score_lin,
        "score_sat": score_sat,
    }


def _no_aux(n: int, S: int) -> dict[str, Any]:
    return {
        "c_lin": np.zeros(n),
        "sat_rows": sp.csr_matrix((0, n)),
        "sat_pair": np.zeros((0, 2), dtype=np.int64),
        "c_sat": np.zeros(0),
        "score_lin": sp.csr_matrix((S, n)),
        "score_sat": sp.csr_matrix((S, 0)),
    }


def scores(data: ModelData, y: np.ndarray) -> np.ndarray:
    """Exact coverage score per scenario of a selection (:func:`coverage_score`)."""
    return coverage_score(
        chokepoint_coverage(data.online, data.ratio, y), data.stress, data.weights
    )
