"""portopt.whatif and ``portopt whatif``: the base and a variant on the same scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import build_small_catalog, make_catalog, project_row, write_catalog_csv
from typer.testing import CliRunner

from portopt.catalog import Catalog, load_catalog
from portopt.cli.main import app
from portopt.config import RunConfig, load_config
from portopt.engine.generate import generate_scenarios
from portopt.errors import EXIT_BAD_INPUT, EXIT_INFEASIBLE, CatalogError, ConfigError
from portopt.evaluate import Aggregates
from portopt.model import Allocation, optimize
from portopt.run import evaluation_blocks
from portopt.whatif import WHATIF_CSV, WHATIF_JSON, Variant, load_additions, whatif

SCENARIOS = {"optimisation": 64, "evaluation": 64}


def _write_config(path: Path, catalog: Path) -> None:
    """A config reading ``catalog`` with few scenarios, and the small catalog's own recoupment
    limits (the schema's defaults suit the bundled catalog)."""
    recoupment = {"max_shortfall_share": 0.6, "min_expected_recovery": 0.65}
    path.write_text(
        yaml.safe_dump(
            {
                "catalog": str(catalog),
                "scenarios": SCENARIOS,
                "model": {"groups": {"recoupment": recoupment}},
            }
        )
    )


@pytest.fixture
def base_folder(tmp_path: Path) -> Path:
    """The small catalog on disk, and a config reading it (few scenarios)."""
    catalog = write_catalog_csv(build_small_catalog(), tmp_path / "catalog")
    config = tmp_path / "whatif.yaml"
    _write_config(config, catalog)
    return tmp_path


def _loaded(folder: Path) -> tuple[Catalog, RunConfig]:
    config = load_config(folder / "whatif.yaml")
    return load_catalog(config.catalog), config


def _solved(catalog: Catalog, config: RunConfig) -> Allocation:
    """The portfolio chosen on the optimisation scenarios, solved directly."""
    scenarios = generate_scenarios(catalog, config, config.backend, range(64))
    return optimize(catalog, config, scenarios)


def _additions(folder: Path, rows: list[dict[str, object]], capacity: dict) -> Path:
    """An --add folder: projects.csv and capacity.csv of ``rows`` (no chokepoints.csv)."""
    write_catalog_csv(make_catalog(rows, capacity=capacity), folder)
    (folder / "chokepoints.csv").unlink()
    return folder


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_dropping_an_unselected_candidate_changes_nothing(base_folder: Path) -> None:
    catalog, config = _loaded(base_folder)
    base = _solved(catalog, config)
    unselected = next(p for p in catalog.project_ids if p not in base.selected)
    result = whatif(catalog, config, Variant(drop=(unselected,)))
    assert result.changes.empty
    assert result.base.selected == base.selected
    assert result.variant.selected == base.selected
    kept = [catalog.project_ids.index(p) for p in result.variant.ids]
    np.testing.assert_array_equal(result.variant.fund_usd, result.base.fund_usd[kept])
    assert [d.delta for d in result.deltas] == [0.0] * len(result.deltas)
    assert all(d.noise == "no change" for d in result.deltas)
    # the portfolio kept is as good as a full solve of the smaller catalog, within the gap
    # both solves are allowed
    solved = _solved(catalog.subset(result.variant.ids), config)
    assert solved.objective == pytest.approx(result.base.objective, rel=config.solver.mip_gap)


def test_dropping_a_selected_project_changes_the_selection_with_finite_errors(
    base_folder: Path,
) -> None:
    catalog, config = _loaded(base_folder)
    base = _solved(catalog, config)
    dropped = catalog.project_ids[int(np.argmax(base.fund_usd))]
    result = whatif(catalog, config, Variant(drop=(dropped,)))
    row = result.changes.set_index("id").loc[dropped]
    assert (row["change"], row["cause"]) == ("out", "dropped")
    assert not result.kept_base
    assert not result.within_gap  # the objective falls by far more than the solves' gaps
    assert (result.changes["noise"] == "").all()
    sampled = [d for d in result.deltas if d.se is not None]
    assert {d.figure for d in sampled} == {"coverage_score", "recovery_ratio", "p_recoup"}
    assert all(np.isfinite(d.se) and np.isfinite(d.delta) for d in sampled)
    coverage = next(d for d in sampled if d.figure == "coverage_score")
    assert coverage.delta < 0 < coverage.se


def test_the_paired_error_is_the_spread_of_per_scenario_differences(base_folder: Path) -> None:
    catalog, config = _loaded(base_folder)
    result = whatif(catalog, config, Variant(drop=("ndpr_magnets",)))
    coverage = next(d for d in result.deltas if d.figure == "coverage_score")
    # each side evaluated alone, on its own catalog and the same evaluation scenario indices
    scores = []
    for side in (result.base, result.variant):
        side_catalog = catalog.subset(side.ids)
        agg = Aggregates(side_catalog, side.y, side.fund_usd, config.scenarios.evaluation)
        for block in evaluation_blocks(side_catalog, config):
            agg.add(block)
        scores.append(agg.score.copy())
    d = scores[1] - scores[0]
    assert coverage.delta == pytest.approx(d.mean(), abs=1e-9)
    assert coverage.se == pytest.approx(d.std(ddof=1) / np.sqrt(d.size), rel=1e-6)


def test_a_variant_whose_objective_is_within_the_gaps_is_marked(base_folder: Path) -> None:
    catalog, config = _loaded(base_folder)
    tighter = load_config(base_folder / "whatif.yaml", ["solver.mip_gap=0.0001"])
    result = whatif(catalog, config, Variant(config=tighter))
    assert not result.kept_base
    noise = result.summary()["solver_noise"]
    assert abs(noise["objective_delta"]) <= noise["gap_tolerance"]
    assert noise["within_gap"] and result.within_gap
    assert (result.changes["noise"] == "within the solver's gap").all()


def test_dropping_a_prerequisite_drops_its_dependents(base_folder: Path) -> None:
    catalog, config = _loaded(base_folder)
    projects = catalog.projects.copy()
    projects.loc["dc_campus", "depends_on"] = ("gas_ohio",)
    linked = Catalog(projects, catalog.chokepoints, catalog.capacity, catalog.source)
    result = whatif(linked, config, Variant(drop=("gas_ohio",)))
    assert "dc_campus" not in result.variant.ids
    assert "dc_campus (dropped: depends on gas_ohio)" in result.description


def test_an_added_candidate_that_dominates_comes_in(base_folder: Path) -> None:
    catalog, config = _loaded(base_folder)
    row = project_row(
        "cheap_magnets",
        sector="critical_minerals",
        base_cost_usd=3e8,
        failure_prob=0.0,
        revenue_usd_per_year=1e8,
    )
    folder = _additions(base_folder / "add", [row], {("cheap_magnets", "rare_earth_magnets"): 30.0})
    result = whatif(catalog, config, Variant(add=load_additions(folder, catalog)))
    assert "cheap_magnets" in result.summary()["projects"]["in"]
    row = result.changes.set_index("id").loc["cheap_magnets"]
    assert row["cause"] == "added"
    coverage = next(d for d in result.deltas if d.figure == "coverage_score")
    assert coverage.delta > 0


def test_a_budget_change_through_set(base_folder: Path) -> None:
    catalog, config = _loaded(base_folder)
    base = _solved(catalog, config)
    budget = 0.5 * base.capital_usd
    smaller = load_config(base_folder / "whatif.yaml", [f"model.budget_usd={budget}"])
    result = whatif(catalog, config, Variant(config=smaller))
    capital = next(d for d in result.deltas if d.figure == "capital_committed_usd")
    assert capital.variant <= budget * (1 + 1e-9) < capital.base
    assert "set model.budget_usd=" in result.description
    assert not result.changes.empty


@pytest.mark.slow
def test_the_cli_writes_and_prints_the_diff(base_folder: Path) -> None:
    out = base_folder / "out"
    config = str(base_folder / "whatif.yaml")
    result = cli("whatif", config, "--one-shot", "--drop", "ndpr_magnets", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Coverage score" in result.output and "SE" in result.output
    assert sorted(p.name for p in out.iterdir()) == [WHATIF_CSV, WHATIF_JSON]
    summary = json.loads((out / WHATIF_JSON).read_text())
    assert summary["variant"] == "drop ndpr_magnets"
    assert "ndpr_magnets" in summary["projects"]["out"]
    assert summary["deltas"]["coverage_score"]["se"] > 0
    assert summary["base_solve"]["status"] == "optimal"
    printed = cli(
        "whatif", config, "--one-shot", "--drop", "ndpr_magnets", "--out", str(out), "--json"
    )
    assert json.loads(printed.stdout)["deltas"] == summary["deltas"]


@pytest.mark.parametrize(
    "args, source",
    [
        (["--drop", "ndpr_magnet"], "--drop: unknown project 'ndpr_magnet' (did you mean"),
        (["--set", "seed=7"], "--set seed: a what-if compares both sides"),
        (["--set", "model.budget_usd=-1"], "--set model.budget_usd=-1"),
        ([], "whatif: give the variant"),
    ],
    ids=["unknown-drop", "pairing-key", "bad-value", "no-variant"],
)
def test_bad_variants_exit_2_and_write_nothing(
    args: list[str], source: str, base_folder: Path
) -> None:
    out = base_folder / "out"
    result = cli("whatif", str(base_folder / "whatif.yaml"), "--one-shot", *args, "--out", str(out))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert source in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_bad_added_rows_name_the_added_file_row_and_column(base_folder: Path) -> None:
    catalog, _ = _loaded(base_folder)
    rows = [project_row("good_one"), project_row("bad_one", failure_prob=1.5)]
    folder = _additions(base_folder / "add", rows, {("good_one", "firm_power"): 1.0})
    with pytest.raises(CatalogError) as caught:
        load_additions(folder, catalog)
    [problem] = caught.value.problems
    assert (problem.file, problem.row, problem.column) == (
        str(folder / "projects.csv"),
        3,
        "failure_prob",
    )
    clash = _additions(base_folder / "clash", [project_row("gas_ohio")], {})
    with pytest.raises(CatalogError, match="'gas_ohio' is already a candidate"):
        load_additions(clash, catalog)
    out = base_folder / "out"
    result = cli(
        "whatif",
        str(base_folder / "whatif.yaml"),
        "--one-shot",
        "--add",
        str(folder),
        "--out",
        str(out),
    )
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert f"{folder / 'projects.csv'}, row 3, column 'failure_prob'" in result.output
    assert not out.exists()


def test_an_infeasible_variant_exits_3_and_says_so(tmp_path: Path) -> None:
    committed = build_small_catalog()
    committed.projects.loc["diamond_grit", ["status", "min_fund_share", "max_fund_share"]] = (
        "committed",
        0.5,
        0.5,
    )
    catalog = write_catalog_csv(committed, tmp_path / "catalog")
    config = tmp_path / "committed.yaml"
    _write_config(config, catalog)
    out = tmp_path / "out"
    # the committed project's amount (half of $0.6B) is above the variant's budget
    result = cli(
        "whatif", str(config), "--one-shot", "--set", "model.budget_usd=1e7", "--out", str(out)
    )
    assert result.exit_code == EXIT_INFEASIBLE, result.output
    assert "the variant (set model.budget_usd=10000000.0" in result.output
    assert "is infeasible" in result.output
    assert not out.exists()


def test_a_variant_dropping_everything_is_bad_input(base_folder: Path) -> None:
    catalog, config = _loaded(base_folder)
    with pytest.raises(ConfigError, match="drops every candidate"):
        whatif(catalog, config, Variant(drop=tuple(catalog.project_ids)))
