"""The offtake floor's top-up (the engine's ``pv_floor``) and the price-floor support lever
(``support.projects.<id>.price_floor``, portopt/plan/support.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from portopt.catalog import load_catalog
from portopt.config import RunConfig, load_config
from portopt.engine import numpy_engine
from portopt.engine.inputs import prepare_inputs
from portopt.engine.scenario_set import ScenarioSet
from portopt.plan.declines import apply_declines
from portopt.plan.support import US_GUARANTOR, floor_payers, support_cost, with_support

SCENARIOS = range(5, 205)


def _outputs(inputs, **changes):
    return numpy_engine.run(dataclasses.replace(inputs, **changes), SCENARIOS).project


def test_pv_floor_is_what_the_floor_pays_above_the_market(small_catalog) -> None:
    inputs = prepare_inputs(small_catalog, RunConfig())
    base = _outputs(inputs)
    floors = base["pv_floor"]
    assert (floors >= 0.0).all()
    has = (inputs.offtake_share > 0) & (inputs.offtake_floor > 0)
    assert floors[:, has].sum() > 0
    assert (floors[:, ~has] == 0.0).all()  # no floor, no top-up
    # the top-up is proportional to the contracted share (the schedule does not depend on it)
    row = int(np.argmax(floors.sum(axis=0)))
    share = inputs.offtake_share.copy()
    share[row] /= 2.0
    half = _outputs(inputs, offtake_share=share)["pv_floor"][:, row]
    np.testing.assert_allclose(half, floors[:, row] / 2.0, rtol=1e-12)
    # a higher floor pays more, a floor of zero pays nothing
    level = inputs.offtake_floor.copy()
    level[row] = 0.0
    assert (_outputs(inputs, offtake_floor=level)["pv_floor"][:, row] == 0.0).all()
    level = inputs.offtake_floor.copy()
    level[row] *= 1.5
    assert _outputs(inputs, offtake_floor=level)["pv_floor"][:, row].sum() > floors[:, row].sum()


def test_the_lever_replaces_the_rows_offtake() -> None:
    catalog = load_catalog()
    pid = "mp_materials_10x" if "mp_materials_10x" in catalog.projects.index else None
    pid = pid or str(catalog.projects.index[(catalog.projects["offtake_share"] > 0)][0])
    config = load_config(
        None,
        [
            f"support.projects.{pid}.price_floor=1.4",
            f"support.projects.{pid}.price_floor_share=0.6",
            f"support.projects.{pid}.price_floor_years=12",
        ],
    )
    row = with_support(catalog, config).projects.loc[pid]
    assert row["offtake_floor"] == 1.4 and row["offtake_share"] == 0.6
    assert row["offtake_years"] == 12.0 and row["offtake_indexed"] == 0.0
    assert row["offtake_guarantor"] == US_GUARANTOR
    # the other rows are untouched
    other = catalog.projects.index[catalog.projects.index != pid]
    after = with_support(catalog, config).projects.loc[other]
    assert after.equals(catalog.projects.loc[other])
    # the cost: the floor's top-ups of a proposed project, none for one not proposed
    plan = pd.DataFrame({"project": [pid], "decline_prob": [0.2]})
    cost = support_cost(catalog, config, plan, {pid: 3.0e8})
    [entry] = cost["projects"]
    assert entry["floor_cost_expected_usd"] == 3.0e8 and entry["price_floor"] == 1.4
    assert cost["cost_expected_usd"] == cost["floor_cost_expected_usd"] == 3.0e8
    assert entry["replaces_offtake"] is None or "floor" in entry["replaces_offtake"]
    none = support_cost(catalog, config, plan.iloc[:0], {pid: 3.0e8})
    assert none["cost_expected_usd"] == 0.0


def test_price_floor_keys_are_checked() -> None:
    from portopt.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_config(None, ["support.projects.x.price_floor_share=1.5"])
    assert "price_floor_share" in str(err.value)


def test_the_floors_payers_add_up() -> None:
    catalog = load_catalog()
    projects = catalog.projects.copy()
    a, b, c = (str(p) for p in projects.index[:3])
    projects.loc[a, "offtake_guarantor"] = "DoD"
    projects.loc[b, "offtake_guarantor"] = float("nan")  # blank
    projects.loc[c, "offtake_guarantor"] = "DoD"
    catalog = dataclasses.replace(catalog, projects=projects)
    got = floor_payers(catalog, {a: 1.0e8, b: 3.0e8, c: 2.0e8, "nothing": 0.0})
    assert [r["project_id"] for r in got["projects"]] == [b, c, a]  # the largest first
    assert got["by_guarantor"] == {"DoD": 3.0e8, "not named": 3.0e8}
    assert got["total_usd"] == 6.0e8


def test_a_declined_proposal_gets_no_floor(small_catalog) -> None:
    inputs = prepare_inputs(small_catalog, RunConfig())
    out = numpy_engine.run(inputs, SCENARIOS)
    scenarios = ScenarioSet(
        first=SCENARIOS.start,
        project_ids=list(inputs.project_ids),
        chokepoint_ids=list(inputs.chokepoint_ids),
        project=out.project,
        stress=out.stress,
        scenario=out.scenario,
    )
    row = int(np.argmax(out.project["pv_floor"].sum(axis=0)))
    mask = np.zeros_like(out.project["pv_floor"], dtype=bool)
    mask[::2, row] = True
    declined = apply_declines(scenarios, mask).project["pv_floor"]
    assert (declined[::2, row] == 0.0).all()
    np.testing.assert_array_equal(declined[1::2], out.project["pv_floor"][1::2])
