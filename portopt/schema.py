"""The columns of every output file, and the one place their names are set.

An analyst joins portopt's files in pandas or DuckDB, so they share one vocabulary: a project
is ``project_id`` and a chokepoint ``chokepoint_id`` in every file, a plan's round is its own
``proposal_quarter`` column, money ends in ``_usd`` (plain dollars), a quarter offset ends in
``_q`` (quarters after ``scenarios.start``), and Japan's recovery is
``expected_recovery_ratio`` wherever it appears. docs/outputs.md describes each column;
tests/test_outputs.py holds the files, this module and that page to the same names.

The tables are built under the names the code uses for them (``id``, ``project``); the
writers rename them here (:func:`conform`, :func:`conform_metrics`), and a table with a column
this module does not declare is an internal error, so a new column cannot reach a file
undocumented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

PLAN_FILE = "plan.csv"
ALLOCATION_FILE = "allocation.csv"
COVERAGE_FILE = "coverage.csv"


@dataclass(frozen=True)
class TableSchema:
    """A CSV output: its ``columns`` in file order and the ``renames`` from the names the
    code builds it under."""

    columns: tuple[str, ...]
    renames: dict[str, str] = field(default_factory=dict)

    def built_columns(self) -> tuple[str, ...]:
        """:attr:`columns` under the names the code builds the table with (before ``renames``)."""
        back = {new: old for old, new in self.renames.items()}
        return tuple(back.get(c, c) for c in self.columns)


TABLES: dict[str, TableSchema] = {
    PLAN_FILE: TableSchema(
        (
            "project_id",
            "name",
            "sector",
            "basis",
            "status",
            "proposal_quarter",
            "funding_quarter",
            "construction_start",
            "build_quarters",
            "expected_completion",
            "fund_usd",
            "decline_prob",
            "expected_committed_usd",
            "expected_recovery_ratio",
            "p_recoup",
            "marginal_value",
            "reason",
        ),
        {"project": "project_id", "expected_recovery": "expected_recovery_ratio"},
    ),
    ALLOCATION_FILE: TableSchema(
        (
            "project_id",
            "name",
            "sector",
            "selected",
            "fund_usd",
            "fund_share",
            "expected_recovery_ratio",
            "p_recoup",
            "expected_online_share",
            "proposal_quarter",
            "funding_quarter",
            "construction_start",
            "decline_prob",
            "value_if_forced_in",
            "value_if_forced_out",
            "marginal_value",
            "reason",
            "within_mip_gap",
        ),
        {"id": "project_id"},
    ),
    COVERAGE_FILE: TableSchema(
        (
            "chokepoint_id",
            "name",
            "weight",
            "expected_coverage",
            "coverage_p10",
            "coverage_p50",
            "coverage_p90",
        ),
        {
            "id": "chokepoint_id",
            "p10": "coverage_p10",
            "p50": "coverage_p50",
            "p90": "coverage_p90",
        },
    ),
}
"""Every CSV a run or a plan writes. A one-shot run's allocation.csv has no plan columns
(``proposal_quarter`` … ``decline_prob``): :func:`conform` keeps the declared order of the
columns a table has."""

COMPARE_FILE = "compare.csv"
COMPARE_COLUMNS = (
    "project_id",
    "name",
    "change",
    "previous_status",
    "status",
    "previous_quarter",
    "proposal_quarter",
    "previous_fund_usd",
    "fund_usd",
    "delta_fund_usd",
    "why",
)
"""compare.csv (``portopt plan --compare RUN_DIR``, :mod:`portopt.compare`): one row per
project whose status, round or amount changed since the previous plan; written only when asked
for, so it is not among :data:`TABLES` (every plan's files)."""

PARQUET_COLUMNS: dict[str, tuple[str, ...]] = {
    "projects.parquet": (
        "scenario",
        "project_id",
        "proposal_quarter",
        "declined",
        "pv_draw",
        "pv_japan",
        "pv_us",
        "recoup_q",
        "complete_q",
        "online_share",
        "balance_end",
        "pv_floor",
    ),
    "chokepoints.parquet": ("scenario", "chokepoint_id", "stress"),
    "scenarios.parquet": ("scenario", "coercion_share", "coercion_episodes"),
}
"""The scenario tables' columns (:meth:`portopt.engine.scenario_set.ScenarioSet.to_parquet`)."""

QUARTER_OFFSET_MEANING = "quarters after scenarios.start (0 is its first quarter); null: never"
"""What a ``_q`` column of the scenario tables counts (Parquet field metadata ``meaning``)."""


def conform(table: pd.DataFrame, file: str) -> pd.DataFrame:
    """``table`` under ``file``'s column names, in its declared order; a file this module does
    not declare (a sweep's, e.g. frontier.csv) as it is. Raises ``ValueError`` (an internal
    error: the code and this schema disagree) for an undeclared column."""
    schema = TABLES.get(file)
    if schema is None:  # a sweep's table (frontier.csv): its own module names its columns
        return table
    renamed = table.rename(columns=schema.renames)
    extra = [c for c in renamed.columns if c not in schema.columns]
    if extra:
        raise ValueError(f"{file}: columns {extra} are not declared in portopt.schema")
    return renamed[[c for c in schema.columns if c in renamed.columns]]


METRICS_RENAMES_OF_A_PLAN = {
    "capital_committed_usd": "capital_proposed_usd",
    "capital_committed_share": "capital_proposed_share",
}
"""A plan's money figures at the top of metrics.json are what the plan proposes (Japan may
decline some); what it expects committed is ``plan.committed_expected_usd``. A one-shot run
funds its whole selection, so its ``capital_committed_usd`` keeps the name."""

_RECORD_RENAMES: dict[tuple[str, ...], dict[str, str]] = {
    ("plan", "rounds"): {"quarter": "proposal_quarter"},
    ("plan", "funding_years"): {
        "year": "fiscal_year",
        "committed_expected_usd": "disbursed_expected_usd",
    },
    ("plan", "commitments"): {"project": "project_id", "quarter": "proposal_quarter"},
    ("chokepoint_explanations",): {"id": "chokepoint_id"},
}
"""Lists of records in metrics.json, by path, and their renamed fields."""


def conform_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` (changed in place and returned) under the names metrics.json carries."""
    if "plan" in metrics:
        renamed = {METRICS_RENAMES_OF_A_PLAN.get(k, k): v for k, v in metrics.items()}
        metrics.clear()
        metrics.update(renamed)
    for path, renames in _RECORD_RENAMES.items():
        parent: Any = metrics
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue
        parent[path[-1]] = [
            {renames.get(k, k): v for k, v in record.items()} for record in parent[path[-1]]
        ]
    for item in metrics.get("chokepoint_explanations", []):
        item["rejected"] = [
            {("project_id" if k == "id" else k): v for k, v in r.items()}
            for r in item.get("rejected", [])
        ]
    return metrics
