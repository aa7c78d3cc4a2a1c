"""Exact marginal values (portopt.model.marginal): re-solves against fresh full solves."""

from __future__ import annotations

import numpy as np
import pytest

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.model import DirectSweep, optimize
from portopt.model.coverage import chokepoint_coverage, coverage_score
from portopt.model.marginal import POINTS, marginal_values, relaxations, standalone_points
from portopt.synth import write_synth


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory):
    catalog = load_catalog(write_synth(24, 5, tmp_path_factory.mktemp("marginal") / "cat"))
    config = load_config(
        None,
        {
            "scenarios": {"optimisation": 300},
            "solver": {"time_limit_s": 30, "mip_gap": 1e-6},
            "model": {
                "groups": {
                    "max_projects": {"enabled": True, "limit": 10},
                    "recoupment": {"max_shortfall_share": 0.6, "min_expected_recovery": 0.65},
                }
            },
        },
    )
    scenarios = generate_scenarios(catalog, config, "numpy", scenarios=range(300))
    sweep = DirectSweep(catalog, scenarios, config)
    base = optimize(catalog, config, scenarios, model=sweep)
    values = marginal_values(sweep, base.y, base.objective, base.mip_gap, config)
    return catalog, config, base, sweep, values


def _fresh(catalog, config, ids: list[str]) -> float:
    """The objective of a fresh solve (new scenarios, new model) on the catalog cut to ``ids``."""
    sub = catalog.subset(ids)
    scenarios = generate_scenarios(sub, config, "numpy", scenarios=range(300))
    return POINTS * float(optimize(sub, config, scenarios).objective)


@pytest.mark.slow
def test_forced_out_value_is_the_difference_of_two_fresh_solves(solved) -> None:
    catalog, config, base, _, values = solved
    needed = {d for deps in catalog.projects["depends_on"] for d in deps}
    value = next(
        v
        for v in values
        if v.selected and v.value_if_forced_out is not None and v.project_id not in needed
    )
    ids = catalog.project_ids
    with_it = _fresh(catalog, config, ids)
    without = _fresh(catalog, config, [i for i in ids if i != value.project_id])
    assert value.marginal_value == pytest.approx(with_it - without, abs=1e-4)
    assert value.value_if_forced_in == pytest.approx(POINTS * base.objective)


def test_every_candidate_is_priced_and_each_rejected_one_has_a_reason(solved) -> None:
    catalog, _, base, _, values = solved
    assert [v.project_id for v in values] == catalog.project_ids
    for v, y in zip(values, base.y, strict=True):
        assert v.selected == (y > 0.5)
        if not v.selected:
            assert v.value_if_forced_out == pytest.approx(POINTS * base.objective)
            assert v.reason.startswith("forced in")
            if v.value_if_forced_in is not None:  # the base is optimal: forcing in never helps
                assert v.marginal_value <= 1e-6 or v.within_gap


def test_one_more_project_is_a_fresh_solve_with_the_limit_raised(solved) -> None:
    catalog, config, base, sweep, _ = solved
    steps = relaxations(sweep, base.objective, base.mip_gap, config, [])
    count = next(s for s in steps if s.rule == "project count")
    raised = load_config(
        None,
        {
            **config.model_dump(),
            "model": {
                **config.model.model_dump(),
                "groups": {
                    **config.model.groups.model_dump(),
                    "max_projects": {"enabled": True, "limit": 11},
                },
            },
        },
    )
    assert count.coverage_points == pytest.approx(
        _fresh(catalog, raised, catalog.project_ids) - POINTS * base.objective, abs=1e-4
    )
    assert np.isfinite(count.coverage_points) and count.coverage_points >= -1e-6


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory):
    """The small catalog with one sector's maximum share set to zero: its projects can only
    be kept out by the sector-share group."""
    catalog = load_catalog(write_synth(24, 5, tmp_path_factory.mktemp("capped") / "cat"))
    sector = str(catalog.projects["sector"].iloc[0])
    config = load_config(
        None,
        {
            "scenarios": {"optimisation": 300},
            "solver": {"time_limit_s": 30, "mip_gap": 1e-4},
            "model": {
                "groups": {
                    "max_projects": {"enabled": True, "limit": 10},
                    "recoupment": {"max_shortfall_share": 0.6, "min_expected_recovery": 0.65},
                    "sector_shares": {"bounds": {sector: [0.0, 0.0]}},
                }
            },
        },
    )
    scenarios = generate_scenarios(catalog, config, "numpy", scenarios=range(300))
    sweep = DirectSweep(catalog, scenarios, config)
    base = optimize(catalog, config, scenarios, model=sweep)
    values = marginal_values(sweep, base.y, base.objective, base.mip_gap, config)
    return catalog, sector, sweep, values


def test_a_candidate_kept_out_by_a_sector_cap_names_that_group(capped) -> None:
    catalog, sector, _, values = capped
    in_sector = set(catalog.projects.index[catalog.projects["sector"] == sector])
    assert in_sector
    for v in values:
        if v.project_id in in_sector:
            assert not v.selected
            assert v.kept_out_by == ["sector_shares"], v.reason
            assert "no portfolio satisfies sector_shares: that rule alone keeps it out" in v.reason
            assert f"sector_shares: {sector} holds" in v.reason  # the breach, in words
        else:  # others may be kept out by another group (a data centre by power balance)
            assert "sector_shares" not in v.kept_out_by


def test_a_candidate_out_on_value_states_its_coverage_per_dollar(capped) -> None:
    _, _, sweep, values = capped
    alone = standalone_points(sweep)
    data = sweep.data
    for i in range(data.n):  # each project's own score, from the coverage formula itself
        cov = chokepoint_coverage(data.online, data.ratio, np.eye(1, data.n, i)[0])
        assert alone[i] == pytest.approx(
            POINTS * coverage_score(cov, data.stress, data.weights).mean()
        )
    for i, v in enumerate(values):  # per $10B of the least fund money the project can take
        assert v.points_per_10b == pytest.approx(alone[i] * 10 / data.f_min[i])
    chosen = [v.points_per_10b for v in values if v.selected]
    assert all(r is not None and r >= 0 for r in chosen)
    out = [v for v in values if not v.selected and not v.kept_out_by]
    assert out, "the test needs a candidate that is out on value"
    for v in out:
        assert v.plan_points_per_10b == pytest.approx(float(np.median(chosen)))
        assert v.points_per_10b is not None
        assert (
            f"on its own it closes {v.points_per_10b:.2f} coverage points per $10B of its"
            " minimum amount,"
            f" against {v.plan_points_per_10b:.2f} for the median selected project"
        ) in v.reason
