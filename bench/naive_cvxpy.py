"""The naive baseline: the allocation model as a user would write it directly in CVXPY.

Same model as ``portopt.model`` (DESIGN.md; same numbers, in $B so that HiGHS finds solutions at
all), written plainly: a loop over chokepoints with an auxiliary variable per (chokepoint,
scenario) for *every* chokepoint, box limits as constraints rather than variable bounds, the
CVaR of Japan's shortfall with one row per scenario, no incumbent, solved by HiGHS through
``problem.solve`` with the same time limit and MIP gap. Kept in ``bench/`` so every speed-up of
the real path is a ratio measured in the same run.

.. math::

    \\max_{y \\in \\{0,1\\}^n, f}\\ \\frac{1}{S \\sum_k w_k}\\sum_k \\sum_s w_k m_{ks} t_{ks}
        + \\frac{\\tau}{B} \\sum_i f_i (\\mathbb E[\\mathrm{pvjapan}_i]
        - \\mathbb E[\\mathrm{pvdraw}_i])
    \\quad\\text{s.t.}\\quad t_{ks} \\le 1,\\ t_{ks} \\le \\sum_i a_{iks} y_i,\\ \\ldots

Constraint groups follow the config's ``model.groups`` (each enabled group written out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.scenario_set import ScenarioSet
from portopt.model.data import BILLION, build_data
from portopt.vocabulary import SECTORS


@dataclass
class NaiveResult:
    """What the naive solve returned: selection, amounts ($B), status and timings."""

    y: np.ndarray | None
    f: np.ndarray | None
    status: str
    objective: float | None
    bound: float | None
    mip_gap: float | None
    build_s: float
    compile_solve_s: float
    solver_s: float


def naive_problem(catalog: Catalog, scenarios: ScenarioSet, config: RunConfig):
    """The plain CVXPY problem and its (y, f) variables."""
    d = build_data(catalog, scenarios, config)  # the numbers only; the formulation is below
    m, g = config.model, config.model.groups
    n, S = d.n, d.n_scen
    y = cp.Variable(n, boolean=True)
    f = cp.Variable(n)
    total = cp.sum(f)
    cons = [f >= 0, f <= cp.multiply(d.hi * d.capex, y), f >= cp.multiply(d.lo * d.capex, y)]
    for i in np.flatnonzero(d.committed):
        cons += [y[i] == 1, f[i] == d.hi[i] * d.capex[i]]

    coverage = 0
    for k in range(d.ratio.shape[1]):
        who = np.flatnonzero(d.ratio[:, k] > 0)
        if who.size == 0:
            continue
        t = cp.Variable(S)
        a = d.online[:, who] * d.ratio[who, k][None, :]
        cons += [t <= 1, t <= a @ y[who]]
        coverage += d.weights[k] * (d.stress[:, k] @ t)
    coverage = coverage / (S * d.weights.sum())
    tiebreak = m.recovery_tiebreak / (m.budget_usd / BILLION)
    objective = cp.Maximize(coverage + tiebreak * ((d.e_japan - d.e_draw) @ f))

    if g.capital.enabled:
        cons += [total <= m.budget_usd / BILLION, total >= m.min_deployment_usd / BILLION]
        if g.capital.annual_commitment_cap_usd is not None:
            year = d.commitment_year()
            for yr in sorted(set(year.tolist())):
                cons.append(cp.sum(f[year == yr]) <= g.capital.annual_commitment_cap_usd / 1e9)
    if g.recoupment.enabled:
        r = g.recoupment
        eta = cp.Variable()
        u = cp.Variable(S)
        cons += [u >= 0, u >= d.loss @ f - eta]
        cons.append(eta + cp.sum(u) / ((1 - r.alpha) * S) <= r.max_shortfall_share * total)
        if r.min_expected_recovery is not None:
            cons.append(d.e_japan @ f >= r.min_expected_recovery * (d.e_draw @ f))
    if g.sector_shares.enabled:
        for s in SECTORS:
            lo, hi = g.sector_shares.bounds.get(s, (0.0, 1.0))
            in_s = d.sector == s
            if in_s.any():
                cons += [cp.sum(f[in_s]) <= hi * total, cp.sum(f[in_s]) >= lo * total]
            elif lo > 0:
                cons.append(lo * total <= 0)
    if g.japan_content.enabled:
        cons.append(d.japan_content @ f >= g.japan_content.floor * total)
    if g.power_balance.enabled:
        pb = g.power_balance
        need = (d.dc_load_mw - d.firm_gen_mw) / 1000.0
        for region in sorted(set(d.region[need != 0].tolist())):
            at = d.region == region
            head = pb.headroom_mw.get(region, pb.default_headroom_mw) / 1000.0
            cons.append(need[at] @ y[at] <= head)
    if g.workforce.enabled:
        wf = g.workforce
        for year, persons in d.build_years().items():
            for region in sorted(set(d.region[persons > 0].tolist())):
                at = d.region == region
                avail = wf.available_per_region_year.get(
                    f"{region}:{year}",
                    wf.available_per_region_year.get(region, wf.default_available),
                )
                cons.append(persons[at] @ y[at] / 1000.0 <= avail / 1000.0)
    if g.dependencies.enabled:
        cons += [y[i] <= y[j] for i, j in d.depends_on]
    if g.exclusions.enabled:
        cons += [y[i] + y[j] <= 1 for i, j in d.excludes]
    if g.max_projects.enabled:
        cons.append(cp.sum(y) <= g.max_projects.limit)
    if g.sponsor_cap.enabled:
        for sponsor in sorted(set(d.sponsor.tolist())):
            cons.append(cp.sum(f[d.sponsor == sponsor]) <= g.sponsor_cap.max_usd / BILLION)
    if g.review_capacity.enabled:
        new = ~d.committed
        for q in sorted(set(d.start_q[new].tolist())):
            cons.append(cp.sum(y[new & (d.start_q == q)]) <= g.review_capacity.per_quarter)
    return cp.Problem(objective, cons), y, f


def solve_naive(catalog: Catalog, scenarios: ScenarioSet, config: RunConfig) -> NaiveResult:
    """Build and solve the naive problem with HiGHS (config's time limit and MIP gap)."""
    t0 = time.perf_counter()
    problem, y, f = naive_problem(catalog, scenarios, config)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    opts = {"time_limit": float(config.solver.time_limit_s), "mip_rel_gap": config.solver.mip_gap}
    if config.solver.threads:
        opts["threads"] = int(config.solver.threads)
    try:
        problem.solve(solver=cp.HIGHS, verbose=config.solver.verbose, **opts)
    except cp.SolverError as exc:
        return NaiveResult(None, None, f"error: {exc}", None, None, None, build_s, 0.0, 0.0)
    elapsed = time.perf_counter() - t1
    stats = problem.solver_stats
    info = stats.extra_stats if stats is not None else None
    gap = float(info.mip_gap) if info is not None and np.isfinite(info.mip_gap) else None
    bound = -float(info.mip_dual_bound) if info is not None else None
    solver_s = float(stats.solve_time) if stats is not None and stats.solve_time else elapsed
    if y.value is None:
        return NaiveResult(None, None, problem.status, None, bound, gap, build_s, elapsed, solver_s)
    yv = np.round(np.asarray(y.value, float))
    fv = np.maximum(np.asarray(f.value, float), 0.0) * (yv > 0.5)
    return NaiveResult(
        yv, fv, problem.status, float(problem.value), bound, gap, build_s, elapsed, solver_s
    )
