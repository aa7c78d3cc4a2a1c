"""Proposal rounds and their dates: from a proposal to its funding and its construction start.

A round is a calendar quarter. Its proposals are made on the quarter's first business day;
Japan funds or declines within ``review_business_days`` business days (weekdays: public holidays
are not removed, so a decision date can fall a few days early); the money is committed in the
quarter of that decision, and construction starts the quarter after it, or at the project's
``earliest_start`` when that is later. A round is open when its decision date falls on or before
the deadline (19 January 2029 in the MOU). With the MOU's 45 business days, a 2028Q4 proposal
(2 October 2028) is decided on 4 December 2028, inside the deadline; a 2029Q1 one is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from portopt.config import PlanConfig, parse_quarter


def quarter_label(year: int, quarter: int) -> str:
    """``YYYYQn`` of a year and a quarter (1-4); ``quarter`` may run past 4 or below 1."""
    q = year * 4 + quarter - 1
    return f"{q // 4}Q{q % 4 + 1}"


def shift(label: str, quarters: int) -> str:
    """The quarter ``quarters`` after ``label`` (before, when negative)."""
    year, q = parse_quarter(label)
    return quarter_label(year, q + quarters)


def first_day(label: str) -> np.datetime64:
    year, q = parse_quarter(label)
    return np.datetime64(f"{year:04d}-{3 * (q - 1) + 1:02d}-01", "D")


def quarter_of(date: np.datetime64) -> str:
    """The quarter holding ``date``."""
    text = str(np.datetime64(date, "D"))
    year, month = int(text[:4]), int(text[5:7])
    return quarter_label(year, (month - 1) // 3 + 1)


def deadline_quarter(plan: PlanConfig) -> str:
    """The quarter holding ``plan.deadline``."""
    return quarter_of(np.datetime64(plan.deadline, "D"))


def decision_date(label: str, business_days: int) -> np.datetime64:
    """The date Japan decides a proposal made in round ``label``."""
    opened = np.busday_offset(first_day(label), 0, roll="forward")
    return np.busday_offset(opened, business_days, roll="forward")


def fiscal_year(label: str) -> int:
    """Japan's fiscal year of a quarter (April to March): 2027Q1 is in FY2026."""
    year, q = parse_quarter(label)
    return year if q >= 2 else year - 1


def disbursement_shares(start: str, build_quarters: int) -> dict[int, float]:
    """The planned schedule of one dollar: spread evenly over ``build_quarters`` quarters
    from ``start``, as ``{fiscal year: share}`` (what JBIC funds each fiscal year)."""
    return dict(_shares(start, max(int(build_quarters), 1)))


@lru_cache(maxsize=4096)
def _shares(start: str, build: int) -> tuple[tuple[int, float], ...]:
    """:func:`disbursement_shares` as items, computed once per (start, build): the model's
    groups ask for it per column at every build (about 47,000 times in a default plan)."""
    out: dict[int, float] = {}
    for k in range(build):
        fy = fiscal_year(shift(start, k))
        out[fy] = out.get(fy, 0.0) + 1.0 / build
    return tuple(out.items())


@dataclass(frozen=True)
class Round:
    """A proposal round: its quarter, the decision date, the quarter the money is committed."""

    quarter: str
    decided: str
    funding_quarter: str

    def construction_start(self, earliest_start: str) -> str:
        """Construction starts the quarter after funding, or at ``earliest_start`` if later."""
        after = shift(self.funding_quarter, 1)
        return max(after, earliest_start, key=lambda q: parse_quarter(q))


def round_of(quarter: str, plan: PlanConfig) -> Round:
    decided = decision_date(quarter, plan.review_business_days)
    return Round(quarter, str(decided), quarter_of(decided))


def rounds(plan: PlanConfig, first: str | None = None) -> list[Round]:
    """The open rounds from ``first`` (default ``plan.first_quarter``) to the last one whose
    decision falls on or before ``plan.deadline``; empty when none does."""
    deadline = np.datetime64(plan.deadline, "D")
    out, quarter = [], first or plan.first_quarter
    while True:
        r = round_of(quarter, plan)
        if np.datetime64(r.decided, "D") > deadline:
            return out
        out.append(r)
        quarter = shift(quarter, 1)
