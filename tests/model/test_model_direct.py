"""The direct HiGHS path (portopt/model/direct.py): valid cuts, and the CVXPY model's optimum."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_small_catalog

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.model import AllocationModel, StructuralChange, check_solution, optimize
from portopt.model.data import build_data, scores
from portopt.model.direct import DirectModel, DirectSweep, scenario_sized
from portopt.model.risk import cvar
from portopt.model.shadow import shadow_prices
from portopt.sweeps import solve_points
from portopt.synth import write_synth


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory):
    folder = write_synth(24, 5, tmp_path_factory.mktemp("direct") / "cat")
    catalog = load_catalog(folder)
    config = load_config(
        None,
        {
            "scenarios": {"optimisation": 300},
            "solver": {"time_limit_s": 30, "mip_gap": 0.001},
            # the recoupment limits these cases were built around (the schema's defaults were
            # set for the bundled catalog, not for this synthetic one)
            "model": {
                "groups": {
                    "max_projects": {"enabled": True, "limit": 10},
                    "recoupment": {"max_shortfall_share": 0.6, "min_expected_recovery": 0.65},
                }
            },
        },
    )
    scenarios = generate_scenarios(catalog, config, "numpy", scenarios=range(300))
    return catalog, config, scenarios


@pytest.fixture(scope="module")
def model(instance) -> DirectModel:
    catalog, config, scenarios = instance
    return DirectModel.from_inputs(catalog, scenarios, config)


def test_scenario_data_matches_build_data(instance, model: DirectModel) -> None:
    catalog, config, scenarios = instance
    full = build_data(catalog, scenarios, config)
    light = model.data
    assert light.n_scen == full.n_scen
    for name in ("loss", "e_japan", "e_draw", "online", "stress", "capex", "f_min", "f_max"):
        np.testing.assert_array_equal(getattr(light, name), getattr(full, name), err_msg=name)
    assert light.depends_on == full.depends_on and light.excludes == full.excludes
    # the cut model's split of the coverage is the linearised model's
    np.testing.assert_allclose(model.cover.c_lin, full.c_lin, rtol=1e-12, atol=1e-15)


def test_coverage_value_is_the_exact_score(model: DirectModel) -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = (rng.random(model.data.n) < 0.4).astype(float)
        assert model.cover.value(y) == pytest.approx(scores(model.data, y).mean(), rel=1e-12)


def test_coverage_cuts_are_valid_and_tight(model: DirectModel) -> None:
    rng = np.random.default_rng(1)
    cover = model.cover
    points = [(rng.random(model.data.n) < 0.5).astype(float) for _ in range(6)]
    points.append(rng.random(model.data.n))  # a fractional point (LP relaxation)
    assert cover.count, "the instance should have saturating chokepoints"
    for y0 in points:
        cuts = cover.cuts(y0, None, 0.0)
        assert [k for k, _, _ in cuts] == list(range(cover.count))
        for k, const, coef in cuts:  # θ_k <= const + coef · y_who
            who = cover.who[k]
            assert const + coef @ y0[who] == pytest.approx(cover.values(y0)[k], rel=1e-12)
            for y in points:
                assert const + coef @ y[who] >= cover.values(y)[k] - 1e-12  # an upper bound


def test_coverage_cuts_only_where_theta_is_above_the_value(model: DirectModel) -> None:
    cover = model.cover
    y = (np.random.default_rng(3).random(model.data.n) < 0.5).astype(float)
    theta = cover.values(y).copy()
    assert cover.cuts(y, theta, 1e-9) == []
    theta[-1] += 1.0
    assert [k for k, _, _ in cover.cuts(y, theta, 1e-9)] == [cover.count - 1]


def test_the_cut_model_finds_the_scenario_sized_group_by_its_flag(model: DirectModel) -> None:
    assert [g.name for g in model.groups if g.scenario_sized] == ["recoupment"]
    assert model.sized is scenario_sized(model.groups) and model.eps == model.sized.cut_shift
    assert scenario_sized([g for g in model.groups if not g.scenario_sized]) is None
    with pytest.raises(RuntimeError, match="one scenario-sized group"):
        scenario_sized([model.sized, model.sized])


def test_cvar_cut_is_the_exact_cvar_at_its_point(model: DirectModel) -> None:
    rng = np.random.default_rng(2)
    d = model.data
    f0, f1 = rng.random(d.n) * d.f_max, rng.random(d.n) * d.f_max
    recoupment = model.sized  # the scenario-sized group: recoupment
    lhs = recoupment.separate(f0, -np.inf)  # π·L, a row whatever the violation
    alpha = recoupment.alpha
    assert lhs @ f0 == pytest.approx(float(cvar(d.loss @ f0, alpha)), rel=1e-9)
    assert lhs @ f1 <= float(cvar(d.loss @ f1, alpha)) + 1e-9
    assert recoupment.separate(f0 * 0, 0.0) is None


def _named(config, solver: str):
    cfg = config.model_copy(deep=True)
    cfg.solver.name = solver
    return cfg


def test_same_optimum_as_the_cvxpy_model(instance) -> None:
    catalog, config, scenarios = instance
    direct = optimize(catalog, _named(config, "highs_direct"), scenarios)
    reference = optimize(catalog, _named(config, "highs"), scenarios)
    assert direct.solver == "highs_direct"
    assert direct.status == "optimal"
    assert check_solution(direct, catalog, scenarios, config) == []
    gap = config.solver.mip_gap
    assert direct.objective == pytest.approx(reference.objective, rel=2 * gap + 1e-9)
    # each bound is above the other's portfolio: both are valid upper bounds of one optimum
    assert direct.bound >= reference.objective * (1 - 1e-7)
    assert reference.bound >= direct.objective * (1 - 1e-7)
    # shadow prices as the CVXPY model defines them, at the direct path's own portfolio
    ours = {(p["group"], p["row"]): p for p in direct.shadow_prices}
    model = AllocationModel(catalog, scenarios, config)
    model.variant("milp")
    theirs, _ = shadow_prices(model, config, direct.solution())
    assert {(p.group, p.row) for p in theirs} == set(ours)
    for p in theirs:  # duals of a degenerate LP are not unique: same rows, signs, binding
        mine = ours[(p.group, p.row)]
        assert mine["binding"] == p.binding
        assert mine["coverage_per_unit"] >= -1e-9
        assert (abs(mine["coverage_per_unit"]) > 1e-9) == (abs(p.value) > 1e-9), p


def test_coverage_cvar_goes_to_the_cvxpy_model(instance) -> None:
    catalog, config, scenarios = instance
    cfg = config.model_copy(deep=True)
    cfg.model.coverage_cvar_weight = 0.3
    result = optimize(catalog, cfg, scenarios)
    assert result.solver != "highs_direct"


def test_binding_cvar_same_optimum(instance) -> None:
    catalog, config, scenarios = instance
    cfg = config.model_copy(deep=True)
    cfg.model.groups.recoupment.max_shortfall_share = 0.08
    direct = optimize(catalog, _named(cfg, "highs_direct"), scenarios)
    reference = optimize(catalog, _named(cfg, "highs"), scenarios)
    assert check_solution(direct, catalog, scenarios, cfg) == []
    assert direct.objective == pytest.approx(reference.objective, rel=2 * cfg.solver.mip_gap)
    assert any(p["group"] == "recoupment" and p["binding"] for p in direct.shadow_prices)


def _at(config, budget: float, tolerance: float):
    cfg = config.model_copy(deep=True)
    cfg.solver.name = "highs_direct"
    cfg.model.budget_usd = budget
    cfg.model.groups.recoupment.max_shortfall_share = tolerance
    return cfg


def test_resolve_with_the_cut_pool_same_optimum_as_fresh_solves(instance) -> None:
    catalog, config, scenarios = instance
    points = [(5.5e11, 0.6), (2e9, 0.45), (4e9, 0.4)]  # (budget, ε): the last two bind
    sweep = DirectSweep(catalog, scenarios, _at(config, *points[0]))
    gap = config.solver.mip_gap
    for i, point in enumerate(points):
        cfg = _at(config, *point)
        pooled = sweep.pooled
        again = optimize(catalog, cfg, scenarios, model=sweep)
        fresh = optimize(catalog, cfg, scenarios)
        assert again.solver == fresh.solver == "highs_direct", point
        assert again.status == "optimal" and again.mip_gap <= gap, point
        assert check_solution(again, catalog, scenarios, cfg) == [], point
        assert again.objective == pytest.approx(fresh.objective, rel=2 * gap + 1e-9), point
        # both bounds are valid: each is above the other's portfolio
        assert again.bound >= fresh.objective * (1 - 1e-7), point
        assert fresh.bound >= again.objective * (1 - 1e-7), point
        assert (pooled > 0) == (i > 0)  # re-solves start from the earlier points' cuts
        if i:
            assert again.timings["compile_s"] < fresh.timings["compile_s"]
    assert sweep.cvar_pool and sweep.coverage_pool
    with pytest.raises(StructuralChange):  # a group switched off is a new model
        off = _at(config, *points[0])
        off.model.groups.max_projects.enabled = False
        sweep.update(off)


def test_direct_frontier_same_objectives_as_fresh_solves() -> None:
    catalog = build_small_catalog()
    config = load_config(
        None,
        {
            "backend": "numpy",
            "scenarios": {"optimisation": 24, "evaluation": 24},
            "solver": {"name": "highs_direct", "mip_gap": 0.001},
            "model": {
                "groups": {
                    "recoupment": {"max_shortfall_share": 1.0, "min_expected_recovery": None}
                }
            },
        },
    )
    configs = []
    for budget in (3e10, 4e9, 2e9, 1e9):
        cfg = config.model_copy(deep=True)
        cfg.model.budget_usd = budget
        configs.append(cfg)
    rows = solve_points(catalog, configs, ["model.budget_usd"])
    assert [r["resolve"] for r in rows] == [False, True, True, True]
    scenarios = generate_scenarios(catalog, config, "numpy", scenarios=range(24))
    for cfg, row in zip(configs, rows, strict=True):
        fresh = optimize(catalog, cfg, scenarios)
        assert row["solver"] == fresh.solver == "highs_direct"
        assert row["status"] == fresh.status == "optimal"
        assert row["objective"] == pytest.approx(fresh.objective, rel=2e-3, abs=1e-9)


def test_auto_is_the_cut_model_and_its_gap_reaches_highs(instance) -> None:
    from portopt.model import formulation
    from portopt.model.direct import HIGHS_GAP_SHARE

    catalog, config, scenarios = instance
    assert config.solver.name == "auto" and formulation(config) == "cuts"
    assert formulation(_named(config, "highs")) == formulation(_named(config, "cuopt")) == "full"
    with_cvar = config.model_copy(deep=True)
    with_cvar.model.coverage_cvar_weight = 0.2
    assert formulation(with_cvar) == "full"
    allocation = optimize(catalog, config, scenarios)
    assert allocation.solver == "highs_direct" and allocation.mip_gap <= config.solver.mip_gap
    model = DirectModel.from_inputs(catalog, scenarios, config)
    _, gap = model.h.getOptionValue("mip_rel_gap")
    assert gap == pytest.approx(HIGHS_GAP_SHARE * config.solver.mip_gap)
