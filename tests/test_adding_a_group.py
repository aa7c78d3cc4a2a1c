"""docs/adding-a-group.md's example, done: its code blocks run as written give a working
constraint group (a config built with its section, the class registered for this test only)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import Field, create_model
from test_model_support import synthetic_catalog, synthetic_scenarios

from portopt.config import GroupsConfig, ModelConfig, RunConfig
from portopt.model import Allocation, check_solution, optimize
from portopt.model.data import BILLION, build_data
from portopt.model.terms import GROUPS

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-group.md"


@pytest.fixture
def example() -> dict:
    """The page's code blocks, run in one namespace; the group leaves the registry after."""
    before = len(GROUPS)
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S):
        exec(compile(block, str(DOC), "exec"), namespace)
    try:
        yield namespace
    finally:
        del GROUPS[before:]


def _config(settings: type, cap_usd: float) -> RunConfig:
    """A RunConfig whose ``model.groups`` has the example's section (what adding the field to
    ``GroupsConfig`` does), the cap on."""
    groups = create_model(
        "Groups", __base__=GroupsConfig, region_cap=(settings, Field(default_factory=settings))
    )
    model = create_model(
        "Model", __base__=ModelConfig, groups=(groups, Field(default_factory=groups))
    )
    config = create_model("Config", __base__=RunConfig, model=(model, Field(default_factory=model)))
    return config.model_validate(
        {
            "model": {"groups": {"region_cap": {"enabled": True, "max_usd": cap_usd}}},
            "solver": {"time_limit_s": 60},
        }
    )


def test_the_documented_group_holds_binds_and_is_caught(example) -> None:
    group = example["RegionCap"]
    assert GROUPS[-1] is group and group.parameter_keys == ("model.groups.region_cap.max_usd",)
    catalog = synthetic_catalog(12, 5, seed=3)
    scen = synthetic_scenarios(catalog, 200, seed=4)
    free = optimize(catalog, _config(example["RegionCapConfig"], 1e12), scen)
    region = catalog.projects["grid_region"].astype(str).to_numpy()
    most = max(free.fund_usd[region == r].sum() for r in set(region))
    cap = 0.5 * most
    config = _config(example["RegionCapConfig"], cap)
    capped = optimize(catalog, config, scen)
    assert capped.status == "optimal"
    assert all(capped.fund_usd[region == r].sum() <= cap * (1 + 1e-6) for r in set(region))
    assert check_solution(capped, catalog, scen, config) == []
    prices = [p for p in capped.shadow_prices if p["group"] == "region_cap"]
    assert prices and all(p["unit"] == "per extra $10B of regional cap" for p in prices)
    assert any(p["binding"] for p in prices)
    broken = Allocation(
        ids=free.ids,
        y=free.y,
        fund_usd=free.fund_usd,
        status="optimal",
        solver="test",
        objective=None,
        bound=None,
        mip_gap=None,
        timings={},
    )
    lines = [line for line in check_solution(broken, catalog, scen, config) if "region_cap" in line]
    assert lines and "above the cap" in lines[0]
    data = build_data(catalog, scen, config)
    term = group(data, config)
    need = term.needed("regions", np.full(len(term.regions), 1.0), config)
    assert [b for _, b in need] == [cap / BILLION + 1.0] * len(term.regions)
