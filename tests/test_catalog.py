"""Catalog loading and validation: the typed tables, every malformed input, the bundled data."""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from portopt.catalog import (
    CAPACITY,
    CHOKEPOINTS,
    PROJECTS,
    SCHEMA,
    Catalog,
    bundled_path,
    chokepoint_entity,
    fnv1a32,
    grid_regions,
    load_catalog,
    project_entity,
    validate_catalog,
)
from portopt.cli.main import app
from portopt.errors import CatalogError, Problem
from portopt.vocabulary import SECTORS

GOOD = Path(__file__).parent / "fixtures" / "catalogs" / "good"
runner = CliRunner()


# ---------------------------------------------------------------------------------------------
# Editing a copy of the good fixture


def read_rows(folder: Path, file: str) -> list[list[str]]:
    with open(folder / file, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def write_rows(folder: Path, file: str, rows: list[list[str]]) -> None:
    with open(folder / file, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def set_cell(file: str, line: int, column: str, value: str) -> Callable[[Path], None]:
    """A mutation writing ``value`` at ``line`` (header = line 1) and ``column`` of ``file``."""

    def apply(folder: Path) -> None:
        rows = read_rows(folder, file)
        rows[line - 1][rows[0].index(column)] = value
        write_rows(folder, file, rows)

    return apply


def set_new_cell(file: str, line: int, column: str, value: str) -> Callable[[Path], None]:
    """Like :func:`set_cell`, for an optional column the file may lack (added, blank elsewhere)."""

    def apply(folder: Path) -> None:
        rows = read_rows(folder, file)
        if column not in rows[0]:
            rows = [rows[0] + [column]] + [[*r, ""] for r in rows[1:]]
        rows[line - 1][rows[0].index(column)] = value
        write_rows(folder, file, rows)

    return apply


def drop_column(file: str, column: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        rows = read_rows(folder, file)
        k = rows[0].index(column)
        write_rows(folder, file, [r[:k] + r[k + 1 :] for r in rows])

    return apply


def add_column(file: str, column: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        rows = read_rows(folder, file)
        write_rows(folder, file, [rows[0] + [column]] + [[*r, "x"] for r in rows[1:]])

    return apply


def append_copies(file: str, line: int, ids: list[str]) -> Callable[[Path], None]:
    """Append copies of ``line``, their first cell replaced by each of ``ids`` (None: kept)."""

    def apply(folder: Path) -> None:
        rows = read_rows(folder, file)
        new = [[i if i is not None else rows[line - 1][0], *rows[line - 1][1:]] for i in ids]
        write_rows(folder, file, rows + new)

    return apply


def truncate_line(file: str, line: int, fields: int) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        rows = read_rows(folder, file)
        rows[line - 1] = rows[line - 1][:fields]
        write_rows(folder, file, rows)

    return apply


P, C, K = PROJECTS.file, CHOKEPOINTS.file, CAPACITY.file
# two ids whose FNV-1a hashes agree on the low 31 bits: the same Philox entity
COLLIDING = ("p2308", "p571002")

Case = tuple[Callable[[Path], None], str, int, str, str]
"""A malformed catalog: (mutation, file, row, column, a phrase) of the problem expected."""


def cell(file: str, line: int, column: str, value: str, phrase: str, at: str = "") -> Case:
    """Write ``value`` into one cell; the problem is expected there (or in column ``at``)."""
    return set_cell(file, line, column, value), file, line, at or column, phrase


def new_cells(file: str, line: int, phrase: str, at: str = "", **cells: str) -> Case:
    """Write optional-column ``cells`` into one row of ``file``; the problem is expected at
    ``at`` (the one cell's column when a single cell is written)."""

    def apply(folder: Path) -> None:
        for column, value in cells.items():
            set_new_cell(file, line, column, value)(folder)

    return apply, file, line, at or next(iter(cells)), phrase


def economics(line: int, phrase: str, at: str = "", **cells: str) -> Case:
    """Economics-column ``cells`` in one projects row (see :func:`new_cells`)."""
    return new_cells(P, line, phrase, at, **cells)


def ranges(line: int, phrase: str, at: str = "", **cells: str) -> Case:
    """Range-column ``cells`` in one chokepoints row (see :func:`new_cells`)."""
    return new_cells(C, line, phrase, at, **cells)


# rows of the good fixture: projects 2 ohio_gas (committed), 3 ai_campus (depends on ohio_gas),
# 4 fab_az, 5 ndpr_sep, 6 ndpr_alt, 7 shipyard; chokepoints 2 firm_power .. 5 naval_hulls;
# capacity 2..7, one pair per project.
MUTATIONS: dict[str, Case] = {
    "non_numeric_cost": cell(P, 4, "base_cost_usd", "abc", "(0, 1e12]"),
    "negative_cost": cell(P, 3, "base_cost_usd", "-2e9", "(0, 1e12]"),
    "zero_cost": cell(P, 7, "base_cost_usd", "0", "(0, 1e12]"),
    "probability_above_one": cell(P, 5, "failure_prob", "1.5", "[0, 1]"),
    "share_negative": cell(P, 4, "japan_content", "-0.1", "[0, 1]"),
    "max_share_zero": cell(P, 4, "max_fund_share", "0", "(0, 1]"),
    "spread_too_wide": cell(P, 3, "spread", "0.3", "[0, 0.2]"),
    "p90_below_median": cell(P, 4, "overrun_p90", "0.1", "median"),
    "min_share_above_max": cell(P, 3, "min_fund_share", "0.9", "max_fund_share"),
    "committed_share_not_fixed": cell(
        P, 2, "max_fund_share", "0.7", "committed", at="min_fund_share"
    ),
    "unknown_sector": cell(P, 4, "sector", "semis", "semiconductors"),
    "unknown_permitting": cell(P, 5, "permitting", "fast", "federal"),
    "unknown_status": cell(P, 6, "status", "maybe", "candidate"),
    "unknown_price_factor": cell(P, 6, "price_factor", "oil", "ndpr"),
    "unknown_basis": cell(C, 3, "basis", "guess", "illustrative"),
    "bad_state": cell(P, 4, "state", "Arizona", "state code"),
    "bad_boolean": cell(C, 2, "china_exposed", "yes", "true or false"),
    "bad_quarter": cell(P, 4, "earliest_start", "2026-07", "2026Q3"),
    "quarter_year_9999": cell(P, 4, "earliest_start", "9999Q4", "from 1900Q1 to 2199Q4"),
    "quarter_arabic_digits": cell(P, 4, "earliest_start", "\u0662\u0660\u0662\u0668Q1", "2026Q3"),
    "non_integer": cell(P, 4, "build_quarters", "3.5", "whole"),
    "empty_required": cell(P, 7, "sponsor", "", "empty"),
    "bad_id": cell(P, 6, "id", "NdPr-Alt", "lowercase"),
    "nan": cell(P, 6, "overrun_median", "nan", "NaN"),
    "infinity": cell(C, 5, "us_gap", "inf", "infinity"),
    "huge_number": cell(P, 2, "revenue_usd_per_year", "1e400", "finite"),
    "dangling_dependency": cell(P, 3, "depends_on", "ghost", "ghost"),
    "dangling_exclusion": cell(P, 7, "excludes", "fab_az;ghost", "ghost"),
    "self_exclusion": cell(P, 5, "excludes", "ndpr_sep", "itself"),
    "self_dependency": cell(P, 4, "depends_on", "fab_az", "itself"),
    "dependency_cycle": cell(P, 2, "depends_on", "ai_campus", "ohio_gas -> ai_campus"),
    "dangling_capacity_project": cell(K, 2, "project_id", "ghost", "unknown id"),
    "dangling_capacity_chokepoint": cell(K, 4, "chokepoint_id", "rare_gas", "unknown id"),
    "capacity_zero": cell(K, 3, "capacity", "0", "(0, 1e12]"),
    "duplicate_project_id": cell(P, 7, "id", "fab_az", "duplicate"),
    "duplicate_chokepoint_id": cell(C, 5, "id", "firm_power", "duplicate"),
    "duplicate_capacity_pair": (append_copies(K, 2, [None]), K, 8, "project_id", "duplicate"),
    "entity_collision": (append_copies(P, 7, list(COLLIDING)), P, 9, "id", "entity"),
    "missing_column": (drop_column(P, "spread"), P, 1, "spread", "missing column"),
    "unknown_column": (add_column(C, "colour"), C, 1, "colour", "unknown column"),
    "misspelt_column": (add_column(K, "capacty"), K, 1, "capacty", "did you mean 'capacity'"),
    "short_line": (truncate_line(P, 4, 20), P, 4, "delay_median_quarters", "fields"),
    # grid regions against regions.csv (issue 13 item 3)
    "region_typo": cell(
        P, 4, "grid_region", "ERCTO", "unknown value 'ERCTO' (did you mean 'ERCOT'?)"
    ),
    "region_lowercase": cell(P, 5, "grid_region", "pjm", "unknown value 'pjm'"),
    "region_empty": cell(P, 6, "grid_region", "", "empty"),
    "region_state_name": cell(P, 7, "grid_region", "Texas", "unknown value 'Texas'"),
    # sane bounds: huge but finite numbers stop at the cell, not in the solver
    "cost_1e308": cell(P, 3, "base_cost_usd", "1e308", "(0, 1e12]"),
    "revenue_1e308": cell(P, 4, "revenue_usd_per_year", "1e308", "[0, 1e12]"),
    "weight_1e308": cell(C, 3, "weight", "1e308", "(0, 100]"),
    "gap_1e308": cell(C, 4, "us_gap", "1e308", "(0, 1e12]"),
    "capacity_1e308": cell(K, 5, "capacity", "1e308", "(0, 1e12]"),
    "workers_huge": cell(P, 5, "workers_per_year", "1e9", "[0, 1e6]"),
    "dc_load_huge": cell(P, 3, "dc_load_mw", "2e6", "[0, 1e6]"),
    "firm_gen_huge": cell(P, 2, "firm_gen_mw", "1e300", "[0, 1e6]"),
    "build_forever": cell(P, 4, "build_quarters", "100000", "[1, 120]"),
    "life_forever": cell(P, 6, "life_years", "1000", "[1, 100]"),
    "delay_huge": cell(P, 7, "delay_median_quarters", "1e6", "[0, 80]"),
    "floor_huge": cell(P, 3, "offtake_floor", "1e308", "[0, 10]"),
    "p90_huge": cell(P, 5, "overrun_p90", "1e308", "[-0.5, 20]"),
    # the economics columns (optional: absent from the good fixture, added by the mutation)
    "senior_plus_fund_above_one": economics(
        4, "max_fund_share + senior_debt_share <= 1", senior_debt_share="0.5"
    ),
    "senior_share_too_high": economics(5, "[0, 0.95]", senior_debt_share="0.99"),
    "senior_tenor_too_long": economics(5, "[1, 40]", senior_tenor_years="100"),
    "senior_spread_negative": economics(6, "[0, 0.2]", senior_spread="-0.01"),
    "unknown_amortisation": economics(3, "unknown value 'bullet'", senior_amortisation="bullet"),
    "unknown_credit": economics(4, "did you mean 'ptc'?", credit="ptcx"),
    "credit_without_basis": economics(
        4, "credit is 'itc'", at="credit_basis", credit="itc", credit_rate="0.3"
    ),
    "itc_above_cost": economics(
        5, "share of cost", at="credit_rate", credit="itc", credit_rate="30", credit_basis="fact"
    ),
    "credit_rate_1e308": economics(6, "[0, 1e6]", credit_rate="1e308"),
    "credit_units_negative": economics(3, "[0, 1e12]", credit_units_per_year="-1"),
    "credit_years_too_long": economics(7, "[0, 60]", credit_years="100"),
    "unknown_credit_basis": economics(7, "unknown value 'guess'", credit_basis="guess"),
    "tax_life_zero": economics(2, "[1, 60]", tax_life_years="0"),
    "bonus_above_one": economics(3, "[0, 1]", bonus_share="1.5"),
    "unknown_depreciation": economics(4, "did you mean 'macrs'?", depreciation="macr"),
    "offtake_years_too_long": economics(5, "[0, 100]", offtake_years="500"),
    "unknown_jbic_funding": economics(6, "did you mean 'yen_loans'?", jbic_funding="yen_loan"),
    "yen_share_above_one": economics(7, "[0, 1]", yen_share="2"),
    # chokepoint ranges (issue 12): optional, absent from the good fixture; firm_power's gap is
    # 30 and its weight 1.0, leading_chips' 100000 and 1.5, ndpr_oxide's weight 1.2
    "gap_low_above_point": ranges(2, "expected us_gap_low <= us_gap", us_gap_low="40"),
    "gap_high_below_point": ranges(3, "expected us_gap_high >= us_gap", us_gap_high="9e4"),
    "gap_low_zero": ranges(5, "(0, 1e12]", us_gap_low="0"),
    "weight_low_negative": ranges(2, "(0, 100]", weight_low="-1"),
    "weight_high_below_point": ranges(4, "1 is below weight 1.2", weight_high="1"),
    "weight_high_1e308": ranges(3, "(0, 100]", weight_high="1e308"),
    "weight_low_not_a_number": ranges(5, "a number", weight_low="low"),
}


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    """A writable copy of the good fixture catalog."""
    folder = tmp_path / "catalog"
    shutil.copytree(GOOD, folder)
    return folder


def invoke(*args: str) -> tuple[Result, str]:
    """Run ``portopt validate ARGS``; the output is what a user sees (stdout and stderr)."""
    result = runner.invoke(app, ["validate", *args])
    return result, result.output


# ---------------------------------------------------------------------------------------------
# The good catalog and the typed tables


def test_a_catalog_without_capacity_is_valid_and_said_so(catalog_copy: Path) -> None:
    """A header-only capacity.csv is a catalog in which no project covers a chokepoint: valid
    (a deployment-only analysis), but validate and the plan's notes say what it means."""
    from portopt.config import load_config
    from portopt.planning import Plan

    capacity = catalog_copy / "capacity.csv"
    capacity.write_text(capacity.read_text().splitlines()[0] + "\n")
    result, out = invoke(str(catalog_copy))
    assert result.exit_code == 0, out
    assert "0 capacity pairs" in out and "no project covers a chokepoint" in out
    job = Plan(None)
    config = job.prepare(load_config(None, [f"catalog={catalog_copy}"]))
    columns = job.columns(load_catalog(catalog_copy), config)
    assert any("no project covers a chokepoint" in n for n in columns.notes)
    result, out = invoke(str(GOOD))
    assert "no project covers a chokepoint" not in out


def test_good_fixture_validates_and_loads_typed() -> None:
    assert validate_catalog(GOOD) == []
    cat = load_catalog(GOOD)
    assert isinstance(cat, Catalog)
    assert cat.project_ids == [
        "ohio_gas",
        "ai_campus",
        "fab_az",
        "ndpr_sep",
        "ndpr_alt",
        "shipyard",
    ]
    assert cat.chokepoint_ids == ["firm_power", "leading_chips", "ndpr_oxide", "naval_hulls"]
    for table, frame in ((PROJECTS, cat.projects), (CHOKEPOINTS, cat.chokepoints)):
        assert list(frame.columns) == [c for c in table.names if c != "id"]
        for col in table.columns[1:]:
            kind = frame[col.name].dtype
            expected = {"float": np.float64, "int": np.int64, "bool": np.bool_}.get(col.kind)
            if expected is not None:
                assert kind == expected, col.name
            elif col.kind == "ids":
                assert all(isinstance(v, tuple) for v in frame[col.name]), col.name
            else:
                assert all(isinstance(v, str) for v in frame[col.name]), col.name
    assert cat.projects.loc["ai_campus", "depends_on"] == ("ohio_gas",)
    assert cat.projects.loc["ndpr_sep", "excludes"] == ("ndpr_alt",)
    assert cat.projects.loc["fab_az", "earliest_start"] == "2026Q3"
    assert cat.projects.loc["shipyard", "notes"] == "quoted, with comma"
    assert cat.capacity.shape == (6, 4)
    assert cat.capacity.loc["ohio_gas", "firm_power"] == pytest.approx(9.2)
    assert cat.capacity.loc["ohio_gas", "naval_hulls"] == 0.0
    assert cat.capacity_matrix().dtype == np.float64
    sub = cat.subset(["ai_campus", "fab_az"])
    assert sub.project_ids == ["ai_campus", "fab_az"]
    assert sub.projects.loc["ai_campus", "depends_on"] == ()


def test_chokepoint_ranges_read_blank_as_the_point(catalog_copy: Path) -> None:
    assert np.array_equal(load_catalog(GOOD).chokepoint_range("weight")[0], [1.0, 1.5, 1.2, 0.8])
    for line, column, value in ((2, "weight_low", "0.5"), (3, "weight_high", "1.5")):
        set_new_cell(C, line, column, value)(catalog_copy)
    set_new_cell(C, 4, "us_gap_high", "2e4")(catalog_copy)
    cat = load_catalog(catalog_copy)
    low, high = cat.chokepoint_range("weight")
    assert low.tolist() == [0.5, 1.5, 1.2, 0.8] and high.tolist() == [1.0, 1.5, 1.2, 0.8]
    low, high = cat.chokepoint_range("us_gap")
    assert low.tolist() == [30, 1e5, 1e4, 5] and high.tolist() == [30, 1e5, 2e4, 5]


def test_good_fixture_cli_summary() -> None:
    result, out = invoke(str(GOOD))
    assert result.exit_code == 0, out
    assert "catalog OK" in out
    assert "4 chokepoints" in out and "6 capacity pairs" in out
    assert "$33.3B" in out  # the committed Ohio gas plant


def test_fnv1a_and_entities() -> None:
    # published FNV-1a 32-bit test vectors
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968
    assert project_entity("a") == 0x80000000 | (0xE40C292C & 0x7FFFFFFF)
    assert chokepoint_entity("a") == 0x40000000 | (0xE40C292C & 0x3FFFFFFF)
    a, b = COLLIDING
    assert a != b and project_entity(a) == project_entity(b)


def test_schema_matches_contract() -> None:
    """The schema's columns are exactly those of docs/catalog-columns.md, in order."""
    doc = (Path(__file__).parents[1] / "docs" / "catalog-columns.md").read_text()
    sections = doc.split("\n## ")[1:]
    for section in sections:
        file = section.split()[0]
        names = [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]
        assert SCHEMA[file].names == tuple(names), file


# ---------------------------------------------------------------------------------------------
# Malformed catalogs


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_malformed_catalog_exits_2_naming_file_row_column(name: str, catalog_copy: Path) -> None:
    mutate, file, row, column, phrase = MUTATIONS[name]
    mutate(catalog_copy)
    path = str(catalog_copy / file)
    problems = validate_catalog(catalog_copy)
    assert any(
        p.file == path and p.row == row and p.column == column and phrase in p.message
        for p in problems
    ), problems
    with pytest.raises(CatalogError) as info:
        load_catalog(catalog_copy)
    assert info.value.problems == problems

    result, out = invoke(str(catalog_copy))
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    assert isinstance(result.exception, SystemExit)
    assert "line numbers in the CSV file" in out
    assert any(
        path in line and f"row {row}," in line and f"column '{column}'" in line and phrase in line
        for line in out.splitlines()
    ), out


def test_every_problem_reported_at_once(catalog_copy: Path) -> None:
    names = [
        "zero_cost",
        "bad_boolean",
        "dangling_capacity_chokepoint",
        "p90_below_median",
        "dependency_cycle",
        "unknown_column",
    ]
    for name in names:
        MUTATIONS[name][0](catalog_copy)
    problems = validate_catalog(catalog_copy)
    for name in names:
        _, file, row, column, _ = MUTATIONS[name]
        assert any(
            (p.file, p.row, p.column) == (str(catalog_copy / file), row, column) for p in problems
        ), name
    result, out = invoke(str(catalog_copy))
    assert result.exit_code == 2
    assert f"{len(problems)} problem(s)" in out


def test_cycle_is_named_once(catalog_copy: Path) -> None:
    set_cell(P, 2, "depends_on", "shipyard")(catalog_copy)
    set_cell(P, 7, "depends_on", "ai_campus")(catalog_copy)
    cycles = [p for p in validate_catalog(catalog_copy) if "cycle" in p.message]
    assert len(cycles) == 1
    assert "ohio_gas -> shipyard -> ai_campus -> ohio_gas" in cycles[0].message


@pytest.mark.parametrize("file", [P, C, K])
def test_missing_file(catalog_copy: Path, file: str) -> None:
    (catalog_copy / file).unlink()
    problems = validate_catalog(catalog_copy)
    assert [p.file for p in problems] == [str(catalog_copy / file)]
    assert "missing file" in problems[0].message
    result, out = invoke(str(catalog_copy))
    assert result.exit_code == 2 and str(catalog_copy / file) in out


def test_empty_projects_table(catalog_copy: Path) -> None:
    write_rows(catalog_copy, P, [read_rows(catalog_copy, P)[0]])
    problems = validate_catalog(catalog_copy)
    assert any(p.file.endswith(P) and p.row == 2 and "no data rows" in p.message for p in problems)
    assert invoke(str(catalog_copy))[0].exit_code == 2


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\x01\x02binary\xff\xfe",
        "id,name\nnaïve,x\n".encode("latin-1"),
        "id,name\n".encode("utf-16"),
        b'id,name\n"unterminated,x\n',
        b"\r\r\r",
        b"a,b\rc,d",
    ],
    ids=["empty", "binary", "latin1", "utf16", "unterminated_quote", "bare_cr", "cr_lines"],
)
def test_unreadable_files_are_problems(catalog_copy: Path, content: bytes) -> None:
    (catalog_copy / P).write_bytes(content)
    problems = validate_catalog(catalog_copy)
    assert problems and all(isinstance(p, Problem) for p in problems)
    assert any(p.file == str(catalog_copy / P) for p in problems)
    with pytest.raises(CatalogError):
        load_catalog(catalog_copy)


def test_extra_field_on_a_line(catalog_copy: Path) -> None:
    rows = read_rows(catalog_copy, C)
    rows[2].append("stray")
    write_rows(catalog_copy, C, rows)
    problems = validate_catalog(catalog_copy)
    assert [(p.row, "fields" in p.message) for p in problems] == [(3, True)]


def test_not_a_folder(tmp_path: Path) -> None:
    assert "does not exist" in validate_catalog(tmp_path / "nope")[0].message
    (tmp_path / "file.csv").write_text("x")
    assert "is a file" in validate_catalog(tmp_path / "file.csv")[0].message
    result, out = invoke(str(tmp_path / "nope"))
    assert result.exit_code == 2 and "nope" in out


def test_config_path_validates_config_then_its_catalog(catalog_copy: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"catalog: {catalog_copy}\n")
    result, out = invoke(str(cfg))
    assert result.exit_code == 0, out
    assert "is valid" in out and "catalog OK" in out
    MUTATIONS["zero_cost"][0](catalog_copy)
    result, out = invoke("--config", str(cfg))
    assert result.exit_code == 2 and "base_cost_usd" in out
    cfg.write_text("catalog: null\nmodel:\n  budgett_usd: 1\n")
    result, out = invoke(str(cfg))
    assert result.exit_code == 2 and "model.budgett_usd" in out and "Traceback" not in out


def test_subprocess_entry_point(catalog_copy: Path) -> None:
    exe = Path(sys.executable).parent / "portopt"
    if not exe.exists():
        pytest.skip(f"no console script at {exe}; install portopt into this environment")
    MUTATIONS["dependency_cycle"][0](catalog_copy)
    proc = subprocess.run(
        [str(exe), "validate", str(catalog_copy)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"{catalog_copy / P}, row 2, column 'depends_on'" in proc.stderr


# ---------------------------------------------------------------------------------------------
# Generated malformed tables: only validation problems come out, never another exception

GOOD_ROWS = {file: read_rows(GOOD, file) for file in SCHEMA}
FILE_NAMES = list(SCHEMA)

# cells that often break parsers: non-finite and huge numbers, near-miss labels, list syntax
# fmt: off
ODD_CELLS = [
    "", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e308", "9" * 30, "9" * 5000, "-0",
    "true", "FALSE", "2026Q5", "2026Q1", ";", "a;b", ";;", "ohio_gas", "fab_az;ohio_gas", "0x10",
    "1_000", " 1 ", "committed", "US", "\n", '"',
]
# fmt: on
cell_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    st.sampled_from(ODD_CELLS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
)

operation = st.one_of(
    st.tuples(
        st.just("cell"), st.integers(0, 2), st.integers(0, 50), st.integers(0, 50), cell_text
    ),
    st.tuples(st.just("drop_col"), st.integers(0, 2), st.integers(0, 50)),
    st.tuples(st.just("add_col"), st.integers(0, 2), cell_text),
    st.tuples(st.just("shuffle"), st.integers(0, 2), st.integers(0, 2**32)),
    st.tuples(st.just("dup_row"), st.integers(0, 2), st.integers(0, 50)),
    st.tuples(st.just("del_row"), st.integers(0, 2), st.integers(0, 50)),
    st.tuples(st.just("ragged"), st.integers(0, 2), st.integers(0, 50), st.integers(-5, 5)),
    st.tuples(st.just("raw"), st.integers(0, 2), st.binary(max_size=64)),
    st.tuples(st.just("latin1"), st.integers(0, 2)),
    st.tuples(st.just("delete"), st.integers(0, 2)),
)


def corrupt(folder: Path, ops: list[tuple]) -> None:
    """Apply generated operations to the good tables and write them to ``folder``."""
    tables = {file: [list(r) for r in rows] for file, rows in GOOD_ROWS.items()}
    raw: dict[str, bytes | None] = {}
    for op in ops:
        kind, file = op[0], FILE_NAMES[op[1]]
        rows = tables[file]
        data = rows[1:]
        if kind == "cell" and rows:
            r = rows[op[2] % len(rows)]
            if r:
                r[op[3] % len(r)] = op[4]
        elif kind == "drop_col" and rows and rows[0]:
            k = op[2] % len(rows[0])
            tables[file] = [r[:k] + r[k + 1 :] for r in rows]
        elif kind == "add_col":
            tables[file] = [[*r, op[2]] for r in rows]
        elif kind == "shuffle":
            random.Random(op[2]).shuffle(data)
            tables[file] = rows[:1] + data
        elif kind == "dup_row" and data:
            data.insert(op[2] % len(data), list(data[op[2] % len(data)]))
            tables[file] = rows[:1] + data
        elif kind == "del_row" and rows:
            del rows[op[2] % len(rows)]
        elif kind == "ragged" and rows:
            r = rows[op[2] % len(rows)]
            rows[op[2] % len(rows)] = r[: len(r) + op[3]] if op[3] < 0 else r + ["x"] * op[3]
        elif kind == "raw":
            raw[file] = op[2]
        elif kind == "latin1":
            raw[file] = "id,name\ncafé,é\n".encode("latin-1")
        elif kind == "delete":
            raw[file] = None
    for file, rows in tables.items():
        if file in raw:
            if raw[file] is not None:
                (folder / file).write_bytes(raw[file])
        else:
            write_rows(folder, file, rows)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=4))
def test_generated_malformed_tables_give_only_problems(ops: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corrupt(folder, ops)
        problems = validate_catalog(folder)
        assert all(isinstance(p, Problem) and p.message for p in problems)
        if problems:
            with pytest.raises(CatalogError) as info:
                load_catalog(folder)
            assert info.value.problems == problems
        else:  # e.g. shuffled rows: still a good catalog, and it must load typed
            cat = load_catalog(folder)
            assert cat.capacity.shape == (len(cat.projects), len(cat.chokepoints))
            required = [c.name for c in PROJECTS.columns if not c.optional]
            numbers = cat.projects[required[1:]].select_dtypes("number").to_numpy()
            assert np.isfinite(numbers).all()  # an optional blank is NaN: "the default"


# ---------------------------------------------------------------------------------------------
# The bundled catalog


def test_bundled_catalog() -> None:
    assert (bundled_path() / "projects.csv").exists(), f"no bundled catalog in {bundled_path()}"
    problems = validate_catalog()
    assert problems == [], "\n".join(map(str, problems))
    cat = load_catalog()
    assert len(cat.projects) >= 40
    assert set(cat.projects["sector"]) == set(SECTORS)
    assert len(cat.chokepoints) >= 12
    for frame in (cat.projects, cat.chokepoints):
        assert (frame["source"].str.strip() != "").all()
        assert frame["basis"].isin(["fact", "estimate", "illustrative"]).all()
    committed = cat.projects[cat.projects["status"] == "committed"]
    assert len(committed) >= 3
    result, out = invoke()
    assert result.exit_code == 0, out
    assert "catalog OK" in out


def test_bundled_ranges_say_where_they_come_from() -> None:
    """Every bundled range is named in its row's notes: a gap range beside the figures it comes
    from, a weight range as a policy choice (the weights are judgements)."""
    cat = load_catalog()
    for column, named in (("us_gap", "Gap range {}-{}"), ("weight", "Weight range {}-{} [policy")):
        low, high = cat.chokepoint_range(column)
        ranged = low < high
        assert ranged.any(), column
        for cid, lo, hi in zip(cat.chokepoint_ids, low, high, strict=True):
            if lo < hi:
                assert named.format(f"{lo:,g}", f"{hi:,g}") in cat.chokepoints.at[cid, "notes"], cid


def test_regions_table() -> None:
    """regions.csv: unique ids, each with a name and a source; the ids are the known regions."""
    with open(bundled_path() / "regions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) and "OTHER" in ids
    assert all(r["name"].strip() and r["source"].strip() for r in rows)
    assert grid_regions() == tuple(ids)
    assert PROJECTS["grid_region"].choices == tuple(ids)


def max_fund_absorption(cat: Catalog) -> tuple[float, set[str]]:
    """The most fund money any feasible selection can take, and that selection.

    .. math:: \\max_{S\\ \\mathrm{feasible}} \\sum_{i \\in S} \\mathrm{hi}_i K_i

    Feasible: every committed project in S, every dependency of a member in S, no two members
    excluding each other. Only projects named in an exclusion ever need dropping (all amounts
    are positive), so every subset of them that is kept is enumerated, the rest always kept, and
    members whose dependencies are gone dropped until none is left.
    """
    p = cat.projects
    value = p["max_fund_share"] * p["base_cost_usd"]
    named = {i for i in p.index if p.loc[i, "excludes"]}
    contested = sorted(named | {j for v in p["excludes"] for j in v})
    assert len(contested) <= 20, "too many exclusions to enumerate"
    best, chosen = -1.0, set()
    for mask in range(1 << len(contested)):
        kept = {j for k, j in enumerate(contested) if mask >> k & 1}
        members = {i for i in p.index if i not in contested} | kept
        changed = True
        while changed:
            missing = {i for i in members if not set(p.loc[i, "depends_on"]) <= members}
            members -= missing
            changed = bool(missing)
        if any(j in members for i in members for j in p.loc[i, "excludes"]):
            continue
        if not set(p.index[p["status"] == "committed"]) <= members:
            continue
        total = float(value[list(members)].sum())
        if total > best:
            best, chosen = total, members
    return best, chosen


def test_bundled_catalog_absorbs_the_fund() -> None:
    """At maximum fund shares, after exclusions, the catalog can take the whole $550B."""
    cat = load_catalog()
    best, chosen = max_fund_absorption(cat)
    p = cat.projects
    assert best >= 550e9, f"the catalog can absorb only ${best / 1e9:.1f}B of fund money"
    for i in chosen:  # the selection found is feasible
        assert set(p.loc[i, "depends_on"]) <= chosen
        assert not set(p.loc[i, "excludes"]) & chosen
    everything = float((p["max_fund_share"] * p["base_cost_usd"]).sum())
    assert best < everything  # the exclusions bind: the enumeration chose
    assert (p["max_fund_share"] + p["senior_debt_share"].fillna(0) <= 1 + 1e-12).all()


def test_absorption_enumeration_on_a_hand_case(catalog_copy: Path) -> None:
    """The good fixture by hand: ohio_gas 0.5 x 33.3B (committed) + ai_campus 0.8 x 20B + fab_az
    + shipyard + the larger of the two excluding ndpr rows."""
    cat = load_catalog(catalog_copy)
    p = cat.projects
    value = p["max_fund_share"] * p["base_cost_usd"]
    exclusive = max(value["ndpr_sep"], value["ndpr_alt"])
    expected = value[["ohio_gas", "ai_campus", "fab_az", "shipyard"]].sum() + exclusive
    best, chosen = max_fund_absorption(cat)
    assert best == pytest.approx(expected)
    assert len({"ndpr_sep", "ndpr_alt"} & chosen) == 1


def test_every_sector_has_three_candidates() -> None:
    p = load_catalog().projects
    candidates = p[p["status"] == "candidate"].groupby("sector").size()
    assert all(candidates.get(s, 0) >= 3 for s in SECTORS), candidates.to_dict()


def test_bundled_credits_and_floors_follow_the_sources() -> None:
    """Credits name their basis; only MP's 10X plant carries a DoD floor, with its 10-year term."""
    p = load_catalog().projects
    credited = p[p["credit"].isin(["itc", "ptc"])]
    assert len(credited) > 0 and (credited["credit_basis"] != "").all()
    ptc = credited[credited["credit"] == "ptc"]
    assert (ptc["credit_units_per_year"] > 0).all() and (ptc["credit_years"] > 0).all()
    dod = p[p["offtake_guarantor"].str.contains("DoD")]
    assert list(dod.index) == ["mp_materials_10x_magnets"]
    assert dod["offtake_years"].iloc[0] == 10
    ndpr = p[(p["price_factor"] == "ndpr") & (p["basis"] == "illustrative")]
    assert (ndpr["offtake_floor"] == 0).all()


def test_bundled_illustrative_capex_is_at_most_a_tenth() -> None:
    """Illustrative analogues carry at most 10% of the catalog's base cost (issue 20: the rest
    are named projects whose figures come from their sources, or estimates from them)."""
    p = load_catalog().projects
    share = p.loc[p["basis"] == "illustrative", "base_cost_usd"].sum() / p["base_cost_usd"].sum()
    assert 0 < share <= 0.10, f"illustrative rows carry {share:.1%} of the catalog's capex"


def test_bundled_rows_are_checked_and_indexed() -> None:
    """Every bundled row says when it was last checked against its sources, and carries its CPI
    indexation with the reasoning in its notes."""
    p = load_catalog().projects
    assert (p["checked"] != "").all(), list(p.index[p["checked"] == ""])
    assert p["indexation"].between(0, 1).all(), list(p.index[~p["indexation"].between(0, 1)])
    assert p["notes"].str.contains("Indexation").all()
    merchant = p["offtake_share"] == 0
    assert (p.loc[merchant, "indexation"] == 1).all()


def test_checked_and_indexation_are_validated(catalog_copy: Path) -> None:
    """Both columns are optional (the good fixture lacks them); a bad cell names its column."""
    assert load_catalog(catalog_copy).projects["indexation"].isna().all()
    set_new_cell(P, 3, "checked", "7 Dec 2026")(catalog_copy)
    set_new_cell(P, 4, "indexation", "1.5")(catalog_copy)
    problems = {(p.row, p.column): p.message for p in validate_catalog(catalog_copy)}
    assert "2026-12-07" in problems[(3, "checked")]
    assert "[0, 1]" in problems[(4, "indexation")]


def test_quantum_coverage_is_sourced_or_labelled_illustrative() -> None:
    """No sourced chokepoint quantifies a quantum gap: every quantum row's coverage is marked
    illustrative, in capacity.csv and in the row's notes (issue 20, item 4)."""
    cat = load_catalog()
    p, k = cat.projects, cat.chokepoints
    with open(bundled_path() / "capacity.csv", newline="", encoding="utf-8") as fh:
        pairs = [r for r in csv.DictReader(fh) if p.loc[r["project_id"], "sector"] == "quantum"]
    assert pairs
    for r in pairs:
        if k.loc[r["chokepoint_id"], "basis"] == "illustrative" or r["basis"] == "illustrative":
            assert "illustrative" in p.loc[r["project_id"], "notes"].lower(), r["project_id"]


def test_tranche2_commitments_file_is_tranche1_plus_tranche2() -> None:
    """The other reading of the commitments (issue 20): tranche 1 plus the five tranche-2
    candidates at 0.8 of their announced sizes, $94.4B; every dependency of a committed project is
    committed too, and each tranche-2 row names its source."""
    from portopt.config import load_config
    from portopt.plan import load_commitments

    root = Path(__file__).parents[1]
    config = load_config(root / "configs" / "default.yaml")
    cat = load_catalog()
    first = load_commitments(None, cat, config)
    both = load_commitments(bundled_path() / "commitments_tranche2.csv", cat, config)
    assert {c.project for c in first} < {c.project for c in both}
    assert sum(c.amount_usd for c in both) == pytest.approx(94.4e9)
    assert sum(c.amount_usd for c in both) - sum(c.amount_usd for c in first) == pytest.approx(
        0.8 * 73e9
    )
    made = {c.project for c in both}
    for c in both:
        assert set(cat.projects.loc[c.project, "depends_on"]) <= made, c.project
    with open(bundled_path() / "commitments_tranche2.csv", newline="", encoding="utf-8") as fh:
        assert all(r["source"].strip() for r in csv.DictReader(fh))


def test_bundled_fuel_table_names_bundled_gas_plants() -> None:
    """portopt/data/fuel.csv is keyed by project id and an unknown id is ignored by the engine,
    so a renamed or removed row must leave it too; every bundled gas-fired plant is in it."""
    import pandas as pd

    p = load_catalog().projects
    fuel = pd.read_csv(bundled_path() / "fuel.csv", comment="#", dtype={"project_id": str})
    listed = set(fuel["project_id"])
    assert listed <= set(p.index), sorted(listed - set(p.index))
    gas = p[(p["firm_gen_mw"] > 0) & p["name"].str.contains("gas|CCGT", case=False)]
    assert set(gas.index) <= listed, sorted(set(gas.index) - listed)
