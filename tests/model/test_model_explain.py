"""Infeasible configurations explained by a minimal set of groups, each with its cause.

Every case asserts the groups named (one line each, ``group: ...``), the cause in words, and
minimality through the public API: with all named groups on the model is infeasible, and
switching off any one of them makes it feasible.
"""

from __future__ import annotations

import pytest
from test_model_support import synthetic_catalog, synthetic_scenarios

from portopt.config import RunConfig
from portopt.errors import InfeasibleError
from portopt.model import optimize
from portopt.vocabulary import SECTORS

LOOSE = {"recoupment": {"max_shortfall_share": 0.9, "min_expected_recovery": None}}
"""Recoupment loose enough for the synthetic data, so each case isolates its groups."""


@pytest.fixture(scope="module")
def inputs():
    """16 projects; p000 (semiconductors, sponsor0, $15.4B, 2026) and p001 (pharmaceuticals,
    ERCOT, 876 MW of data-centre load, 2028) committed; p005 (ERCOT, 979 MW of firm generation)
    needs p002."""
    catalog = synthetic_catalog(16, 6, seed=21, committed=2)
    projects = catalog.projects
    projects.at["p005", "depends_on"] = ("p002",)
    projects.at["p003", "excludes"] = ("p004",)
    projects.at["p004", "excludes"] = ("p003",)
    return catalog, synthetic_scenarios(catalog, 300, seed=5)


def _cfg(model: dict) -> RunConfig:
    groups = {**LOOSE, **model.get("groups", {})}
    return RunConfig.model_validate(
        {"model": {**model, "groups": groups}, "solver": {"time_limit_s": 60}}
    )


def _with_catalog_edit(catalog, edit):
    copy = type(catalog)(
        catalog.projects.copy(), catalog.chokepoints, catalog.capacity, catalog.source
    )
    edit(copy.projects)
    return copy


def _off(model: dict, group: str) -> dict:
    groups = dict(model.get("groups", {}))
    groups[group] = {**groups.get(group, LOOSE.get(group, {})), "enabled": False}
    return {**model, "groups": groups}


CASES = {
    "budget below the committed tranche": (
        {"budget_usd": 1.3e10},
        {"capital"},
        "the committed tranche alone needs $25.8B, the budget is $13.0B",
    ),
    "minimum deployment above every candidate": (
        {"min_deployment_usd": 2e11, "budget_usd": 2.5e11},
        {"capital"},
        "above what all candidates can take, $186.6B",
    ),
    "project limit below the committed projects": (
        {"groups": {"max_projects": {"enabled": True, "limit": 1}}},
        {"max_projects"},
        "the limit of 1 projects is below the 2 committed projects",
    ),
    "sector floors above 100%": (
        {"groups": {"sector_shares": {"bounds": {"energy": [0.8, 1.0], "metals": [0.8, 1.0]}}}},
        {"sector_shares"},
        "sector floors add up to 160% of capital",
    ),
    "one sector's floor out of reach": (
        {"groups": {"sector_shares": {"bounds": {"pharmaceuticals": [0.9, 1.0]}}}},
        {"sector_shares"},
        "pharmaceuticals minimum share 90% needs",
    ),
    "sector maxima below 100%": (
        {"groups": {"sector_shares": {"bounds": {s: [0.0, 0.1] for s in SECTORS}}}},
        {"sector_shares"},
        "sector maximum shares add up to 80% of capital",
    ),
    "no review capacity against a minimum deployment": (
        {"min_deployment_usd": 5e10, "groups": {"review_capacity": {"per_quarter": 0}}},
        {"capital", "review_capacity"},
        "a capacity of 0 reviews per quarter admits no candidate",
    ),
    "Japanese content floor out of reach": (
        {"groups": {"japan_content": {"floor": 0.95}}},
        {"japan_content"},
        "floor 95% of Japanese content is out of reach",
    ),
    "no shortfall tolerated": (
        {"groups": {"recoupment": {"max_shortfall_share": 0.0, "min_expected_recovery": None}}},
        {"recoupment"},
        "CVaR95% of Japan's shortfall must stay within 0.0% of capital",
    ),
    "minimum deployment against the shortfall tolerance": (
        {
            "min_deployment_usd": 1.5e11,
            "groups": {"recoupment": {"max_shortfall_share": 0.3, "min_expected_recovery": None}},
        },
        {"capital", "recoupment"},
        "minimum deployment (model.min_deployment_usd) $150.0B of expected committed capital is"
        " out of reach: with every"
        " other group as configured, at most",
    ),
    "expected recovery floor out of reach": (
        {"groups": {"recoupment": {"max_shortfall_share": 0.9, "min_expected_recovery": 3.0}}},
        {"recoupment"},
        "expected recovery floor 3.00 is out of reach",
    ),
    "workforce exhausted by the committed projects": (
        {"groups": {"workforce": {"default_available": 10.0}}},
        {"workforce"},
        "workforce: PJM in 2026 needs 515 person-years more than the 10 available; PJM in 2027",
    ),
    "sponsor cap below a committed project": (
        {"groups": {"sponsor_cap": {"max_usd": 1e10}}},
        {"sponsor_cap"},
        "sponsor0 needs $15.4B (committed projects), above the cap $10.0B; sponsor1 needs",
    ),
    "annual cap below the committed tranche of a year": (
        {"groups": {"capital": {"annual_commitment_cap_usd": 1e10}}},
        {"capital"},
        "commitments of 2026 exceed the annual cap by $5.4B",
    ),
    "no headroom for a committed campus, and too few projects to offset it": (
        {
            "groups": {
                "power_balance": {"headroom_mw": {"ERCOT": 0.0}},
                "max_projects": {"enabled": True, "limit": 3},
            }
        },
        {"power_balance", "max_projects"},
        "ERCOT needs 592 MW more than its 0 MW headroom: forced-in data-centre load 876 MW",
    ),
}


def _explanation(catalog, scen, model: dict) -> list[str]:
    with pytest.raises(InfeasibleError) as info:
        optimize(catalog, _cfg(model), scen)
    assert str(info.value).startswith("no portfolio")
    return info.value.explanation


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_minimal_set_of_groups_with_its_cause(inputs, case) -> None:
    catalog, scen = inputs
    model, named, cause = CASES[case]
    lines = _explanation(catalog, scen, model)
    groups = [line.split(":")[0] for line in lines]
    assert sorted(groups) == sorted(named), lines  # one line per group that must give
    assert any(cause in line for line in lines), lines
    for group in named:  # every named group must give: without it a portfolio exists
        assert optimize(catalog, _cfg(_off(model, group)), scen).status in ("optimal", "time_limit")


def test_facts_that_conflict_are_named(inputs) -> None:
    catalog, scen = inputs

    def exclude(projects) -> None:
        projects.at["p000", "excludes"] = ("p001",)
        projects.at["p001", "excludes"] = ("p000",)

    lines = _explanation(_with_catalog_edit(catalog, exclude), scen, {})
    assert lines == ["exclusions: p000 and p001 exclude each other but both are forced in"]


def test_a_forced_in_campus_blames_power_not_its_dependency(inputs) -> None:
    catalog, scen = inputs

    def campus(projects) -> None:
        projects.at["p007", "dc_load_mw"] = 4000.0
        projects.at["p007", "firm_gen_mw"] = 0.0
        projects.at["p000", "depends_on"] = ("p007",)  # a committed project needs the campus

    edited = _with_catalog_edit(catalog, campus)
    region = edited.projects.at["p007", "grid_region"]
    model = {"groups": {"power_balance": {"headroom_mw": {region: 0.0}}}}
    lines = _explanation(edited, scen, model)
    assert {line.split(":")[0] for line in lines} == {"power_balance"}
    assert any("forced-in data-centre load 4,000 MW" in line for line in lines), lines
