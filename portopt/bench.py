"""Per round, a bench of substitutes: the next-best proposal if Japan declines one of the plan's.

``portopt plan --alternatives K`` (``plan.alternatives.count`` > 0) adds ``bench.csv`` beside
``alternatives.csv``: for each new proposal of the plan (a committed project is not declined),
the best plan in which it is out of its round and one candidate the plan leaves out may take its
place in the same round, every other proposal held in its round (the amounts of the whole plan
re-optimised): the re-solve of :func:`portopt.model.marginal.plan_values` with the round's
left-out candidates freed. Its ``substitute_id`` is the candidate that plan proposes in the
round (blank when none does better than the empty slot), ``value_lost`` the coverage points
(0–100) the plan gives up against itself, and ``value_lost_empty`` those it gives up with the
slot left empty (the proposal's own marginal value, rest held). Rows by round then project id;
a round's rows ranked by ``value_lost`` say which declines the bench covers well.

The substitution is for a proposal Japan declines *before* the round closes (or that the US
withdraws): the slot it frees is filled in the same round. It does not re-plan the later
rounds (the full re-plans of ``plan.marginal: replan`` do that for a project forced out).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from portopt.config import RunConfig
from portopt.model import DirectSweep
from portopt.model.data import BILLION
from portopt.model.direct import resolve as resolve_cut_model
from portopt.model.marginal import POINTS, resolve_config

BENCH_FILE = "bench.csv"
COLUMNS = (
    "proposal_quarter",
    "project_id",
    "fund_usd",
    "substitute_id",
    "substitute_fund_usd",
    "value_lost",
    "value_lost_empty",
    "status",
)
"""bench.csv's columns (the module docstring); money in dollars, values in coverage points."""


def bench(config: RunConfig, sweep: DirectSweep, allocation: Any) -> pd.DataFrame | None:
    """bench.csv of a plan chosen by the cut model (the module docstring); None without one."""
    model = sweep.milp
    if model is None or allocation.objective is None:
        return None
    d = sweep.data
    resolve = resolve_config(config)
    base = POINTS * float(allocation.objective)
    y0 = np.round(np.asarray(allocation.y, float))
    fund = np.asarray(allocation.fund_usd, float)
    project_of = np.empty(d.n, dtype=np.int64)
    for q in range(len(d.projects)):
        project_of[d.columns_of(q)] = q
    out_projects = [q for q in range(len(d.projects)) if not y0[d.columns_of(q)].any()]
    yc = model.ycol.astype(np.int32)
    lp = model.h.getLp()
    lower = np.asarray(lp.col_lower_)[yc].copy()
    upper = np.asarray(lp.col_upper_)[yc].copy()
    rows = []
    try:
        for j in np.flatnonzero(y0 > 0.5):
            if d.committed[j]:
                continue
            q = int(project_of[j])
            own = d.columns_of(q)
            row: dict[str, Any] = dict.fromkeys(COLUMNS)
            row.update(
                proposal_quarter=d.quarter_label(int(d.proposal_q[j])),
                project_id=str(d.projects[q]),
                fund_usd=float(fund[j]),
                substitute_id="",
                substitute_fund_usd=0.0,
            )
            lo, hi = y0.copy(), y0.copy()
            lo[own] = hi[own] = 0.0
            empty = _solve(model, yc, lo, hi, resolve)
            free = [
                int(c)
                for p in out_projects
                for c in d.columns_of(p)
                if d.proposal_q[c] == d.proposal_q[j]
            ]
            hi[free] = upper[free]  # a project forced out stays out
            result = _solve(model, yc, lo, hi, resolve)
            row["status"] = result.status
            if empty.objective is not None:
                row["value_lost_empty"] = base - POINTS * float(empty.objective)
            if result.solution is not None and result.objective is not None:
                row["value_lost"] = base - POINTS * float(result.objective)
                taken = [c for c in free if result.solution.y[c] > 0.5]
                if taken:
                    row["substitute_id"] = ";".join(str(d.projects[project_of[c]]) for c in taken)
                    row["substitute_fund_usd"] = float(
                        sum(result.solution.f[c] for c in taken) * BILLION
                    )
            rows.append(row)
    finally:
        model.h.changeColsBounds(yc.size, yc, lower, upper)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.sort_values(["proposal_quarter", "project_id"], ignore_index=True)


def _solve(model: Any, yc: np.ndarray, lo: np.ndarray, hi: np.ndarray, resolve: RunConfig) -> Any:
    model.h.changeColsBounds(yc.size, yc, lo, hi)
    return resolve_cut_model(model, resolve, incumbent=lo)


__all__ = ["BENCH_FILE", "COLUMNS", "bench"]
