"""Sweeps of plans: each point of a ``portopt frontier`` grid (or a robustness batch) a full
plan, the same pipeline as ``portopt plan`` (:func:`portopt.planning.run_plan`).

A point's figures are its plan's own, read from the plan's metrics: capital expected committed
by the deadline (with Japan's declines) and its P10/P90, the coverage score out of sample with
the declines, Japan's recovery ratio, P(recoup) and CVaR out of sample. So a grid point equals
the plan run alone with the same keys, whatever worker solves it. Points run as Dask tasks, one
plan each; a plan's own frontier is not solved inside a sweep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.catalog import Catalog, load_catalog
from portopt.config import RunConfig
from portopt.engine.generate import generate_scenarios
from portopt.errors import ConfigError, InfeasibleError, Problem, SolverError
from portopt.model import Allocation, optimize
from portopt.outputs import headline
from portopt.pipeline import check_evaluation
from portopt.plan.support import with_support
from portopt.planning import Plan, run_plan
from portopt.sweeps.cluster import gather_as_completed, submit_all
from portopt.tradeoff import plan_only

PLAN_FIGURES = (
    "status",
    "solver",
    "objective",
    "mip_gap",
    "coverage",
    "capital_usd",
    "committed_p10_usd",
    "committed_p90_usd",
    "proposed_usd",
    "budget_usd",
    "recoupment_tolerance",
    "recovery_floor",
    "cvar_shortfall_share",
    "expected_recovery_ratio",
    "p_recoup",
    "n_selected",
    "selected",
    "us_support_usd",
    "note",
)
"""frontier.csv's columns of a plan grid after the point and the varied keys (``capital_usd``:
capital expected committed by the deadline; ``coverage``: the plan's coverage score with
Japan's declines, out of sample; ``us_support_usd``: the expected cost of the point's US
support, metrics.json's ``support.cost_expected_usd``, null without ``support.projects``);
then ``task``, ``resolve`` (always false: each point is a plan of its own) and ``solve_s``,
``point_s``."""


def plan_point(config: RunConfig, commitments: str | Path | None = None) -> dict[str, Any]:
    """A task: the plan of ``config`` (on ``commitments``) and its figures; an infeasible plan
    is a row with status ``infeasible`` and the explanation as its note."""
    t0 = time.perf_counter()
    rec = config.model.groups.recoupment
    row: dict[str, Any] = dict.fromkeys(PLAN_FIGURES)
    row.update(
        budget_usd=config.model.budget_usd,
        recoupment_tolerance=rec.max_shortfall_share,
        recovery_floor=rec.min_expected_recovery if rec.enabled else None,
    )
    try:
        result = run_plan(plan_only(config), commitments, write=False)
    except (InfeasibleError, SolverError) as exc:
        status = "infeasible" if isinstance(exc, InfeasibleError) else "error"
        row.update(status=status, n_selected=0, selected="", note=str(exc))
        row.update(resolve=False, solve_s=None, point_s=time.perf_counter() - t0)
        return row
    plan_csv = result.plan if result.plan is not None else pd.DataFrame({"project_id": []})
    m = result.metrics
    plan = m["plan"]
    oos = headline(m.get("out_of_sample") or {}, rec.alpha)
    row.update(
        status=m.get("status"),
        solver=m.get("solver"),
        objective=m.get("objective"),
        mip_gap=m.get("mip_gap"),
        coverage=plan["coverage"],
        capital_usd=plan["committed_expected_usd"],
        committed_p10_usd=plan["committed_p10_usd"],
        committed_p90_usd=plan["committed_p90_usd"],
        proposed_usd=plan["proposed_usd"],
        cvar_shortfall_share=oos.get("cvar_shortfall_share"),
        expected_recovery_ratio=oos.get("recovery_ratio"),
        p_recoup=oos.get("p_recoup"),
        n_selected=len(plan_csv),
        selected=";".join(sorted(plan_csv["project_id"].astype(str))),
        us_support_usd=(m.get("support") or {}).get("cost_expected_usd"),
        note="; ".join(m.get("notes", [])),
        resolve=False,
        solve_s=m.get("timings_s", {}).get("optimise"),
        point_s=time.perf_counter() - t0,
    )
    return row


def check_points(points: Sequence[Any]) -> None:
    """What a point's config asks of the catalog, checked here for every point before any is
    sent: a ``support.projects`` id the catalog lacks is a :class:`ConfigError` naming its key
    once, not a failed task in a worker's log; so is a point without evaluation scenarios,
    named by its ``--vary`` values."""
    catalogs: dict[str | None, Catalog] = {}
    for point in points:
        path = point.config.catalog
        if path not in catalogs:
            catalogs[path] = load_catalog(path)
        with_support(catalogs[path], point.config)
        try:
            check_evaluation(point.config, "plan")
        except ConfigError as exc:
            where = ", ".join(f"{k}={v}" for k, v in point.values.items())
            problems = [Problem(f"--vary point {where}", None, None, str(p)) for p in exc.problems]
            raise ConfigError(problems, "bad --vary") from None


def run_plan_frontier(
    points: Sequence[Any],
    client: Any,
    commitments: str | Path | None = None,
    on_result: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Every grid point a plan, one task each on ``client``'s cluster; rows in grid order."""
    check_points(points)
    keys = list(points[0].values) if points else []
    futures = submit_all(
        client, plan_point, [(p.config, commitments) for p in points], "plan-frontier"
    )
    results = gather_as_completed(client, futures, on_result)
    rows = [
        {"point": p.index, **_cells(p.values), **row, "task": i}
        for i, (p, row) in enumerate(zip(points, results, strict=True))
    ]
    columns = ["point", *keys, *PLAN_FIGURES, "task", "resolve", "solve_s", "point_s"]
    return pd.DataFrame(rows).reindex(columns=columns).sort_values("point", ignore_index=True)


def _cells(values: dict[str, Any]) -> dict[str, Any]:
    import json

    return {
        k: json.dumps(v) if isinstance(v, list | dict | tuple) else v for k, v in values.items()
    }


def plan_selection(
    catalog: Catalog,
    config: RunConfig,
    scenarios: range,
    commitments: str | Path | None = None,
) -> tuple[Allocation, list[str], np.ndarray, np.ndarray]:
    """The plan chosen on the optimisation ``scenarios`` (a robustness batch): the pipeline's
    stages up to the optimise one (:mod:`portopt.pipeline`), on ``catalog`` (its priorities
    drawn per batch, perhaps). Returns the allocation over the plan's columns and, per catalog
    project (catalog order), its id, whether the plan proposes it and its fund."""
    job = Plan(commitments)
    config = job.prepare(config)
    columns = job.columns(catalog, config)
    engine = generate_scenarios(
        columns.engine_catalog, config, backend=config.backend, scenarios=scenarios
    )
    opt = columns.model_scenarios(engine)
    columns = columns.with_decline_probability(columns.decline_probability(opt, config))
    opt, _ = columns.declines(opt, columns.decline_prob, config)
    allocation = optimize(columns.catalog, config, opt)
    ids = list(catalog.project_ids)
    pos = {pid: i for i, pid in enumerate(ids)}
    y, fund = np.zeros(len(ids)), np.zeros(len(ids))
    for j in np.flatnonzero(np.asarray(allocation.y) > 0.5):
        y[pos[str(columns.project[j])]] = 1.0
        fund[pos[str(columns.project[j])]] += float(allocation.fund_usd[j])
    return allocation, ids, y, fund


__all__ = ["PLAN_FIGURES", "plan_point", "plan_selection", "run_plan_frontier"]
