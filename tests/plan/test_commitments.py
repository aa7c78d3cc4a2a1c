"""The commitments file checked as a whole before any work (portopt.plan.commitments), through
the API, ``portopt validate --commitments`` and ``portopt plan``: every problem exits 2 with its
file, row and column; a header with no rows is refused unless ``--no-commitments``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portopt.catalog import load_catalog
from portopt.cli.main import app
from portopt.config import load_config
from portopt.errors import EXIT_BAD_INPUT, ConfigError, InputError
from portopt.plan import load_commitments
from portopt.plan.commitments import bundled_path
from tests.conftest import write_catalog_csv

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "configs" / "default.yaml"
HEADER = "project,quarter,amount_usd\n"
TRANCHE = bundled_path().read_text()

# (file body after the header, row, column, words of the message) against the bundled catalog
BUNDLED_CASES = {
    "five times the maximum share": (
        "sb_energy_portsmouth_gas,2026Q1,166500000000\n",
        2,
        "amount_usd",
        "above the maximum",
    ),
    "below the minimum share": (
        "gevh_bwrx300_clinch_u1,2026Q1,1000\n",
        2,
        "amount_usd",
        "below the minimum",
    ),
    "a dependant without its prerequisite": (
        "gev_gas_turbine_tranche_2,2026Q1,2e9\n",
        2,
        "project",
        "needs 'gev_gas_turbine_expansion'",
    ),
    "a prerequisite committed after its dependant": (
        "gev_gas_turbine_tranche_2,2026Q1,2e9\ngev_gas_turbine_expansion,2026Q2,2e9\n",
        2,
        "quarter",
        "committed later",
    ),
    "two projects that exclude each other": (
        "ndpr_separation_ut,2026Q2,2e8\nenergy_fuels_white_mesa_phase2,2026Q2,2e8\n",
        3,
        "project",
        "exclude each other",
    ),
    "a commitment in the last open round": (
        "texas_gulflink,2028Q4,2100000000\n",
        2,
        "quarter",
        "leaves no open round",
    ),
    "blank lines and a quoted two-line cell keep the row numbers": (
        ',,\n\nelement_six_diamond_grit,2026Q1,"600000\n000"\n\nnope,2026Q1,1e9\n',
        7,
        "project",
        "not a catalog project",
    ),
    "a huge amount": ("texas_gulflink,2026Q1,1e300\n", 2, "amount_usd", "$1.00e+300"),
}


def _file(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "commitments.csv"
    path.write_text(header + body)
    return path


@pytest.mark.parametrize("case", list(BUNDLED_CASES))
def test_each_problem_names_its_row_and_column(case: str, tmp_path: Path) -> None:
    body, row, column, words = BUNDLED_CASES[case]
    path = _file(tmp_path, body)
    with pytest.raises(InputError) as info:
        load_commitments(path, load_catalog(None), load_config(DEFAULT))
    found = [(p.row, p.column) for p in info.value.problems if words in p.message]
    assert found == [(row, column)], info.value
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert all(len(str(p)) < 400 for p in info.value.problems)


@pytest.mark.parametrize(
    "case", ["five times the maximum share", "two projects that exclude each other"]
)
def test_validate_reports_them_with_exit_2(case: str, tmp_path: Path) -> None:
    body, row, column, words = BUNDLED_CASES[case]
    path = _file(tmp_path, body)
    result = CliRunner().invoke(app, ["validate", "--commitments", str(path)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert f"{path}, row {row}, column '{column}'" in result.output.replace("\n", "")
    assert words in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_validate_accepts_the_bundled_tranche() -> None:
    result = CliRunner().invoke(app, ["validate", "--commitments", str(bundled_path())])
    assert result.exit_code == 0, result.output
    assert "commitments OK: 3 project(s), $36.0B" in result.output


def test_rows_one_field_longer_than_the_header_exit_2(tmp_path: Path) -> None:
    rows = TRANCHE.splitlines()[1:]
    path = _file(
        tmp_path, "".join(f"{r},extra\n" for r in rows), header=TRANCHE.splitlines()[0] + "\n"
    )
    result = CliRunner().invoke(app, ["validate", "--commitments", str(path)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    for line in range(2, 2 + len(rows)):
        assert f"row {line}:" in result.output
    assert "internal error" not in result.output


def test_a_column_given_twice_or_a_folder_is_named(tmp_path: Path) -> None:
    """A header holding ``project`` twice used to be read silently (the first one taken); a
    folder given as the file was "no such file"."""
    path = _file(
        tmp_path, "texas_gulflink,2026Q1,2.1e9,texas_gulflink\n", HEADER.strip() + ",project\n"
    )
    with pytest.raises(InputError) as caught:
        load_commitments(path, load_catalog(None), load_config(None))
    assert "row 1, column 'project': column given twice" in str(caught.value)
    with pytest.raises(InputError, match="is a folder, not a file"):
        load_commitments(tmp_path, load_catalog(None), load_config(None))


def test_a_header_only_file_is_refused_unless_no_commitments(tmp_path: Path) -> None:
    path = _file(tmp_path, "")
    catalog, config = load_catalog(None), load_config(DEFAULT)
    with pytest.raises(InputError, match="--no-commitments"):
        load_commitments(path, catalog, config)
    assert load_commitments(path, catalog, config, none=True) == []
    result = CliRunner().invoke(app, ["validate", "--commitments", str(path)])
    assert result.exit_code == EXIT_BAD_INPUT and "--no-commitments" in result.output


@pytest.mark.parametrize("key", ["plan.first_quarter=2029Q2", "plan.deadline=2026-03-01"])
def test_a_plan_with_no_open_round_is_refused_naming_the_keys(key: str) -> None:
    config = load_config(DEFAULT, [key])
    with pytest.raises(ConfigError, match="no round is open") as info:
        load_commitments(None, load_catalog(None), config)
    assert info.value.problems[0].file == "plan.first_quarter and plan.deadline"


def test_a_custom_catalog_holding_the_tranche_must_say_what_is_committed(tmp_path: Path) -> None:
    bundled = load_catalog(None)
    projects = bundled.projects.copy()
    projects["status"] = "candidate"
    folder = write_catalog_csv(
        type(bundled)(projects, bundled.chokepoints, bundled.capacity, "x"), tmp_path / "cat"
    )
    catalog, config = load_catalog(folder), load_config(DEFAULT)
    with pytest.raises(InputError, match="sb_energy_portsmouth_gas") as info:
        load_commitments(None, catalog, config)
    assert "--no-commitments" in str(info.value) and "--commitments" in str(info.value)
    assert load_commitments(None, catalog, config, none=True) == []
    assert len(load_commitments(bundled_path(), catalog, config)) == 3


def test_plan_refuses_a_header_only_file_and_writes_nothing(tmp_path: Path) -> None:
    path = _file(tmp_path, "")
    out = tmp_path / "out"
    args = ["plan", str(DEFAULT), "--commitments", str(path), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "--no-commitments" in result.output and not out.exists()
    both = CliRunner().invoke(app, [*args, "--no-commitments"])
    assert both.exit_code == EXIT_BAD_INPUT and "--no-commitments" in both.output


def test_plan_with_no_commitments_plans_the_marked_projects_as_candidates(
    small_catalog, tmp_path: Path
) -> None:
    cat = small_catalog
    projects = cat.projects.copy()
    projects.loc["gas_ohio", "status"] = "committed"
    projects.loc["gas_ohio", "min_fund_share"] = projects.loc["gas_ohio", "max_fund_share"]
    folder = write_catalog_csv(
        type(cat)(projects, cat.chokepoints, cat.capacity, "x"), tmp_path / "c"
    )
    out = tmp_path / "out"
    sets = [
        f"catalog={folder}",
        "scenarios.optimisation=40",
        "scenarios.evaluation=20",
        "plan.deadline=2027-09-30",
        "model.groups.sector_shares.enabled=false",
        "model.groups.recoupment.enabled=false",
        "output.report=false",
        "output.scenarios_parquet=false",
    ]
    args = ["plan", str(DEFAULT), "--no-commitments", "--out", str(out), "--json"]
    result = CliRunner().invoke(app, [*args, *(x for s in sets for x in ("--set", s))])
    assert result.exit_code == 0, result.output
    plan = (out / "plan.csv").read_text()
    assert ",committed," not in plan
    # --json carries the plan's headline figures, as metrics.json holds them
    summary = json.loads(result.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    oos = metrics["out_of_sample"]
    assert summary["status"] == metrics["status"] and summary["mip_gap"] == metrics["mip_gap"]
    assert summary["recovery_ratio"] == oos["recovery_ratio"]["mean"]
    assert summary["p_recoup"] == oos["p_recoup"]
    assert summary["cvar_shortfall_share"] == oos["shortfall_cvar_0.95_share"]
    for key in ("committed_expected_usd", "committed_p10_usd", "committed_p90_usd", "coverage"):
        assert summary[key] == metrics["plan"][key]


def test_a_capex_reduction_on_a_committed_project_is_named_with_the_amount() -> None:
    key = "support.projects.sb_energy_portsmouth_gas.capex_reduction"
    result = CliRunner().invoke(
        app,
        [
            "validate",
            "--config",
            "default",
            "--set",
            f"{key}=0.5",
            "--commitments",
            str(bundled_path()),
        ],
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "column 'amount_usd'" in said and f"{key} 0.5 lowered the base cost" in said
