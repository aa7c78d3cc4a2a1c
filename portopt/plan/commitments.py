"""Decisions already made: the commitments file (project, quarter, amount).

One row per committed project: ``project`` (a catalog id), ``quarter`` (the round it was
proposed and funded in, ``YYYYQn``) and ``amount_usd`` (the fund's dollars); any other column
(a ``source``, a note) is kept for the reader and ignored. The bundled file
(``portopt/data/commitments.csv``) holds the first tranche of 17 February 2026; it is the
default for the bundled catalog. Another catalog without a commitments file commits its rows
marked ``committed`` (:func:`catalog_commitments`), and is refused when it holds a project of
the bundled tranche that it does not mark committed (the tranche would silently become
candidates). ``portopt plan --commitments FILE`` fixes these decisions and re-optimises only
what is still open: every round after the latest committed one; ``--no-commitments`` plans
every project as a candidate.

The file is checked as a whole before any work (:func:`load_commitments`): each row on its own,
then the rows together against the catalog's links, the budget and the calendar, so a set of
decisions no plan can hold is named by its file, row and column, never by an infeasible model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from portopt.catalog import BUNDLED, NUMBER_PATTERN, ROW_CONVENTION, Catalog, csv_records
from portopt.config import RunConfig, quarter_index
from portopt.errors import ConfigError, InputError, Problem
from portopt.plan.calendar import deadline_quarter, rounds, shift

BUNDLED_COMMITMENTS = "<bundled commitments>"
COLUMNS = ("project", "quarter", "amount_usd")
SHARE_TOLERANCE = 1e-9
"""Relative slack on the fund-share bounds: an amount written with 10 significant digits of a
share of exactly 1 still holds."""


class CommitmentsError(InputError):
    """The commitments file is malformed or contradicts the catalog or the plan."""


@dataclass(frozen=True)
class Commitment:
    """One decision made: ``project`` funded with ``amount_usd`` in round ``quarter``."""

    project: str
    quarter: str
    amount_usd: float


FRAME = "commitments (DataFrame)"
"""How problems name a commitments table given as a DataFrame (its rows numbered as a file's,
the header being row 1)."""


def bundled_path() -> Path:
    return Path(str(resources.files("portopt") / "data" / "commitments.csv"))


def usd_text(amount: float) -> str:
    """Dollars as a reader takes them in: ``$33,300,000,000``, or ``$1.00e+300`` past a
    quadrillion (a typo's 300 digits help nobody)."""
    return f"${amount:,.0f}" if abs(amount) < 1e15 else f"${amount:.2e}"


def load_commitments(
    path: str | Path | pd.DataFrame | None,
    catalog: Catalog,
    config: RunConfig,
    *,
    none: bool = False,
) -> list[Commitment]:
    """Read and check the commitments file (``path``; the bundled first tranche when None; a
    DataFrame of the file's columns, named :data:`FRAME` in problems);
    ``none`` (``--no-commitments``): no decisions made, every project a candidate.

    Each problem names the file, the row (the line number, the header being line 1; blank
    lines and quoted line breaks counted as they stand) and the column. A row on its own: an
    unknown project, one listed twice, more or fewer fields than the header, a malformed
    quarter or one before ``scenarios.start`` or after the plan's deadline, an amount that is
    not a positive number or lies outside the project's fund-share bounds. The rows together: a
    header with no rows (unless ``none``), a committed project without its prerequisite
    committed no later, two committed projects that exclude each other, commitments above
    ``model.budget_usd``, and no round left open after the latest commitment. Raises
    :class:`CommitmentsError` listing them all, or :class:`ConfigError` when the plan's own
    keys leave no open round.
    """
    check_open_rounds(config)
    if none:
        return []
    if path is None and catalog.source != BUNDLED:
        made = catalog_commitments(catalog, config)
        where = f"{catalog.source} (projects.csv rows marked committed)"
        problems = _bundled_left_out(catalog, made)
        problems += _together(
            made, dict.fromkeys((c.project for c in made), None), where, catalog, config
        )
        _raise(problems, where)
        return made
    frame = isinstance(path, pd.DataFrame)
    name = FRAME if frame else BUNDLED_COMMITMENTS if path is None else str(path)
    file = bundled_path() if path is None or frame else Path(path)
    if not frame and not file.is_file():
        what = "is a folder, not a file" if file.is_dir() else "no such file"
        raise CommitmentsError(
            [Problem(name, None, None, f"{what} (plan.commitments or --commitments)")],
            "commitments file not found",
        )
    problems: list[Problem] = []
    records = frame_records(path) if frame else csv_records(file, name, problems) or []
    _raise(problems, name)
    if not records:
        _raise(
            [Problem(name, None, None, "empty: expected a header project,quarter,amount_usd")], name
        )
    (_, header), rows = records[0], records[1:]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        _raise(
            [Problem(name, records[0][0], c, "column given twice in the header") for c in twice],
            name,
        )
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        _raise(
            [
                Problem(
                    name, records[0][0], c, "missing column (expected project, quarter, amount_usd)"
                )
                for c in missing
            ],
            name,
        )
    if not rows:
        _raise(
            [
                Problem(
                    name,
                    None,
                    None,
                    "holds a header and no commitments; to plan every project as a candidate,"
                    " say so with --no-commitments",
                )
            ],
            name,
        )
    made, lines = _rows(rows, header, name, catalog, config, problems)
    problems += _together(made, lines, name, catalog, config)
    _raise(problems, name)
    return made


def frame_records(frame: pd.DataFrame) -> list[tuple[int, list[str]]]:
    """A commitments DataFrame as a file's records: (row number, cells as text), the header
    first; a missing cell is blank."""
    header = [str(c) for c in frame.columns]
    body = frame.astype(object).where(frame.notna(), "").astype(str).to_numpy().tolist()
    return [(1, header)] + [(k + 2, row) for k, row in enumerate(body)]


def _rows(
    rows: list[tuple[int, list[str]]],
    header: list[str],
    name: str,
    catalog: Catalog,
    config: RunConfig,
    problems: list[Problem],
) -> tuple[list[Commitment], dict[str, int | None]]:
    """The rows that hold on their own, and each committed project's line."""
    out: list[Commitment] = []
    lines: dict[str, int | None] = {}
    at = {c: header.index(c) for c in COLUMNS}
    start, deadline_q = config.scenarios.start, deadline_quarter(config.plan)
    pr = catalog.projects
    for line, cells in rows:
        if len(cells) != len(header):
            problems.append(
                Problem(
                    name,
                    line,
                    None,
                    f"{len(cells)} fields, but the header has {len(header)}; expected one value"
                    " per header column (quote a cell that holds a comma)",
                )
            )
            continue
        pid, quarter, amount = (cells[at[c]] for c in COLUMNS)
        found: list[Problem] = []
        if pid not in pr.index:
            found.append(Problem(name, line, "project", f"'{pid}' is not a catalog project"))
        elif pid in lines:
            found.append(
                Problem(
                    name, line, "project", f"'{pid}' is committed twice (also row {lines[pid]})"
                )
            )
        try:
            offset = quarter_index(quarter, start)
        except ValueError:
            found.append(
                Problem(name, line, "quarter", f"'{quarter}' is not a quarter like 2026Q1")
            )
        else:
            if offset < 0:
                found.append(
                    Problem(name, line, "quarter", f"{quarter} is before scenarios.start {start}")
                )
            elif quarter_index(quarter, deadline_q) > 0:
                found.append(
                    Problem(
                        name,
                        line,
                        "quarter",
                        f"{quarter} is after the deadline {config.plan.deadline} (plan.deadline)",
                    )
                )
        usd = float(amount) if NUMBER_PATTERN.fullmatch(amount) else math.nan
        if not (math.isfinite(usd) and usd > 0.0):
            found.append(
                Problem(
                    name,
                    line,
                    "amount_usd",
                    f"'{amount[:40]}' is not a positive number of dollars (finite, digits only)",
                )
            )
        elif pid in pr.index:
            found += _share_problems(name, line, pid, usd, catalog, config)
        if pid in pr.index and pid not in lines:
            lines[pid] = line
        if not found:
            out.append(Commitment(pid, quarter, usd))
        problems += found
    return out, lines


def _share_problems(
    name: str, line: int, pid: str, usd: float, catalog: Catalog, config: RunConfig
) -> list[Problem]:
    """The amount against the project's fund-share bounds (the catalog's min and max share of
    its base cost, after a ``support.projects`` capex reduction, which the problem names)."""
    row = catalog.projects.loc[pid]
    cost = float(row["base_cost_usd"])
    lo, hi = float(row["min_fund_share"]), float(row["max_fund_share"])
    share = usd / cost
    if lo * (1 - SHARE_TOLERANCE) <= share <= hi * (1 + SHARE_TOLERANCE):
        return []
    side = "above the maximum" if share > hi else "below the minimum"
    return [
        Problem(
            name,
            line,
            "amount_usd",
            f"{usd_text(usd)} is a fund share of {share:.4g} of the project's base cost"
            f" {usd_text(cost)}, {side};"
            f" expected {usd_text(lo * cost)} to {usd_text(hi * cost)} (min_fund_share {lo:g},"
            f" max_fund_share {hi:g} in the catalog)" + _supported(pid, cost, config),
        )
    ]


def _supported(pid: str, cost: float, config: RunConfig) -> str:
    """Words for a base cost that ``support.projects.<pid>.capex_reduction`` lowered."""
    given = config.support.projects.get(pid)
    if given is None or not given.capex_reduction:
        return ""
    before = cost / (1.0 - given.capex_reduction)
    return (
        f"; support.projects.{pid}.capex_reduction {given.capex_reduction:g} lowered the base"
        f" cost from {usd_text(before)}: a committed amount is fixed, so lower the reduction or"
        " the amount"
    )


def _together(
    made: list[Commitment],
    lines: dict[str, int | None],
    name: str,
    catalog: Catalog,
    config: RunConfig,
) -> list[Problem]:
    """What no plan can hold of the commitments taken together."""
    problems: list[Problem] = []
    by_id = {c.project: c for c in made}
    pr = catalog.projects
    start = config.scenarios.start
    groups = config.model.groups
    for c in made:
        line = lines.get(c.project)
        if groups.dependencies.enabled:
            for need in pr.loc[c.project, "depends_on"]:
                other = by_id.get(need)
                if other is None:
                    problems.append(
                        Problem(
                            name,
                            line,
                            "project",
                            f"'{c.project}' needs '{need}' (depends_on in the catalog), which is"
                            " not committed; commit it in the same round or earlier, or leave"
                            f" '{c.project}' out",
                        )
                    )
                elif quarter_index(other.quarter, c.quarter) > 0:
                    problems.append(
                        Problem(
                            name,
                            line,
                            "quarter",
                            f"'{c.project}' in {c.quarter} needs '{need}', committed later"
                            f" ({other.quarter}, row {lines.get(need)}); a prerequisite is"
                            " proposed in the same round or earlier",
                        )
                    )
    if groups.exclusions.enabled:
        pairs = {
            frozenset((c.project, other))
            for c in made
            for other in pr.loc[c.project, "excludes"]
            if other in by_id
        }
        for pair in sorted(pairs, key=sorted):
            a, b = sorted(pair, key=lambda pid: (lines.get(pid) or 0, pid))
            problems.append(
                Problem(
                    name,
                    lines.get(b),
                    "project",
                    f"'{b}' and '{a}' (row {lines.get(a)}) exclude each other (excludes in the"
                    " catalog) and are both committed; no plan can hold both",
                )
            )
    total = sum(c.amount_usd for c in made)
    budget = config.model.budget_usd
    if groups.capital.enabled and total > budget * (1 + SHARE_TOLERANCE):
        problems.append(
            Problem(
                name,
                None,
                "amount_usd",
                f"the commitments total {usd_text(total)}, above model.budget_usd"
                f" {usd_text(budget)}",
            )
        )
    if made and not _open_after(made, config):
        latest = max(made, key=lambda c: quarter_index(c.quarter, start))
        problems.append(
            Problem(
                name,
                lines.get(latest.project),
                "quarter",
                f"the latest commitment ({latest.project} in {latest.quarter}) leaves no open"
                f" round: the next round, {shift(latest.quarter, 1)}, is decided after"
                f" plan.deadline {config.plan.deadline}; nothing is left to plan",
            )
        )
    return problems


def _open_after(made: list[Commitment], config: RunConfig) -> bool:
    """Whether a round is open after the latest commitment (and from ``plan.first_quarter``)."""
    start = config.scenarios.start
    first = config.plan.first_quarter
    latest = max((c.quarter for c in made), key=lambda q: quarter_index(q, start))
    if quarter_index(first, latest) <= 0:
        first = shift(latest, 1)
    return bool(rounds(config.plan, first))


def check_open_rounds(config: RunConfig) -> None:
    """Raise :class:`ConfigError` when ``plan.first_quarter`` and ``plan.deadline`` leave no
    round open (no proposal from the first quarter on is decided by the deadline)."""
    plan = config.plan
    if rounds(plan):
        return
    raise ConfigError(
        [
            Problem(
                "plan.first_quarter and plan.deadline",
                None,
                None,
                f"no round is open: a proposal in plan.first_quarter {plan.first_quarter} is"
                f" decided after plan.deadline {plan.deadline} (review_business_days"
                f" {plan.review_business_days}); move the first quarter earlier or the deadline"
                " later",
            )
        ],
        "no open round to plan",
    )


def _bundled_left_out(catalog: Catalog, made: list[Commitment]) -> list[Problem]:
    """A catalog of its own that holds projects of the bundled tranche without committing them
    would plan signed decisions as candidates; it has to say so."""
    records = csv_records(bundled_path(), BUNDLED_COMMITMENTS, []) or []
    at = records[0][1].index("project") if records else 0
    bundled = {cells[at] for _, cells in records[1:]}
    held = sorted((bundled & set(catalog.project_ids)) - {c.project for c in made})
    if not held:
        return []
    return [
        Problem(
            f"{catalog.source}",
            None,
            "status",
            f"holds {', '.join(held)} of the bundled first tranche without marking them"
            " committed, and no commitments file is given: give one with --commitments FILE or"
            " plan.commitments (the bundled one is portopt/data/commitments.csv), mark them"
            " committed, or plan them as candidates with --no-commitments",
        )
    ]


def _raise(problems: list[Problem], name: str) -> None:
    if problems:
        raise CommitmentsError(
            problems,
            f"{len(problems)} problem(s) in the commitments {name} ({ROW_CONVENTION})",
        )


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
    lines = [",".join(COLUMNS)]
    lines += [f"{c.project},{c.quarter},{c.amount_usd:.17g}" for c in commitments]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
