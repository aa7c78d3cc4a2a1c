"""Decisions already made: the commitments file (project, quarter, amount).

One row per committed project: ``project`` (a catalog id), ``quarter`` (the round it was
proposed and funded in, ``YYYYQn``) and ``amount_usd`` (the fund's dollars); any other column
(a ``source``, a note) is kept for the reader and ignored. The bundled file
(``portopt/data/commitments.csv``) holds the first tranche of 17 February 2026; it is the
default for the bundled catalog. Another catalog without a commitments file commits its rows
marked ``committed`` (:func:`catalog_commitments`). ``portopt plan
--commitments FILE`` fixes these decisions and re-optimises only what is still open: every
round after the latest committed one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from portopt.catalog import BUNDLED, ROW_CONVENTION, Catalog
from portopt.config import RunConfig, quarter_index
from portopt.errors import InputError, Problem
from portopt.plan.calendar import deadline_quarter

BUNDLED_COMMITMENTS = "<bundled commitments>"
COLUMNS = ("project", "quarter", "amount_usd")


class CommitmentsError(InputError):
    """The commitments file is malformed or contradicts the catalog or the plan."""


@dataclass(frozen=True)
class Commitment:
    """One decision made: ``project`` funded with ``amount_usd`` in round ``quarter``."""

    project: str
    quarter: str
    amount_usd: float


FRAME = "commitments (DataFrame)"
"""How problems name a commitments table given as a DataFrame."""


def bundled_path() -> Path:
    return Path(str(resources.files("portopt") / "data" / "commitments.csv"))


def load_commitments(
    path: str | Path | pd.DataFrame | None, catalog: Catalog, config: RunConfig
) -> list[Commitment]:
    """Read and check the commitments file (``path``; the bundled first tranche when None; a
    DataFrame of the file's columns, named :data:`FRAME` in problems, rows numbered as in a
    file).

    Each problem names the file, the row (the line number, the header being line 1) and the
    column: an unknown project, a project listed twice, a malformed quarter or one before
    ``scenarios.start`` or after the plan's deadline, an amount that is not a positive number or
    exceeds the project's base cost. Raises :class:`CommitmentsError` listing them all.
    """
    if path is None and catalog.source != BUNDLED:
        return catalog_commitments(catalog, config)
    if isinstance(path, pd.DataFrame):
        return check_commitments(path.reset_index(drop=True).astype(str), FRAME, catalog, config)
    name = BUNDLED_COMMITMENTS if path is None else str(path)
    file = bundled_path() if path is None else Path(path)
    if not file.is_file():
        raise CommitmentsError(
            [Problem(name, None, None, "no such file (plan.commitments or --commitments)")],
            "commitments file not found",
        )
    try:
        table = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CommitmentsError(
            [Problem(name, None, None, f"not a readable CSV file ({exc})")], "bad commitments file"
        ) from None
    return check_commitments(table, name, catalog, config)


def check_commitments(
    table: pd.DataFrame, name: str, catalog: Catalog, config: RunConfig
) -> list[Commitment]:
    """The commitments of ``table`` (read from ``name``; every cell a string), checked as
    :func:`load_commitments` says."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise CommitmentsError(
            [
                Problem(name, 1, c, "missing column (expected project, quarter, amount_usd)")
                for c in missing
            ],
            "bad commitments file",
        )
    problems: list[Problem] = []
    out: list[Commitment] = []
    seen: dict[str, int] = {}
    start, deadline_q = config.scenarios.start, deadline_quarter(config.plan)
    cost = catalog.projects["base_cost_usd"].astype(float)
    for k, row in table.iterrows():
        line = int(k) + 2
        pid, quarter, amount = (str(row[c]).strip() for c in COLUMNS)
        ok = True
        if pid not in catalog.projects.index:
            problems.append(Problem(name, line, "project", f"'{pid}' is not a catalog project"))
            ok = False
        elif pid in seen:
            problems.append(
                Problem(
                    name, line, "project", f"'{pid}' is committed twice (also line {seen[pid]})"
                )
            )
            ok = False
        else:
            seen[pid] = line
        try:
            offset = quarter_index(quarter, start)
        except ValueError:
            problems.append(
                Problem(name, line, "quarter", f"'{quarter}' is not a quarter like 2026Q1")
            )
            ok = False
        else:
            if offset < 0:
                problems.append(
                    Problem(name, line, "quarter", f"{quarter} is before scenarios.start {start}")
                )
                ok = False
            elif quarter_index(quarter, deadline_q) > 0:
                problems.append(
                    Problem(
                        name,
                        line,
                        "quarter",
                        f"{quarter} is after the deadline {config.plan.deadline} (plan.deadline)",
                    )
                )
                ok = False
        try:
            usd = float(amount)
        except ValueError:
            usd = math.nan
        if not (math.isfinite(usd) and usd > 0.0):
            problems.append(
                Problem(name, line, "amount_usd", f"'{amount}' is not a positive number of dollars")
            )
            ok = False
        elif pid in catalog.projects.index and usd > cost[pid] * (1 + 1e-12):
            problems.append(
                Problem(
                    name,
                    line,
                    "amount_usd",
                    f"{usd:,.0f} exceeds the project's base cost {cost[pid]:,.0f}",
                )
            )
            ok = False
        if ok:
            out.append(Commitment(pid, quarter, usd))
    if problems:
        raise CommitmentsError(
            problems,
            f"{len(problems)} problem(s) in the commitments file {name} ({ROW_CONVENTION})",
        )
    return out


def catalog_commitments(catalog: Catalog, config: RunConfig) -> list[Commitment]:
    """Without a commitments file, a catalog other than the bundled one commits its rows marked
    ``committed``, in round ``scenarios.start``, at their maximum fund share."""
    pr = catalog.projects
    rows = pr[pr["status"].astype(str) == "committed"]
    return [
        Commitment(
            str(pid),
            config.scenarios.start,
            float(r["base_cost_usd"]) * float(r["max_fund_share"]),
        )
        for pid, r in rows.iterrows()
    ]


def write_commitments(commitments: list[Commitment], path: Path) -> None:
    """Write ``commitments`` in the file's format (what ``--commitments`` reads back)."""
    pd.DataFrame(
        [(c.project, c.quarter, format(c.amount_usd, ".17g")) for c in commitments],
        columns=list(COLUMNS),
    ).to_csv(path, index=False)
