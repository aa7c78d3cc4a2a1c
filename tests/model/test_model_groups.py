"""Every constraint group: re-checked from numbers and violations caught (infeasibility
explanations: tests/model/test_model_explain.py)."""

from __future__ import annotations

import numpy as np
import pytest
from test_model_support import synthetic_catalog, synthetic_scenarios

from portopt.config import RunConfig
from portopt.engine.scenario_set import ScenarioSet
from portopt.model import Allocation, check_solution, optimize
from portopt.model.data import BILLION, build_data


def _cfg(model: dict | None = None) -> RunConfig:
    return RunConfig.model_validate({"model": model or {}, "solver": {"time_limit_s": 60}})


@pytest.fixture(scope="module")
def inputs():
    catalog = synthetic_catalog(16, 6, seed=21, committed=2)
    projects = catalog.projects
    projects.at["p005", "depends_on"] = ("p002",)
    projects.at["p003", "excludes"] = ("p004",)
    projects.at["p004", "excludes"] = ("p003",)
    return catalog, synthetic_scenarios(catalog, 300, seed=5)


TIGHT = {
    "budget_usd": 9e10,
    "min_deployment_usd": 3e10,
    "groups": {
        "capital": {"annual_commitment_cap_usd": 4.5e10},
        "recoupment": {"max_shortfall_share": 0.5, "min_expected_recovery": 0.85},
        "sector_shares": {"bounds": {"metals": [0.0, 0.3], "energy": [0.05, 0.5]}},
        "japan_content": {"floor": 0.22},
        "power_balance": {"default_headroom_mw": 1000.0},
        "workforce": {"default_available": 6000.0},
        "max_projects": {"enabled": True, "limit": 8},
        "sponsor_cap": {"max_usd": 2.5e10},
        "review_capacity": {"per_quarter": 2},
    },
}


def test_every_group_holds_on_the_solution_and_from_parquet(inputs, tmp_path) -> None:
    catalog, scen = inputs
    cfg = _cfg(TIGHT)
    allocation = optimize(catalog, cfg, scen)
    assert allocation.status == "optimal"
    assert not [n for n in allocation.notes if n.startswith("re-check")]
    assert check_solution(allocation, catalog, scen, cfg) == []
    path = tmp_path / "scenarios.parquet"
    scen.to_parquet(path)
    assert check_solution(allocation, catalog, ScenarioSet.from_parquet(path), cfg) == []
    assert allocation.binding, "the tight config should bind somewhere"
    for group in ("dependencies", "exclusions"):
        assert group not in " ".join(check_solution(allocation, catalog, scen, cfg))
    y = dict(zip(allocation.ids, allocation.y, strict=True))
    assert y["p005"] <= y["p002"] and y["p003"] + y["p004"] <= 1


def test_every_group_catches_a_violation(inputs) -> None:
    catalog, scen = inputs
    data = build_data(catalog, scen, RunConfig())
    y = np.ones(data.n)
    y[2] = 0.0  # p005 needs p002
    f = data.f_max * y * BILLION
    bad = Allocation(
        ids=data.ids,
        y=y,
        fund_usd=f,
        status="optimal",
        solver="test",
        objective=None,
        bound=None,
        mip_gap=None,
        timings={},
    )
    cfg = _cfg(
        {
            "budget_usd": 1e10,
            "groups": {
                "capital": {"annual_commitment_cap_usd": 1e9},
                "recoupment": {"max_shortfall_share": 0.0, "min_expected_recovery": 2.0},
                "sector_shares": {"bounds": {"metals": [0.0, 0.01], "quantum": [0.9, 1.0]}},
                "japan_content": {"floor": 0.99},
                "power_balance": {"default_headroom_mw": 0.0},
                "workforce": {"default_available": 1.0},
                "max_projects": {"enabled": True, "limit": 2},
                "sponsor_cap": {"max_usd": 1e9},
                "review_capacity": {"per_quarter": 0},
                "jbic_capacity": {"per_fiscal_year_usd": 1e9},
            },
        }
    )
    text = "\n".join(check_solution(bad, catalog, scen, cfg))
    for group in (
        "capital: deployed",
        "capital: commitments",
        "recoupment: CVaR",
        "recoupment: expected",
        "sector_shares: metals",
        "sector_shares: quantum",
        "japan_content",
        "power_balance",
        "workforce",
        "dependencies",
        "exclusions",
        "max_projects",
        "sponsor_cap",
        "review_capacity",
        "jbic_capacity",
    ):
        assert group in text, group
    text = "\n".join(
        check_solution(
            bad,
            catalog,
            scen,
            _cfg(
                {
                    "groups": {
                        g: {"enabled": False}
                        for g in (
                            "capital",
                            "recoupment",
                            "sector_shares",
                            "japan_content",
                            "power_balance",
                            "workforce",
                            "dependencies",
                            "exclusions",
                            "max_projects",
                            "sponsor_cap",
                            "review_capacity",
                            "jbic_capacity",
                        )
                    }
                }
            ),
        )
    )
    assert text == ""


def test_fast_holds_agrees_with_the_recheck(inputs) -> None:
    from portopt.model.groups import GROUPS
    from portopt.model.terms import Solution

    catalog, scen = inputs
    cfg = _cfg(TIGHT)
    data = build_data(catalog, scen, cfg)
    groups = [g(data, cfg) for g in GROUPS]
    rng = np.random.default_rng(1)
    for _ in range(20):
        y = (rng.random(data.n) < 0.5).astype(float)
        sol = Solution(y=y, f=data.f_min * y)
        for g in groups:
            assert g.holds(sol, cfg) == (not g.check(sol, data, cfg)), g.name


def test_the_registry_and_the_config_name_the_same_groups(inputs) -> None:
    from portopt.config import GroupsConfig
    from portopt.model.groups import GROUPS

    def keys(tree: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in tree.items():
            out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {prefix + k}
        return out

    catalog, scen = inputs
    assert [g.name for g in GROUPS] == list(GroupsConfig.model_fields)
    cfg = _cfg(TIGHT)
    data = build_data(catalog, scen, cfg)
    flat = keys(cfg.model_dump(mode="json"))
    for cls in GROUPS:
        group = cls(data, cfg)
        for key in group.parameter_keys:  # each names a config key (or a prefix of some)
            assert key in flat or any(k.startswith(key + ".") for k in flat), key
        for row, said in group.meanings.items():
            assert row and said.unit.startswith("per ") and said.meaning.endswith("."), row


def test_a_declared_row_explains_itself_by_default(inputs) -> None:
    from portopt.model.groups import MaxProjects, SponsorCap
    from portopt.model.terms import Solution, Term

    catalog, scen = inputs
    cfg = _cfg(TIGHT)
    data = build_data(catalog, scen, cfg)
    sol = Solution(y=np.ones(data.n), f=data.f_max)
    count = MaxProjects(data, cfg)
    assert Term.explain(count, {"count": np.array([2.0])}, sol, cfg) == [
        "max_projects: 10 projects selected, above the limit 8"
    ]
    sponsors = SponsorCap(data, cfg)
    give = np.zeros(len(sponsors.sponsors))
    give[1] = 5.0
    assert Term.explain(sponsors, {"sponsors": give}, sol, cfg) == [
        f"sponsor_cap: {sponsors.sponsors[1]} receives $30.0B, above the cap $25.0B"
    ]
