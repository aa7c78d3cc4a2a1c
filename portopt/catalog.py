"""The candidate catalog: projects, chokepoints and each project's capacity in each chokepoint.

A catalog is a folder of three CSV files (``projects.csv``, ``chokepoints.csv``,
``capacity.csv``); the bundled one is ``portopt/data/``. Columns: ``docs/catalog-columns.md``,
written down once here as :data:`SCHEMA`, which both types the tables and validates them.

:func:`validate_catalog` reports every problem of a folder at once and never raises;
:func:`load_catalog` validates, then returns the typed :class:`Catalog`. Rows are reported as
line numbers in the CSV file with the header on line 1, so the first data row is row 2, the row
number a spreadsheet shows.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.errors import CatalogError, Problem, did_you_mean
from portopt.vocabulary import FACTORS, PERMITTING_TRACKS, SECTORS, grid_regions

BUNDLED = "<bundled>"
ROW_CONVENTION = "rows are line numbers in the CSV file, the header being line 1"

FILES = ("projects.csv", "chokepoints.csv", "capacity.csv")


def bundled_path() -> Path:
    """The folder of the bundled catalog inside the installed package."""
    return Path(str(resources.files("portopt") / "data"))


# --------------------------------------------------------------------------------------------
# Philox entities (docs/scenario-model.md): a project's random draws depend only on its id.


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes of ``text``.

    .. math:: h_0 = \\mathtt{0x811c9dc5}, \\quad
              h_{i+1} = (h_i \\oplus b_i) \\cdot \\mathtt{0x01000193} \\bmod 2^{32}
    """
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def project_entity(project_id: str) -> int:
    """Philox entity of a project: ``0x80000000 | (fnv1a(id) & 0x7fffffff)``."""
    return 0x80000000 | (fnv1a32(project_id) & 0x7FFFFFFF)


def chokepoint_entity(chokepoint_id: str) -> int:
    """Philox entity of a chokepoint: ``0x40000000 | (fnv1a(id) & 0x3fffffff)``."""
    return 0x40000000 | (fnv1a32(chokepoint_id) & 0x3FFFFFFF)


# --------------------------------------------------------------------------------------------
# The column schema: docs/catalog-columns.md as data.

ID_PATTERN = re.compile(r"[a-z0-9_]+")
PROJECT_ID_PATTERN = re.compile(r"[a-z0-9_]+(~\d{4}Q[1-4])?", re.ASCII)
"""A project's id: as :data:`ID_PATTERN`, or a start option ``<id>~<quarter>`` of project
``<id>`` (docs/scenario-model.md, "Start options")."""
QUARTER_PATTERN = re.compile(r"(\d{4})Q([1-4])", re.ASCII)
QUARTER_YEARS = (1900, 2199)
"""The years a catalog quarter may name: a tool limit, not a fact (the engine simulates every
quarter from ``scenarios.start`` to each project's end; a typo'd 9999Q4 would ask for eight
thousand years)."""
DATE_PATTERN = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", re.ASCII)
"""An ISO date (``YYYY-MM-DD``): the ``checked`` column."""
STATUSES = ("committed", "candidate")
PRICE_FACTORS = (*FACTORS, "none")
BASES = ("fact", "estimate", "illustrative")
_STATE_CODES = (  # fifty states, DC and the inhabited territories
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ"
    " NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP"
)
US_STATES = tuple(_STATE_CODES.split())

_BOUND = r"(-?inf|-?[\d.]+(?:e[+-]?\d+)?)"
_INTERVAL = re.compile(rf"([\[(])\s*{_BOUND}\s*,\s*{_BOUND}\s*([\])])")
NUMBER_PATTERN = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_NON_FINITE = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Column:
    """One column of a catalog table: its type and the rule each of its cells must meet.

    ``kind`` is ``str``, ``float``, ``int``, ``bool``, ``quarter`` (``YYYYQn``, kept as a
    string) or ``ids`` (``;``-separated project ids, typed as a tuple). ``interval`` is the
    allowed range of a number in interval notation, e.g. ``"(0, 1]"``.
    """

    name: str
    kind: str
    interval: str = ""
    choices: tuple[str, ...] = ()
    required: bool = True
    pattern: re.Pattern[str] | None = None
    optional: bool = False
    """An optional column may be left out of the header; an empty cell (or a missing column)
    means "use the default that docs/catalog-columns.md gives", typed NaN for a number and ""
    for text. Older catalogs without the economics columns stay valid."""

    @cached_property
    def bounds(self) -> tuple[float, float, bool, bool]:
        """``(lo, hi, lo_open, hi_open)``; unbounded when ``interval`` is empty."""
        if not self.interval:
            return -math.inf, math.inf, True, True
        m = _INTERVAL.fullmatch(self.interval)
        assert m, f"bad interval {self.interval!r} in the schema"
        return float(m.group(2)), float(m.group(3)), m.group(1) == "(", m.group(4) == ")"

    def expected(self) -> str:
        """What a cell of this column must hold, in words."""
        if self.kind in ("float", "int"):
            noun = "a number" if self.kind == "float" else "a whole number"
            lo, hi, lo_open, _ = self.bounds
            if math.isinf(hi) and math.isinf(lo):
                return noun
            if math.isinf(hi):
                return f"{noun} {'>' if lo_open else '>='} {lo:g}"
            return f"{noun} in {self.interval}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "quarter":
            return "a quarter like 2026Q3"
        if self.kind == "ids":
            return "project ids separated by ';' (empty for none)"
        if self.pattern is ID_PATTERN:
            return "an id of lowercase letters, digits and '_'"
        if self.pattern is DATE_PATTERN:
            return "a date like 2026-12-07"
        if self.pattern is PROJECT_ID_PATTERN:
            return "an id of lowercase letters, digits and '_', or a start option <id>~<quarter>"
        if self.name == "state":
            return "a two-letter US state code such as TX, or US when the site is not chosen"
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return "some text" if self.required else "text or nothing"


@dataclass(frozen=True)
class Table:
    """One CSV file of a catalog and its columns in contract order."""

    file: str
    columns: tuple[Column, ...]

    def __getitem__(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _free(name: str) -> Column:
    return Column(name, "str", required=False)


def _basis() -> Column:
    return Column("basis", "str", choices=BASES)


def _opt(name: str, kind: str, interval: str = "", choices: tuple[str, ...] = ()) -> Column:
    """An optional column: blank or absent means the default of docs/catalog-columns.md."""
    return Column(name, kind, interval, choices, required=False, optional=True)


# Upper bounds of the numeric columns (the list at the top of docs/catalog-columns.md). Each sits
# far above any real project, so it refuses only mistakes, and far below float64 overflow: the
# model works in $B, where a $1e12 cost is 1e3, so its products with scenario draws stay finite.
MONEY = "1e12"  # USD (a $1T project or $1T a year: twice the whole fund)
QUARTERS_BUILD = "120"  # 30 years of construction (Vogtle 3 & 4 took ~15)
YEARS_LIFE = "100"  # operating life, years (nuclear 60-80); the engine runs each project to its end
MEGAWATTS = "1e6"  # 1,000 GW, about the whole US fleet
WORKERS = "1e6"  # a million construction workers on one site (US construction employs ~8M)
QUANTITY = "1e12"  # a gap, a capacity or credited units a year, in their own unit
CREDIT_RATE = "1e6"  # USD per credited unit (the bundled rates run to $94,000/t)

DEPRECIATION = ("macrs", "straight_line")
CREDITS = ("none", "itc", "ptc")
AMORTISATION = ("annuity", "level")
JBIC_FUNDING = ("usd_bonds", "yen_loans", "reserves")


PROJECTS = Table(
    "projects.csv",
    (
        Column("id", "str", pattern=PROJECT_ID_PATTERN),
        Column("name", "str"),
        Column("sector", "str", choices=SECTORS),
        Column("sponsor", "str"),
        _free("japanese_partners"),
        Column("state", "str", choices=(*US_STATES, "US")),
        Column("grid_region", "str", choices=grid_regions()),
        Column("status", "str", choices=STATUSES),
        Column("base_cost_usd", "float", f"(0, {MONEY}]"),
        Column("build_quarters", "int", f"[1, {QUARTERS_BUILD}]"),
        Column("earliest_start", "quarter"),
        Column("life_years", "int", f"[1, {YEARS_LIFE}]"),
        Column("revenue_usd_per_year", "float", f"[0, {MONEY}]"),
        Column("opex_share", "float", "[0, 1]"),
        Column("price_factor", "str", choices=PRICE_FACTORS),
        Column("price_beta", "float", "[-5, 5]"),
        Column("offtake_share", "float", "[0, 1]"),
        Column("offtake_floor", "float", "[0, 10]"),
        Column("overrun_median", "float", "[-0.5, 10]"),
        Column("overrun_p90", "float", "[-0.5, 20]"),  # also >= overrun_median
        Column("delay_median_quarters", "float", "[0, 80]"),
        Column("permitting", "str", choices=PERMITTING_TRACKS),
        Column("failure_prob", "float", "[0, 1]"),
        Column("workers_per_year", "float", f"[0, {WORKERS}]"),
        Column("japan_content", "float", "[0, 1]"),
        Column("min_fund_share", "float", "[0, 1]"),
        Column("max_fund_share", "float", "(0, 1]"),
        Column("spread", "float", "[0, 0.2]"),
        Column("dc_load_mw", "float", f"[0, {MEGAWATTS}]"),
        Column("firm_gen_mw", "float", f"[0, {MEGAWATTS}]"),
        Column("depends_on", "ids", required=False),
        Column("excludes", "ids", required=False),
        # The economics columns (issue 10); each optional, blank = the documented default.
        _opt("depreciation", "str", choices=DEPRECIATION),
        _opt("tax_life_years", "float", "[1, 60]"),
        _opt("bonus_share", "float", "[0, 1]"),
        _opt("credit", "str", choices=CREDITS),
        _opt("credit_rate", "float", f"[0, {CREDIT_RATE}]"),
        _opt("credit_unit", "str"),
        _opt("credit_units_per_year", "float", f"[0, {QUANTITY}]"),
        _opt("credit_years", "float", "[0, 60]"),
        _opt("credit_basis", "str", choices=BASES),
        _opt("offtake_years", "float", "[0, 100]"),
        _opt("offtake_guarantor", "str"),
        _opt("senior_debt_share", "float", "[0, 0.95]"),
        _opt("senior_spread", "float", "[0, 0.2]"),
        _opt("senior_tenor_years", "float", "[1, 40]"),
        _opt("senior_amortisation", "str", choices=AMORTISATION),
        _opt("jbic_funding", "str", choices=JBIC_FUNDING),
        _opt("yen_share", "float", "[0, 1]"),
        # Nominal money, fuel and the fund's place in the stack (issue 23): blank = the default
        # of docs/catalog-columns.md (`indexation` is with issue 20's columns below).
        _opt("offtake_indexed", "float", "[0, 1]"),
        _opt("credit_indexed", "float", "[0, 1]"),
        _opt("fuel_share", "float", "[0, 1]"),
        _opt("stack_position", "str", choices=("pari_passu", "preferred", "senior")),
        _opt("stack_hurdle", "float", "[0, 0.5]"),
        _opt("fund_equity_share", "float", "(0, 1]"),
        # A start option of a project (issue 11): the id whose random numbers the row shares.
        Column("entity_id", "str", pattern=ID_PATTERN, required=False, optional=True),
        # Issue 20 / 23: the share of revenue and opex that follows CPI (blank = 1).
        _opt("indexation", "float", "[0, 1]"),
        # Issue 20: the date the row was last checked against its sources (provenance only; no
        # model reads it). `indexation` is declared once, with the economics columns above.
        Column("checked", "str", pattern=DATE_PATTERN, required=False, optional=True),
        Column("source", "str"),
        _basis(),
        _free("notes"),
    ),
)

CHOKEPOINTS = Table(
    "chokepoints.csv",
    (
        Column("id", "str", pattern=ID_PATTERN),
        Column("name", "str"),
        Column("unit", "str"),
        Column("us_gap", "float", f"(0, {QUANTITY}]"),
        # The ranges of uncertain priorities (issue 12); blank = the point value.
        _opt("us_gap_low", "float", f"(0, {QUANTITY}]"),
        _opt("us_gap_high", "float", f"(0, {QUANTITY}]"),
        Column("weight", "float", "(0, 100]"),  # relative weights: 1-5 in the bundled catalog
        _opt("weight_low", "float", "(0, 100]"),
        _opt("weight_high", "float", "(0, 100]"),
        Column("china_exposed", "bool"),
        Column("source", "str"),
        _basis(),
        _free("notes"),
    ),
)

RANGED = ("us_gap", "weight")
"""The chokepoint columns that may be given as ranges: ``<column>_low`` <= point <= ``_high``."""

CAPACITY = Table(
    "capacity.csv",
    (
        Column("project_id", "str"),
        Column("chokepoint_id", "str"),
        Column("capacity", "float", f"(0, {QUANTITY}]"),
        Column("source", "str"),
        _basis(),
    ),
)

SCHEMA: dict[str, Table] = {t.file: t for t in (PROJECTS, CHOKEPOINTS, CAPACITY)}
"""Every catalog file and its columns: the contract of ``docs/catalog-columns.md``."""


# --------------------------------------------------------------------------------------------
# The typed catalog.


@dataclass(frozen=True)
class Catalog:
    """Typed catalog tables.

    ``projects`` and ``chokepoints`` are indexed by id in file order; ``capacity`` is the dense
    (project × chokepoint) matrix in the chokepoints' units, zero where a pair is absent.
    ``depends_on`` and ``excludes`` hold tuples of ids; ``earliest_start`` is the quarter label.
    """

    projects: pd.DataFrame
    chokepoints: pd.DataFrame
    capacity: pd.DataFrame
    source: str

    @property
    def project_ids(self) -> list[str]:
        return list(self.projects.index)

    @property
    def chokepoint_ids(self) -> list[str]:
        return list(self.chokepoints.index)

    def chokepoint_range(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` float64 arrays of a column of :data:`RANGED` (``us_gap``, ``weight``).

        A blank bound, or a table without the ``<column>_low`` / ``_high`` columns, is the
        point value, so a catalog without ranges gives ``low == high == point`` exactly.
        """
        point = self.chokepoints[column].to_numpy(dtype=np.float64)

        def bound(name: str) -> np.ndarray:
            if name not in self.chokepoints:
                return point.copy()
            values = self.chokepoints[name].to_numpy(dtype=np.float64)
            return np.where(np.isnan(values), point, values)

        return bound(f"{column}_low"), bound(f"{column}_high")

    def capacity_matrix(self) -> np.ndarray:
        """Capacity as a float64 (projects, chokepoints) array."""
        return self.capacity.to_numpy(dtype=np.float64)

    def subset(self, ids: list[str]) -> Catalog:
        """The catalog restricted to ``ids`` (dependencies and exclusions outside are dropped)."""
        keep = set(ids)
        projects = self.projects.loc[[i for i in self.projects.index if i in keep]].copy()
        for col in ("depends_on", "excludes"):
            projects[col] = [tuple(j for j in v if j in keep) for v in projects[col]]
        return Catalog(projects, self.chokepoints, self.capacity.loc[projects.index], self.source)


def _split_ids(value: object) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    return tuple(part.strip() for part in str(value).split(";") if part.strip())


# --------------------------------------------------------------------------------------------
# Reading a CSV file into checked rows.


@dataclass
class _Row:
    line: int
    values: dict[str, Any]  # column -> typed value, only for cells that passed their rule
    raw: dict[str, str]  # column -> stripped text, for every column the header has


@dataclass
class _Parsed:
    """One table as read: its rows, or ``readable=False`` when the file could not be read."""

    table: Table
    path: str
    readable: bool = False
    rows: list[_Row] = field(default_factory=list)
    columns: tuple[str, ...] = ()  # schema columns the header has

    def complete(self, *names: str) -> Iterable[_Row]:
        """Rows in which every one of ``names`` holds a valid value."""
        return (r for r in self.rows if all(n in r.values for n in names))


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _typed(col: Column, text: str) -> tuple[Any, str | None]:
    """The typed value of one cell, or ``(None, what was wrong)``."""
    want = col.expected()
    if text == "":
        if col.kind == "ids":
            return (), None
        if col.optional and col.kind == "float":
            return math.nan, None
        if not col.required or col.optional:
            return "", None
        return None, f"empty; expected {want}"
    if col.kind in ("float", "int"):
        if _NON_FINITE.fullmatch(text):
            return None, f"NaN or infinity is not allowed; expected {want}"
        if col.kind == "int":
            if not _INTEGER.fullmatch(text):
                return None, f"expected {want}, got {_shown(text)}"
            # int() refuses more than 4300 digits; anything past 19 digits overflows int64 anyway
            number: float = int(text) if len(text) <= 20 else math.inf
            if abs(number) > _INT64_MAX:
                return None, f"{_shown(text)} is too large; expected {want}"
        else:
            if not NUMBER_PATTERN.fullmatch(text):
                return None, f"expected {want}, got {_shown(text)}"
            number = float(text)
            if not math.isfinite(number):
                return None, f"{_shown(text)} is too large to be finite; expected {want}"
        lo, hi, lo_open, hi_open = col.bounds
        if number < lo or number > hi or (lo_open and number == lo) or (hi_open and number == hi):
            return None, f"expected {want}, got {text}"
        return number, None
    if col.kind == "bool":
        if text.lower() not in ("true", "false"):
            return None, f"expected {want}, got {_shown(text)}"
        return text.lower() == "true", None
    if col.kind == "quarter":
        match = QUARTER_PATTERN.fullmatch(text)
        if not match:
            return None, f"expected {want}, got {_shown(text)}"
        first, last = QUARTER_YEARS
        if not first <= int(match.group(1)) <= last:
            return None, f"expected a quarter from {first}Q1 to {last}Q4, got {_shown(text)}"
        return text, None
    if col.kind == "ids":
        ids = _split_ids(text)
        bad = [i for i in ids if not PROJECT_ID_PATTERN.fullmatch(i)]
        if bad:
            return None, f"{_shown(bad[0])} is not an id; expected {want}"
        return ids, None
    if col.pattern is not None and not col.pattern.fullmatch(text):
        return None, f"expected {want}, got {_shown(text)}"
    if col.choices and text not in col.choices:
        return (
            None,
            f"unknown value {_shown(text)}{did_you_mean(text, col.choices)}; expected {want}",
        )
    return text, None


def csv_records(
    path: Path, name: str, problems: list[Problem]
) -> list[tuple[int, list[str]]] | None:
    """``(line, cells)`` for every non-blank record of a CSV file, or None when unreadable."""
    if not path.exists():
        problems.append(
            Problem(name, None, None, "missing file; a catalog folder holds " + ", ".join(FILES))
        )
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(name, None, None, f"cannot be read: {exc.strerror or exc}"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(
            Problem(
                name,
                line,
                None,
                f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as CSV UTF-8",
            )
        )
        return None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        problems.append(Problem(name, line, None, "holds NUL bytes: not a CSV text file"))
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    records = []
    end = 0
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            if any(c.strip() for c in cells):
                records.append((start, [c.strip() for c in cells]))
    except csv.Error as exc:
        problems.append(Problem(name, end + 1, None, f"not valid CSV: {exc}"))
    return records


def _read(folder: Path, table: Table, problems: list[Problem]) -> _Parsed:
    """Read one table, checking its header and every cell against the schema."""
    path = folder / table.file
    name = str(path)
    parsed = _Parsed(table, name)
    records = csv_records(path, name, problems)
    if records is None:
        return parsed
    if not records:
        problems.append(
            Problem(
                name,
                1,
                None,
                "empty file; expected a header line with the columns " + ", ".join(table.names),
            )
        )
        return parsed
    header_line, header = records[0]
    index: dict[str, int] = {}
    for i, col in enumerate(header):
        if col == "":
            problems.append(
                Problem(name, header_line, None, f"column {i + 1} of the header has no name")
            )
        elif col in index:
            problems.append(
                Problem(
                    name,
                    header_line,
                    col,
                    f"column '{col}' appears twice (columns {index[col] + 1} and {i + 1})",
                )
            )
        elif col not in table.names:
            near = difflib.get_close_matches(col, table.names, n=1)
            hint = f"did you mean '{near[0]}'?" if near else "remove it"
            problems.append(Problem(name, header_line, col, f"unknown column; {hint}"))
        else:
            index[col] = i
    for col in table.names:
        if col not in index and not table[col].optional:
            problems.append(
                Problem(name, header_line, col, f"missing column; expected {table[col].expected()}")
            )
    parsed.readable = True
    parsed.columns = tuple(c for c in table.names if c in index)
    for line, cells in records[1:]:
        row = _Row(line, {}, {c: cells[i] if i < len(cells) else "" for c, i in index.items()})
        for col in table.columns:
            if col.optional and col.name not in index:
                row.values[col.name], _ = _typed(col, "")
        parsed.rows.append(row)
        if len(cells) != len(header):
            where = header[len(cells)] if len(cells) < len(header) else None
            problems.append(
                Problem(
                    name,
                    line,
                    where,
                    f"the line has {len(cells)} fields but"
                    f" the header has {len(header)}; a missing or stray comma?",
                )
            )
            continue
        for col in parsed.columns:
            value, error = _typed(table[col], row.raw[col])
            if error is None:
                row.values[col] = value
            else:
                problems.append(Problem(name, line, col, error))
    if not parsed.rows and table is not CAPACITY:
        problems.append(Problem(name, header_line + 1, None, "no data rows; expected at least one"))
    return parsed


# --------------------------------------------------------------------------------------------
# Rules across rows, columns and files.

_Check = Callable[[_Parsed, _Parsed, _Parsed], Iterable[Problem]]


def _ids(parsed: _Parsed) -> set[str] | None:
    """Every non-empty id a table declares, valid or not (so one bad row does not cascade);
    None when the table or its ``id`` column is missing (references to it cannot be checked)."""
    if not parsed.readable or "id" not in parsed.columns:
        return None
    return {r.raw["id"] for r in parsed.rows if r.raw["id"]}


def _duplicates(parsed: _Parsed, key: Callable[[_Row], Any], what: str) -> Iterable[Problem]:
    first: dict[Any, int] = {}
    column = parsed.columns[0] if parsed.columns else None
    for r in parsed.rows:
        k = key(r)
        if k is None:
            continue
        if k in first:
            yield Problem(
                parsed.path,
                r.line,
                column,
                f"duplicate {what} (first on row {first[k]}); each must be unique",
            )
        else:
            first[k] = r.line


def _unique_ids(projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed) -> Iterable[Problem]:
    for parsed in (projects, chokepoints):
        yield from _duplicates(parsed, lambda r: r.raw.get("id") or None, "id")
    yield from _duplicates(
        capacity,
        lambda r: (
            (r.raw.get("project_id"), r.raw.get("chokepoint_id"))
            if r.raw.get("project_id") and r.raw.get("chokepoint_id")
            else None
        ),
        "(project_id, chokepoint_id) pair",
    )


def _entities(projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed) -> Iterable[Problem]:
    for parsed, entity in ((projects, project_entity), (chokepoints, chokepoint_entity)):
        seen: dict[int, tuple[str, int]] = {}
        for r in parsed.complete("id"):
            e = entity(r.values["id"])
            other = seen.setdefault(e, (r.values["id"], r.line))
            if other[0] != r.values["id"]:
                yield Problem(
                    parsed.path,
                    r.line,
                    "id",
                    f"'{r.values['id']}' has the same"
                    f" random-number entity 0x{e:08x} as '{other[0]}' (row {other[1]});"
                    " rename one of them (docs/scenario-model.md)",
                )


def _row_rules(projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed) -> Iterable[Problem]:
    for r in projects.complete("overrun_median", "overrun_p90"):
        if r.values["overrun_p90"] < r.values["overrun_median"]:
            yield Problem(
                projects.path,
                r.line,
                "overrun_p90",
                f"P90 {r.values['overrun_p90']:g}"
                f" is below the median {r.values['overrun_median']:g}; expected a"
                " number >= overrun_median",
            )
    for r in projects.complete("min_fund_share", "max_fund_share"):
        lo, hi = r.values["min_fund_share"], r.values["max_fund_share"]
        if lo > hi:
            yield Problem(
                projects.path,
                r.line,
                "min_fund_share",
                f"{lo:g} is above max_fund_share {hi:g}; expected min_fund_share <= max_fund_share",
            )
        elif r.values.get("status") == "committed" and lo != hi:
            yield Problem(
                projects.path,
                r.line,
                "min_fund_share",
                f"a committed project's fund"
                f" share is fixed, but min_fund_share {lo:g} differs from"
                f" max_fund_share {hi:g}; expected them equal",
            )


def _financing(projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed) -> Iterable[Problem]:
    """The fund and senior lenders cannot together finance more than the whole cost."""
    for r in projects.complete("max_fund_share", "senior_debt_share"):
        hi, debt = r.values["max_fund_share"], r.values["senior_debt_share"]
        if not math.isnan(debt) and hi + debt > 1 + 1e-12:  # shares summing to 1, plus an ulp
            yield Problem(
                projects.path,
                r.line,
                "senior_debt_share",
                f"{debt:g} plus max_fund_share {hi:g} is {hi + debt:g}, more than the whole cost;"
                " expected max_fund_share + senior_debt_share <= 1",
            )


def _credits(projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed) -> Iterable[Problem]:
    """A credit names its basis; an investment credit is a share of cost."""
    for r in projects.complete("credit", "credit_basis", "credit_rate"):
        credit = r.values["credit"]
        if credit not in ("itc", "ptc"):
            continue
        if r.values["credit_basis"] == "":
            yield Problem(
                projects.path,
                r.line,
                "credit_basis",
                f"empty, but credit is '{credit}'; expected fact, estimate or illustrative",
            )
        if credit == "itc" and r.values["credit_rate"] > 1:
            yield Problem(
                projects.path,
                r.line,
                "credit_rate",
                f"{r.values['credit_rate']:g} is more than the whole cost; an investment credit"
                " is a share of cost, expected a number in [0, 1]",
            )


def _ranges(projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed) -> Iterable[Problem]:
    """A range holds its point value: ``<column>_low <= <column> <= <column>_high``."""
    for point in RANGED:
        for bound, side, outside in ((f"{point}_low", "above", 1), (f"{point}_high", "below", -1)):
            for r in chokepoints.complete(point, bound):
                value, edge = r.values[point], r.values[bound]
                if outside * (edge - value) > 0:  # NaN (a blank bound) compares false
                    yield Problem(
                        chokepoints.path,
                        r.line,
                        bound,
                        f"{edge:g} is {side} {point} {value:g};"
                        f" expected {bound} {'<=' if outside > 0 else '>='} {point}",
                    )


def _references(projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed) -> Iterable[Problem]:
    ids = _ids(projects)
    for column in ("depends_on", "excludes"):
        for r in projects.complete("id", column):
            for other in r.values[column]:
                if other == r.values["id"]:
                    yield Problem(
                        projects.path,
                        r.line,
                        column,
                        f"project '{other}' lists itself; expected other projects' ids",
                    )
                elif ids is not None and other not in ids:
                    yield Problem(
                        projects.path,
                        r.line,
                        column,
                        f"unknown project '{other}'; expected an id in {projects.path}",
                    )
    for r in projects.complete("depends_on", "excludes"):
        for other in sorted(set(r.values["depends_on"]) & set(r.values["excludes"])):
            yield Problem(
                projects.path,
                r.line,
                "excludes",
                f"'{other}' is both required (depends_on) and excluded; expected one or the other",
            )
    for column, target in (("project_id", projects), ("chokepoint_id", chokepoints)):
        known = _ids(target)
        for r in capacity.rows:
            value = r.raw.get(column, "")
            if known is not None and value and value not in known:
                yield Problem(
                    capacity.path,
                    r.line,
                    column,
                    f"unknown id {_shown(value)}; expected an id in {target.path}",
                )


def _committed_exclusions(
    projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed
) -> Iterable[Problem]:
    """Two committed projects cannot exclude each other: no portfolio could hold both."""
    committed = {
        r.values["id"]: r.line
        for r in projects.complete("id", "status")
        if r.values["status"] == "committed"
    }
    seen: set[frozenset[str]] = set()
    for r in projects.complete("id", "status", "excludes"):
        if r.values["status"] != "committed":
            continue
        for other in r.values["excludes"]:
            line, pair = committed.get(other), frozenset((r.values["id"], other))
            if line is not None and pair not in seen:
                seen.add(pair)
                yield Problem(
                    projects.path,
                    r.line,
                    "excludes",
                    f"'{r.values['id']}' is committed and excludes '{other}', committed too (row"
                    f" {line}); no portfolio can hold both: mark one of them a candidate or drop"
                    " the exclusion",
                )


def _cycles(projects: _Parsed, chokepoints: _Parsed, capacity: _Parsed) -> Iterable[Problem]:
    """One problem per dependency cycle (strongly connected group), naming a cycle in full."""
    rows = {r.values["id"]: r for r in projects.complete("id", "depends_on")}
    graph = {
        i: [j for j in r.values["depends_on"] if j in rows and j != i] for i, r in rows.items()
    }
    for group in _strong_components(graph):
        if len(group) < 2:
            continue
        first = min(group, key=lambda i: rows[i].line)
        named = " -> ".join(_cycle_through(first, graph, group))
        yield Problem(
            projects.path,
            rows[first].line,
            "depends_on",
            f"dependency cycle {named}; expected no project to depend on itself through others",
        )


def _strong_components(graph: dict[str, list[str]]) -> list[set[str]]:
    """Strongly connected components (Kosaraju, iterative: no recursion limit on long chains)."""
    order: list[str] = []
    seen: set[str] = set()
    for root in graph:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(graph[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                order.append(node)
                stack.pop()
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(graph[child])))
    reverse: dict[str, list[str]] = {i: [] for i in graph}
    for i, js in graph.items():
        for j in js:
            reverse[j].append(i)
    groups: list[set[str]] = []
    assigned: set[str] = set()
    for root in reversed(order):
        if root in assigned:
            continue
        group, todo = {root}, [root]
        assigned.add(root)
        while todo:
            for j in reverse[todo.pop()]:
                if j not in assigned:
                    assigned.add(j)
                    group.add(j)
                    todo.append(j)
        groups.append(group)
    return groups


def _cycle_through(start: str, graph: dict[str, list[str]], group: set[str]) -> list[str]:
    """The shortest cycle from ``start`` back to itself inside ``group`` (breadth first)."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for i in frontier:
            for j in graph[i]:
                if j == start:
                    path = [i]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if j in group and j not in parent:
                    parent[j] = i
                    nxt.append(j)
        frontier = nxt
    return [start, start]  # unreachable for a strongly connected group of two or more


_CHECKS: tuple[_Check, ...] = (
    _unique_ids,
    _committed_exclusions,
    _entities,
    _row_rules,
    _financing,
    _credits,
    _ranges,
    _references,
    _cycles,
)


def _check(path: str | Path | None) -> tuple[list[Problem], list[_Parsed]]:
    folder = bundled_path() if path is None else Path(path)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        return [
            Problem(
                str(folder), None, None, f"{what}; expected a folder holding " + ", ".join(FILES)
            )
        ], []
    problems: list[Problem] = []
    tables = [_read(folder, table, problems) for table in SCHEMA.values()]
    for check in _CHECKS:
        problems.extend(check(*tables))
    order = {t.file: k for k, t in enumerate(SCHEMA.values())}
    problems.sort(key=lambda p: (order.get(Path(p.file).name, -1), p.row or 0))
    return problems, tables


def validate_catalog(path: str | Path | None = None) -> list[Problem]:
    """Every problem of the catalog folder ``path`` (the bundled one when None), in file order.

    Never raises for a bad input: a missing file, a binary or non-UTF-8 file, ragged lines,
    wrong types, values outside their range, dangling or duplicate ids, dependency cycles,
    colliding random-number entities all come back as :class:`Problem` s. Each names the CSV
    file, the row (the line number in the file, the header being line 1) and the column.
    """
    return _check(path)[0]


def _frame(parsed: _Parsed) -> pd.DataFrame:
    """The typed DataFrame of a validated table, in schema column order."""
    data: dict[str, Any] = {}
    for col in parsed.table.columns:
        values = [r.values[col.name] for r in parsed.rows]
        if col.kind == "float":
            data[col.name] = np.asarray(values, dtype=np.float64)
        elif col.kind == "int":
            data[col.name] = np.asarray(values, dtype=np.int64)
        elif col.kind == "bool":
            data[col.name] = np.asarray(values, dtype=bool)
        elif col.kind == "ids":
            data[col.name] = pd.Series(values, dtype=object)
        else:
            data[col.name] = pd.Series(values, dtype=str)
    return pd.DataFrame(data)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Validate the catalog folder ``path`` (bundled when None) and return its typed tables.

    Columns are float64, int64, bool or str per :data:`SCHEMA`; ``depends_on`` and ``excludes``
    are tuples of ids; ``earliest_start`` stays the quarter label. The capacity matrix is
    dense: :math:`C_{ik}` is project *i*'s capacity in chokepoint *k*'s unit, 0 for an absent
    pair. Raises :class:`CatalogError` listing every problem when there is any.
    """
    problems, tables = _check(path)
    if problems:
        where = BUNDLED if path is None else str(path)
        raise CatalogError(
            problems, f"{len(problems)} problem(s) in the catalog {where} ({ROW_CONVENTION})"
        )
    projects, chokepoints, capacity_long = (_frame(t) for t in tables)
    projects = projects.set_index("id")
    chokepoints = chokepoints.set_index("id")
    capacity = pd.DataFrame(0.0, index=projects.index, columns=chokepoints.index)
    rows = capacity.index.get_indexer(capacity_long["project_id"])
    cols = capacity.columns.get_indexer(capacity_long["chokepoint_id"])
    matrix = capacity.to_numpy(copy=True)
    matrix[rows, cols] = capacity_long["capacity"].to_numpy()
    capacity = pd.DataFrame(matrix, index=projects.index, columns=chokepoints.index)
    return Catalog(projects, chokepoints, capacity, BUNDLED if path is None else str(path))
