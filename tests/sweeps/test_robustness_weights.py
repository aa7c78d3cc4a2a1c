"""Uncertain priorities (issue 12, item 3): chokepoint weights and gaps drawn from the catalog's
ranges, and the core indices of ``portopt robustness`` over them.

The catalog is the 6-project test fixture written to CSV with range columns and loaded through
:func:`portopt.catalog.load_catalog`; scenario counts are tiny, so each solve takes a fraction
of a second. With ``max_projects`` at 2 the fixture's choice turns on the weights: at the point
weights diamond_grit and fab_chips are chosen, and a firm-power weight well above its point
brings gas_ohio in instead of diamond_grit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from _runs import synthetic_folder
from conftest import build_small_catalog, write_catalog_csv
from typer.testing import CliRunner

from portopt.catalog import Catalog, load_catalog
from portopt.cli.main import app
from portopt.config import RunConfig
from portopt.priorities import has_ranges, sample_priorities
from portopt.sweeps import cluster, run_robustness

SEED = 20260217
BASE = {
    "backend": "numpy",
    "seed": SEED,
    "scenarios": {"optimisation": 16, "evaluation": 16},
    # the fixture's projects lose money for Japan: loosen recoupment so portfolios exist
    "model": {
        "groups": {"recoupment": {"max_shortfall_share": 1.0, "min_expected_recovery": None}}
    },
}
TWO_PROJECTS = {
    **BASE,
    "model": {"groups": {**BASE["model"]["groups"], "max_projects": {"enabled": True, "limit": 2}}},
}
BATCHES = 6


def ranged(folder: Path, **bounds: dict[str, float]) -> Catalog:
    """The fixture with range columns (``bounds[column][chokepoint]``; absent = blank), written
    to ``folder`` as CSV and loaded back."""
    fixture = build_small_catalog()
    chokepoints = fixture.chokepoints.copy()
    for column in ("us_gap_low", "us_gap_high", "weight_low", "weight_high"):
        chokepoints[column] = [bounds.get(column, {}).get(c, np.nan) for c in chokepoints.index]
    write_catalog_csv(dataclasses.replace(fixture, chokepoints=chokepoints), folder)
    return load_catalog(folder)


def degenerate(folder: Path) -> Catalog:
    """Every range written out as low = high = the point value."""
    ch = build_small_catalog().chokepoints
    return ranged(
        folder,
        **{f"{c}_{side}": dict(ch[c]) for c in ("us_gap", "weight") for side in ("low", "high")},
    )


WIDE_FIRM_POWER = {"weight_high": {"firm_power": 30.0}}  # the point weight is 3


@pytest.fixture(scope="module")
def client():
    with cluster(None, n_workers=2) as c:
        yield c


# ------------------------------------------------------------------------------ the draws


def test_draws_lie_in_their_ranges_repeat_and_follow_the_chokepoint(tmp_path: Path) -> None:
    catalog = ranged(
        tmp_path / "catalog",
        weight_low={"firm_power": 1.0, "synthetic_diamond": 0.5},
        weight_high={"firm_power": 30.0},
        us_gap_low={"rare_earth_magnets": 20.0},
        us_gap_high={"rare_earth_magnets": 45.0, "leading_edge_chips": 2e5},
    )
    point = catalog.chokepoints
    draws = [sample_priorities(catalog, SEED, b).chokepoints for b in range(8)]
    for column in ("weight", "us_gap"):
        low, high = catalog.chokepoint_range(column)
        values = np.stack([d[column].to_numpy() for d in draws])
        assert ((low <= values) & (values <= high)).all()
        fixed = low == high
        assert (values[:, fixed] == point[column].to_numpy()[fixed]).all()  # exactly the point
        assert (np.ptp(values[:, ~fixed], axis=0) > 0).all()  # each ranged column moves
    again = sample_priorities(catalog, SEED, 3).chokepoints
    pd.testing.assert_frame_equal(again, draws[3])
    other_seed = sample_priorities(catalog, SEED + 1, 3).chokepoints
    assert other_seed.loc["firm_power", "weight"] != draws[3].loc["firm_power", "weight"]
    # a draw is addressed by the chokepoint's id: reordering the table changes no draw
    reversed_ = dataclasses.replace(
        catalog,
        chokepoints=point.iloc[::-1],
        capacity=catalog.capacity[point.index[::-1]],
    )
    pd.testing.assert_frame_equal(
        sample_priorities(reversed_, SEED, 3).chokepoints.loc[point.index], draws[3]
    )
    assert has_ranges(catalog)


def test_a_catalog_without_ranges_draws_its_point_values(tmp_path: Path) -> None:
    for catalog in (build_small_catalog(), degenerate(tmp_path / "catalog")):
        assert not has_ranges(catalog)
        drawn = sample_priorities(catalog, SEED, 5).chokepoints
        for column in ("weight", "us_gap"):
            assert np.array_equal(drawn[column].to_numpy(), catalog.chokepoints[column].to_numpy())


# ------------------------------------------------------------------------------ core indices


@pytest.mark.slow
def test_degenerate_ranges_give_the_fixed_weight_core_indices(client, tmp_path: Path) -> None:
    config = RunConfig.model_validate(TWO_PROJECTS)
    catalog = degenerate(tmp_path / "catalog")
    fixed, fixed_batches = run_robustness(catalog, config, BATCHES, client, vary="scenarios")
    both, both_batches = run_robustness(catalog, config, BATCHES, client, vary="both")
    assert set(fixed["vary"]) == {"scenarios"} and set(both["vary"]) == {"both"}
    pd.testing.assert_frame_equal(fixed.drop(columns="vary"), both.drop(columns="vary"))
    for column in ("first_scenario", "status", "objective", "selected"):
        assert fixed_batches[column].tolist() == both_batches[column].tolist(), column


@pytest.mark.slow
def test_a_wide_weight_range_changes_the_core_indices(client, tmp_path: Path) -> None:
    config = RunConfig.model_validate(TWO_PROJECTS)
    point = degenerate(tmp_path / "point")
    wide = ranged(tmp_path / "wide", **WIDE_FIRM_POWER)
    fixed, fixed_batches = run_robustness(point, config, BATCHES, client, vary="weights")
    drawn, drawn_batches = run_robustness(wide, config, BATCHES, client, vary="weights")
    assert set(fixed_batches["first_scenario"]) == set(drawn_batches["first_scenario"]) == {0}
    assert fixed_batches["selected"].nunique() == 1  # one problem solved B times
    fixed_index = dict(zip(fixed["project_id"], fixed["core_index"], strict=True))
    drawn_index = dict(zip(drawn["project_id"], drawn["core_index"], strict=True))
    assert fixed_index["gas_ohio"] == 0.0 and fixed_index["diamond_grit"] == 1.0
    assert 0.0 < drawn_index["gas_ohio"] < 1.0
    selected_in = dict(zip(drawn["project_id"], drawn["selected_in"], strict=True))
    assert selected_in["diamond_grit"] + selected_in["gas_ohio"] == BATCHES  # one or the other
    # the mechanism: the batches holding gas_ohio drew the larger firm-power weights
    drawn_weight = [sample_priorities(wide, SEED, b).chokepoints for b in range(BATCHES)]
    weights = np.array([c.at["firm_power", "weight"] for c in drawn_weight])
    holds = np.array(["gas_ohio" in s.split(";") for s in drawn_batches["selected"]])
    assert weights[holds].min() > weights[~holds].max()
    both, _ = run_robustness(wide, config, BATCHES, client, vary="both")
    scenarios_only, _ = run_robustness(wide, config, BATCHES, client, vary="scenarios")
    core_both = both.set_index("project_id")["core_index"]
    only = scenarios_only.set_index("project_id")["core_index"]
    assert not core_both.equals(only.loc[core_both.index])


# ------------------------------------------------------------------------------ the CLI


def _config_file(folder: Path, catalog: Path, settings: dict) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({**settings, "catalog": str(catalog)}))
    return path


def _robustness(client, config: Path, out: Path, *extra: str):
    args = ["robustness", str(config), "--one-shot", "--batches", "3"]
    args += ["--scheduler", client.scheduler.address]
    return CliRunner().invoke(app, [*args, "--out", str(out), *extra])


@pytest.mark.slow
def test_cli_varies_both_by_default_when_the_catalog_has_ranges(client, tmp_path: Path) -> None:
    ranged(tmp_path / "catalog", **WIDE_FIRM_POWER)
    config = _config_file(tmp_path, tmp_path / "catalog", BASE)
    run_dir = synthetic_folder(tmp_path / "run")
    result = _robustness(client, config, tmp_path / "both", "--report", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "varying both" in " ".join(result.output.split())  # rich wraps the title
    core = pd.read_csv(tmp_path / "both" / "robustness.csv", keep_default_na=False)
    assert set(core["vary"]) == {"both"}
    for page in (tmp_path / "both" / "robustness.html", run_dir / "report.html"):
        text = page.read_text()
        assert "drawn from their catalog ranges" in text, page
        assert "core whatever the weights and the luck of the draw" in text, page

    result = _robustness(client, config, tmp_path / "weights", "--vary", "weights")
    assert result.exit_code == 0, result.output
    core = pd.read_csv(tmp_path / "weights" / "robustness.csv", keep_default_na=False)
    assert set(core["vary"]) == {"weights"}
    batches = pd.read_csv(tmp_path / "weights" / "batches.csv")
    assert set(batches["first_scenario"]) == {0}


@pytest.mark.slow
def test_cli_refuses_to_vary_weights_without_ranges(client, tmp_path: Path) -> None:
    catalog = write_catalog_csv(build_small_catalog(), tmp_path / "catalog")
    config = _config_file(tmp_path, catalog, BASE)
    for vary in ("weights", "both"):
        result = _robustness(client, config, tmp_path / "out", "--vary", vary)
        assert result.exit_code == 2, result.output
        assert "--vary" in result.output and str(catalog / "chokepoints.csv") in result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / "out").exists()
    result = _robustness(client, config, tmp_path / "out", "--vary", "priorities")
    assert result.exit_code == 2 and "'priorities' is not one of" in result.output
    result = _robustness(client, config, tmp_path / "out")  # no ranges: scenarios only
    assert result.exit_code == 0, result.output
    core = pd.read_csv(tmp_path / "out" / "robustness.csv", keep_default_na=False)
    assert set(core["vary"]) == {"scenarios"}
