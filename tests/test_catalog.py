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


# rows of the good fixture: projects 2 ohio_gas (committed), 3 ai_campus (depends on ohio_gas),
# 4 fab_az, 5 ndpr_sep, 6 ndpr_alt, 7 shipyard; chokepoints 2 firm_power .. 5 naval_hulls;
# capacity 2..7, one pair per project.
MUTATIONS: dict[str, Case] = {
    "non_numeric_cost": cell(P, 4, "base_cost_usd", "abc", "> 0"),
    "negative_cost": cell(P, 3, "base_cost_usd", "-2e9", "> 0"),
    "zero_cost": cell(P, 7, "base_cost_usd", "0", "> 0"),
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
    "capacity_zero": cell(K, 3, "capacity", "0", "> 0"),
    "duplicate_project_id": cell(P, 7, "id", "fab_az", "duplicate"),
    "duplicate_chokepoint_id": cell(C, 5, "id", "firm_power", "duplicate"),
    "duplicate_capacity_pair": (append_copies(K, 2, [None]), K, 8, "project_id", "duplicate"),
    "entity_collision": (append_copies(P, 7, list(COLLIDING)), P, 9, "id", "entity"),
    "missing_column": (drop_column(P, "spread"), P, 1, "spread", "missing column"),
    "unknown_column": (add_column(C, "colour"), C, 1, "colour", "unknown column"),
    "misspelt_column": (add_column(K, "capacty"), K, 1, "capacty", "did you mean 'capacity'"),
    "short_line": (truncate_line(P, 4, 20), P, 4, "delay_median_quarters", "fields"),
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
