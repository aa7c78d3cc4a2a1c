"""What the catalog says about plans, caught by ``portopt validate`` (exit 2): a start option's
id ``<id>~<quarter>`` is a valid project id (docs/scenario-model.md), and two committed projects
that exclude each other are a contradiction no plan or run can hold."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from portopt.catalog import load_catalog, validate_catalog
from portopt.cli.main import app
from portopt.errors import EXIT_BAD_INPUT
from tests.conftest import write_catalog_csv


def test_a_start_option_id_is_a_project_id(small_catalog, tmp_path: Path) -> None:
    cat = small_catalog
    option = "gas_ohio~2027Q1"
    projects = cat.projects.rename(index={"gas_ohio": option})
    projects.loc[option, "earliest_start"] = "2027Q1"
    projects.loc[option, "entity_id"] = "gas_ohio"
    capacity = cat.capacity.rename(index={"gas_ohio": option})
    folder = write_catalog_csv(
        type(cat)(projects, cat.chokepoints, capacity, cat.source), tmp_path / "c"
    )
    assert validate_catalog(folder) == []
    assert option in load_catalog(folder).project_ids
    bad = folder / "projects.csv"
    bad.write_text(bad.read_text().replace(option, "gas_ohio~2027Q5"))
    problems = validate_catalog(folder)
    assert [(p.row, p.column) for p in problems if p.file.endswith("projects.csv")] == [(2, "id")]
    assert "<id>~<quarter>" in problems[0].message


def test_committed_projects_that_exclude_each_other_exit_2(small_catalog, tmp_path: Path) -> None:
    cat = small_catalog
    share = cat.projects["max_fund_share"]
    projects = cat.projects.copy()
    for pid in ("gas_ohio", "fab_chips"):
        projects.loc[pid, "status"] = "committed"
        projects.loc[pid, "min_fund_share"] = share[pid]
    projects.at["fab_chips", "excludes"] = ("gas_ohio",)
    folder = write_catalog_csv(
        type(cat)(projects, cat.chokepoints, cat.capacity, cat.source), tmp_path / "c"
    )
    line = 2 + list(projects.index).index("fab_chips")
    result = CliRunner().invoke(app, ["validate", str(folder)])
    text = result.output.replace("\n", "")
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert f"row {line}, column 'excludes'" in text and "committed too" in text
    projects.loc["gas_ohio", "status"] = "candidate"
    write_catalog_csv(type(cat)(projects, cat.chokepoints, cat.capacity, cat.source), folder)
    assert validate_catalog(folder) == []
