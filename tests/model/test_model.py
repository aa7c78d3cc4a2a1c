"""The allocation model: exact against enumeration, deterministic, Parameter re-solves, duals."""

from __future__ import annotations

import itertools

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import linprog
from test_model_support import synthetic_catalog, synthetic_scenarios

from portopt.config import RunConfig
from portopt.model import AllocationModel, StructuralChange, check_solution, optimize
from portopt.model.data import BILLION, build_data, scores
from portopt.model.risk import cvar, lower_cvar
from portopt.model.solve import solver_chain


def _config(**model: object) -> RunConfig:
    cfg = RunConfig.model_validate(
        {"model": model, "solver": {"mip_gap": 1e-7, "time_limit_s": 60}}
    )
    return cfg


def _best_amounts(data, cfg: RunConfig, y: np.ndarray) -> float | None:
    """max tiebreak·net·f over f for a fixed selection: an LP written directly for linprog.

    Variables ``[f (n), eta, u (S)]``; every group that involves f, in its own algebra.
    Returns the best value of the tie-break term, or None when the selection is infeasible.
    """
    m, g = cfg.model, cfg.model.groups
    n, S = data.n, data.n_scen
    nv = n + 1 + S
    rows, rhs = [], []

    def row(coef_f, eta=0.0, u=None, b=0.0):
        r = np.zeros(nv)
        r[:n] = coef_f
        r[n] = eta
        if u is not None:
            r[n + 1 :] = u
        rows.append(r)
        rhs.append(b)

    ones = np.ones(n)
    row(ones, b=m.budget_usd / BILLION)
    row(-ones, b=-m.min_deployment_usd / BILLION)
    for sector, (lo, hi) in g.sector_shares.bounds.items():
        mask = (data.sector == sector).astype(float)
        row(mask - hi * ones)
        row(lo * ones - mask)
    row(g.japan_content.floor * ones - data.japan_content)
    for s in sorted(set(data.sponsor)):
        row((data.sponsor == s).astype(float), b=g.sponsor_cap.max_usd / BILLION)
    if g.recoupment.min_expected_recovery is not None:
        row(g.recoupment.min_expected_recovery * data.e_draw - data.e_japan)
    A = np.array(rows)
    tail = np.zeros((S, nv))
    tail[:, :n] = data.loss
    tail[:, n] = -1.0
    tail[np.arange(S), n + 1 + np.arange(S)] = -1.0
    cv = np.zeros(nv)
    cv[:n] = -g.recoupment.max_shortfall_share
    cv[n] = 1.0
    cv[n + 1 :] = 1.0 / ((1 - g.recoupment.alpha) * S)
    A = np.vstack([A, tail, cv])
    b = np.r_[rhs, np.zeros(S), 0.0]
    lo_f = np.where(data.committed, data.f_max, data.f_min * y)
    bounds = [(lo_f[i], data.f_max[i] * y[i]) for i in range(n)] + [(None, None)] + [(0, None)] * S
    c = np.zeros(nv)
    c[:n] = -(data.e_japan - data.e_draw) * m.recovery_tiebreak / (m.budget_usd / BILLION)
    res = linprog(c, A_ub=A, b_ub=b, bounds=bounds, method="highs")
    return -res.fun if res.status == 0 else None


def _selection_ok(data, cfg: RunConfig, y: np.ndarray) -> bool:
    """The groups on y alone, written out again."""
    g = cfg.model.groups
    if y.sum() > g.max_projects.limit:
        return False
    if any(y[i] > y[j] for i, j in data.depends_on) or any(
        y[i] + y[j] > 1 for i, j in data.excludes
    ):
        return False
    for r in set(data.region):
        sel = (data.region == r) & (y > 0.5)
        head = g.power_balance.headroom_mw.get(r, g.power_balance.default_headroom_mw)
        if data.dc_load_mw[sel].sum() > data.firm_gen_mw[sel].sum() + head + 1e-9:
            return False
    for need in data.build_years().values():
        for r in set(data.region):
            if need[(data.region == r) & (y > 0.5)].sum() > g.workforce.default_available:
                return False
    new = (y > 0.5) & ~data.committed
    return all(
        (new & (data.start_q == q)).sum() <= g.review_capacity.per_quarter
        for q in set(data.start_q)
    )


def _enumerate(catalog, scen, cfg: RunConfig) -> float:
    data = build_data(catalog, scen, cfg)
    free = np.flatnonzero(~data.committed)
    best = -np.inf
    lam = cfg.model.coverage_cvar_weight
    for bits in itertools.product([0.0, 1.0], repeat=free.size):
        y = data.committed.astype(float)
        y[free] = bits
        if not _selection_ok(data, cfg, y):
            continue
        amounts = _best_amounts(data, cfg, y)
        if amounts is None:
            continue
        sc = scores(data, y)
        value = (1 - lam) * sc.mean() + lam * float(lower_cvar(sc, cfg.model.coverage_cvar_alpha))
        best = max(best, value + amounts)
    return best


@pytest.mark.parametrize("cvar_weight", [0.0, 0.5])
def test_milp_equals_enumeration(cvar_weight: float) -> None:
    catalog = synthetic_catalog(9, 5, seed=11, committed=1)
    scen = synthetic_scenarios(catalog, 120, seed=4)
    cfg = _config(
        budget_usd=5.5e10,
        coverage_cvar_weight=cvar_weight,
        recovery_tiebreak=0.01,
        groups={
            "recoupment": {"max_shortfall_share": 0.6, "min_expected_recovery": 0.8},
            "max_projects": {"enabled": True, "limit": 6},
            "sector_shares": {"bounds": {"metals": [0.0, 0.4]}},
            "review_capacity": {"per_quarter": 2},
        },
    )
    model = AllocationModel(catalog, scen, cfg)
    for kind in ("milp", "lp", "slack"):
        assert model.variant(kind).problem.is_dcp(dpp=True)
    allocation = optimize(catalog, cfg, scen, model=model)
    assert allocation.status == "optimal"
    assert allocation.objective == pytest.approx(_enumerate(catalog, scen, cfg), abs=1e-6)
    assert check_solution(allocation, catalog, scen, cfg) == []


def test_deterministic() -> None:
    catalog = synthetic_catalog(14, 6, seed=2)
    scen = synthetic_scenarios(catalog, 300, seed=9)
    cfg = _config(budget_usd=8e10)
    a, b = optimize(catalog, cfg, scen), optimize(catalog, cfg, scen)
    assert np.array_equal(a.y, b.y)
    assert np.array_equal(a.fund_usd, b.fund_usd)


def test_saturation_pairs_only_where_needed() -> None:
    catalog = synthetic_catalog(10, 4, seed=5)
    catalog.chokepoints.loc["c00", "us_gap"] = 1e9  # can never saturate
    catalog.chokepoints.loc["c01", "us_gap"] = 1e-3  # saturates wherever two are online
    scen = synthetic_scenarios(catalog, 50)
    data = build_data(catalog, scen, RunConfig())
    ks = set(data.sat_pair[:, 0].tolist())
    assert 0 not in ks and 1 in ks
    # the linearised objective equals the exact coverage for any 0/1 selection
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = (rng.random(data.n) < 0.5).astype(float)
        t = np.minimum(1.0, data.sat_rows @ y)
        assert data.c_lin @ y + data.c_sat @ t == pytest.approx(scores(data, y).mean())


def test_parameter_resolve_matches_fresh_build() -> None:
    catalog = synthetic_catalog(12, 5, seed=8)
    scen = synthetic_scenarios(catalog, 200, seed=3)
    cfg = _config(budget_usd=9e10)
    model = AllocationModel(catalog, scen, cfg)
    assert model.is_parameter("model.budget_usd")
    assert model.is_parameter("model.groups.sector_shares.bounds.energy")
    assert not model.is_parameter("model.groups.workforce.enabled")
    optimize(catalog, cfg, scen, model=model)
    cfg2 = cfg.model_copy(deep=True)
    cfg2.model.budget_usd = 5e10
    cfg2.model.groups.recoupment.max_shortfall_share = 0.5
    again = optimize(catalog, cfg2, scen, model=model)
    fresh = optimize(catalog, cfg2, scen)
    assert again.objective == pytest.approx(fresh.objective, abs=1e-7)
    model.set_params(budget_usd=6e10)
    assert model.groups[0].bounds["budget"].value == pytest.approx(60.0)
    bad = cfg.model_copy(deep=True)
    bad.model.groups.workforce.enabled = False
    with pytest.raises(StructuralChange):
        model.update(bad)


def test_shadow_price_of_budget_matches_finite_difference() -> None:
    catalog = synthetic_catalog(12, 5, seed=8)
    scen = synthetic_scenarios(catalog, 200, seed=3)
    cfg = _config(budget_usd=6e10, groups={"max_projects": {"enabled": True, "limit": 30}})
    model = AllocationModel(catalog, scen, cfg)
    allocation = optimize(catalog, cfg, scen, model=model)
    price = next(p for p in allocation.shadow_prices if p["row"] == "budget")
    assert price["coverage_per_unit"] >= 0.0

    def lp_value(budget_b: float) -> float:
        model.set_params(budget_usd=budget_b * BILLION)
        model.y_lo.value = np.maximum(model.data.committed, allocation.y > 0.5).astype(float)
        problem = model.variant("lp").problem
        problem.solve(solver=cp.HIGHS)
        model.release()
        return problem.value

    step = 1e-3
    base, more = lp_value(60.0), lp_value(60.0 + step)
    # the tie-break weight is divided by the budget: remove that effect on the base value
    assert more >= base - 1e-9 or price["coverage_per_unit"] == 0
    assert (more - base) / step * 10 == pytest.approx(
        price["coverage_per_unit"], rel=0.02, abs=1e-4
    )
    # relaxing the budget in the MILP never reduces coverage
    richer = cfg.model_copy(deep=True)
    richer.model.budget_usd = 7e10
    more_alloc = optimize(catalog, richer, scen, model=model)
    assert scores(model.data, more_alloc.y).mean() >= scores(model.data, allocation.y).mean() - 1e-9


def test_cvar_helper_is_exact() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=1000)
    etas = np.linspace(-3, 3, 4001)
    brute = min(e + np.maximum(x - e, 0).sum() / (0.05 * 1000) for e in etas)
    assert float(cvar(x, 0.95)) == pytest.approx(brute, abs=1e-3)
    assert float(cvar(x, 0.95)) == pytest.approx(np.sort(x)[-50:].mean())


def test_solver_chain_defaults_to_highs_then_scipy() -> None:
    chain = solver_chain(RunConfig().solver)
    assert chain[-2:] == ["highs", "scipy"]


def test_fallback_to_greedy_when_every_solver_fails(monkeypatch) -> None:
    from portopt.model import solve

    catalog = synthetic_catalog(10, 4, seed=6)
    scen = synthetic_scenarios(catalog, 100)
    cfg = _config(budget_usd=6e10, groups={"recoupment": {"max_shortfall_share": 0.9}})
    real = solve._SOLVERS["highs"]

    def broken(model, config, incumbent, kind):
        if kind == "milp":
            raise RuntimeError("solver crashed")
        return real(model, config, incumbent, kind)

    monkeypatch.setitem(solve._SOLVERS, "highs", broken)
    monkeypatch.setitem(solve._SOLVERS, "scipy", broken)
    cfg.solver.name = "highs"  # the full formulation's solver chain
    allocation = optimize(catalog, cfg, scen)
    assert allocation.status == "greedy"
    assert any("greedy incumbent" in n for n in allocation.notes)
    assert any("solver crashed" in n for n in allocation.notes)
    assert check_solution(allocation, catalog, scen, cfg) == []


def test_bundled_catalog_with_engine_scenarios() -> None:
    from portopt.catalog import load_catalog
    from portopt.engine.generate import generate_scenarios

    catalog = load_catalog(None)
    cfg = RunConfig.model_validate(
        {
            "model": {
                "groups": {
                    "recoupment": {"max_shortfall_share": 1.0, "min_expected_recovery": None}
                }
            }
        }
    )
    scen = generate_scenarios(catalog, cfg, "numpy", scenarios=range(0, 200))
    allocation = optimize(catalog, cfg, scen)
    assert allocation.status in ("optimal", "time_limit")
    assert check_solution(allocation, catalog, scen, cfg) == []
    committed = catalog.projects.index[catalog.projects["status"] == "committed"]
    assert set(committed) <= set(allocation.selected)


def test_time_limit_is_reported_with_its_gap() -> None:
    catalog = synthetic_catalog(40, 12, seed=3, gap_lo=0.3, gap_hi=1.5)
    scen = synthetic_scenarios(catalog, 600)
    cfg = RunConfig.model_validate(
        {
            "model": {"budget_usd": 1.2e11, "groups": {"recoupment": {"enabled": False}}},
            "solver": {"time_limit_s": 0.2, "mip_gap": 1e-9},
        }
    )
    allocation = optimize(catalog, cfg, scen)
    assert allocation.status in ("time_limit", "greedy", "optimal")
    if allocation.status == "time_limit":
        assert allocation.mip_gap > 1e-9
        assert any("gap of" in n for n in allocation.notes)
    assert check_solution(allocation, catalog, scen, cfg) == []


def test_each_shadow_price_carries_its_own_rows_meaning() -> None:
    catalog = synthetic_catalog(10, 4, seed=6)
    scen = synthetic_scenarios(catalog, 100)
    cfg = _config(
        budget_usd=6e10,
        min_deployment_usd=6e10,
        groups={"recoupment": {"max_shortfall_share": 0.9, "min_expected_recovery": None}},
    )
    prices = {p["row"]: p for p in optimize(catalog, cfg, scen).shadow_prices}
    assert all(p["meaning"] for p in prices.values())
    assert prices["budget"]["meaning"].startswith("The budget is fully used")
    assert prices["min_deployment"]["meaning"].startswith("The fund must deploy at least")
    assert prices["budget"]["binding"] and prices["min_deployment"]["binding"]
