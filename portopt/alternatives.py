"""Near-optimal alternatives of a plan (modelling to generate alternatives, MGA).

``portopt plan --alternatives K --slack 1%`` (``plan.alternatives.count`` and ``.slack``): after
the plan of highest objective :math:`J^*` is found, K more plans, each the plan whose projects
overlap least with the plans found before it (the optimum first), among the plans whose
objective (coverage with the soft target's deployment term) is at least
:math:`(1 - \\text{slack}) J^*`. The overlap of a plan is :math:`\\sum_p c_p x_p`, with
:math:`c_p` the number of earlier plans that hold project p (the Hamming form of MGA, as PyPSA
and GenX use it), minimised on the cut model: the objective bound is a row on the model's own
objective, whose coverage part is the cut model's θ; a MILP answer whose true coverage
(``min(1, ·)``) falls short gets the coverage cuts at it and is solved again, so every
alternative meets the bound exactly, and the CVaR of Japan's shortfall is cut to exactness
likewise. Each alternative says what it gives up (its objective against the optimum's) and
what it adds and drops against the optimum.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from portopt.config import RunConfig
from portopt.model import DirectSweep
from portopt.model.data import BILLION
from portopt.model.direct import COVERAGE_TOL, DirectModel

ALTERNATIVES_FILE = "alternatives.csv"
ROUNDS = 30
"""Cut rounds per alternative at most (each a MILP on the diversity objective)."""
COLUMNS = (
    "alternative",
    "objective",
    "gives_up",
    "proposals",
    "proposed_usd",
    "committed_expected_usd",
    "overlap",
    "adds",
    "drops",
    "projects",
)
"""alternatives.csv: ``alternative`` 0 is the plan itself; ``gives_up``: the share of the
optimum's objective an alternative gives up; ``overlap``: its projects that an earlier plan
holds; ``adds``/``drops``: against the plan itself (``;``-separated project ids)."""


def alternatives(
    config: RunConfig,
    sweep: DirectSweep,
    allocation: Any,
    project: Sequence[str],
    decline_prob: np.ndarray,
) -> pd.DataFrame | None:
    """alternatives.csv of a plan (the module docstring); None when none is asked for."""
    k, slack = config.plan.alternatives.count, config.plan.alternatives.slack
    if k < 1 or allocation.objective is None:
        return None
    d = sweep.data
    model = DirectModel(d, sweep.cover, sweep.config)
    if sweep.forcing:
        sweep.forcing.apply(model)
    model.add_cuts(sweep.pool(model))
    model.add_cuts(list(getattr(sweep.milp, "log", [])))
    best = float(allocation.objective)
    floor = (1.0 - slack) * best
    nz = np.flatnonzero(model.cost)
    model.h.addRow(floor, np.inf, nz.size, nz.astype(np.int32), model.cost[nz].astype(np.float64))
    model.h.setOptionValue("mip_rel_gap", 0.0)
    ids = [str(p) for p in project]
    names = sorted(set(ids))
    col_of = {pid: np.array([j for j, p in enumerate(ids) if p == pid]) for pid in names}
    y0 = np.asarray(allocation.y) > 0.5
    plans = [{pid for pid in names if y0[col_of[pid]].any()}]
    rows = [_row(0, best, best, y0, allocation.fund_usd, ids, decline_prob, plans[0], set())]
    deadline = time.perf_counter() + float(config.solver.time_limit_s)
    for a in range(1, k + 1):
        counts = {pid: sum(pid in p for p in plans) for pid in names}
        weight = np.zeros(model.ncol)
        weight[model.ycol] = [counts[p] for p in ids]
        model.h.changeColsCost(model.ncol, np.arange(model.ncol, dtype=np.int32), weight)
        found = _solve(model, floor, deadline)
        if found is None:
            break
        y, f = found
        chosen = {pid for pid in names if (y[col_of[pid]] > 0.5).any()}
        overlap = {p for p in chosen if any(p in q for q in plans)}
        value = model.true_objective(np.round(y), f)
        rows.append(_row(a, value, best, y > 0.5, f * BILLION, ids, decline_prob, chosen, overlap))
        rows[-1]["adds"] = ";".join(sorted(chosen - plans[0]))
        rows[-1]["drops"] = ";".join(sorted(plans[0] - chosen))
        plans.append(chosen)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _solve(
    model: DirectModel, floor: float, deadline: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The MILP on the diversity objective, cut until its answer's true objective meets the
    floor and its CVaR holds; None when no plan does (or time runs out)."""
    for _ in range(ROUNDS):
        status = model.run(deadline - time.perf_counter())
        if status != "kOptimal" or model.h.getInfo().primal_solution_status != 2:
            return None
        x = np.asarray(model.h.getSolution().col_value)
        y, f, theta = model.split(x)
        y = np.round(y)
        f = f * (y > 0.5)
        cuts = model.coverage_cuts(y, theta, COVERAGE_TOL)
        cvar = model.cvar_cut(f)
        if cvar is not None:
            cuts.append(cvar)
        if not cuts and model.true_objective(y, f) >= floor - 1e-6:
            return y, f
        if not cuts:
            return None
        model.add_cuts(cuts)
    return None


def _row(
    a: int,
    value: float,
    best: float,
    chosen: np.ndarray,
    fund_usd: np.ndarray,
    ids: list[str],
    decline_prob: np.ndarray,
    projects: set[str],
    overlap: set[str],
) -> dict[str, Any]:
    fund = np.where(chosen, np.asarray(fund_usd, dtype=float), 0.0)
    return {
        "alternative": a,
        "objective": value,
        "gives_up": (best - value) / best if best else 0.0,
        "proposals": int(np.asarray(chosen).sum()),
        "proposed_usd": float(fund.sum()),
        "committed_expected_usd": float(fund @ (1.0 - np.asarray(decline_prob, float))),
        "overlap": len(overlap),
        "adds": "",
        "drops": "",
        "projects": ";".join(sorted(projects)),
    }


__all__ = ["ALTERNATIVES_FILE", "COLUMNS", "alternatives"]
