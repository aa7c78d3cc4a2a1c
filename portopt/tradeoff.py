"""The plan frontier: the trade-off between capital committed, Japan's recovery and coverage.

``portopt plan`` solves, beside the plan at the configured expected-recovery floor, the plan at
each floor from the configured one down to ``plan.frontier.lowest_floor`` in steps of
``plan.frontier.floor_step`` (0.95 to 0.50 by 0.05 by default): the same columns, rules,
optimisation scenarios and declines, only the floor changed (a Parameter of the compiled cut
model, so each point re-targets one model, no rebuild).

The lowest floor is solved first, beside the deployment levels (:func:`plan_frontier`): a lower
floor admits every plan a higher one admits, so its plan, solved to the gap, is within that gap
of every floor its expected recovery meets, and those points take it; only the floors above it
are solved (:func:`floors_above`). Each solved point starts from the configured plan's state:
its cut pool (every coverage and CVaR cut the first solve found, valid at every floor) and its
selection as the incumbent (feasible at every lower floor). Every point, floor or level, is a
task of its own that starts from that same state, never from another point's, so a point's plan
does not depend on how the points are shared between processes (:func:`run_items`): one
process, two, or Dask workers behind ``--scheduler`` give the same frontier.csv.

The figures of a point are on the optimisation scenarios (in sample), with Japan's declines
drawn as the plan draws them: capital expected committed (the plan's fund dollars times one
less each proposal's decline probability, the measure the plan's target uses) and its P10/P90
over the scenarios, the coverage score, Japan's expected recovery (expected PV receipts over
expected PV draws, the measure the floor constrains), P(recoup) and the CVaR of Japan's
shortfall as a share of capital. The configured point's out-of-sample figures are the plan's
own (metrics.json); frontier.csv compares the points on one footing.
"""

from __future__ import annotations

import copy
import gc
import multiprocessing
import pickle
import sys
import tempfile
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.config import RunConfig
from portopt.evaluate import portfolio_figures
from portopt.model import DirectSweep
from portopt.model.data import BILLION
from portopt.model.direct import DirectModel
from portopt.plan.frontier import default_workers, frontier_floors

FRONTIER_FILE = "frontier.csv"
FLOOR_KEY = "model.groups.recoupment.min_expected_recovery"

COLUMNS = (
    "point",
    "kind",
    "floor",
    "level_usd",
    "configured",
    "status",
    "mip_gap",
    "objective",
    "proposals",
    "proposed_usd",
    "committed_expected_usd",
    "committed_p10_usd",
    "committed_p90_usd",
    "coverage",
    "expected_recovery",
    "p_recoup",
    "cvar_shortfall_share",
    "binding",
    "adds",
    "drops",
    "projects",
    "note",
)
"""frontier.csv's columns: one row per point, the configured floor first, then each lower one
(``kind`` floor), then each deployment level (``kind`` level: ``level_usd`` of expected
committed capital at least, at the highest floor on a 0.01 grid that admits it).
``binding``, ``adds``, ``drops`` and ``projects`` are ``;``-separated (groups as
``group: row``; project ids); ``adds``/``drops``: against the point above it (the next higher
floor)."""


def plan_only(config: RunConfig) -> RunConfig:
    """``config`` for a plan whose figures a sweep or a what-if reads from its metrics: no
    report, no scenario tables, no frontier of its own, an output folder it may overwrite."""
    out = config.model_copy(deep=True)
    out.output.report = False
    out.output.scenarios_parquet = False
    out.output.overwrite = True
    out.plan.frontier.enabled = False
    return out


def at_floor(config: RunConfig, floor: float) -> RunConfig:
    """``config`` with the expected-recovery floor set to ``floor``."""
    out = config.model_copy(deep=True)
    out.model.groups.recoupment.min_expected_recovery = floor
    return out


@dataclass
class FrontierState:
    """What every point starts from: the configured plan's model (without its HiGHS
    instances), its cut pools and selection, the declines and each column's base project."""

    sweep: DirectSweep
    declined: np.ndarray
    decline_prob: np.ndarray
    base_ids: list[str]


def frontier_state(
    sweep: DirectSweep,
    allocation: Any,
    declined: np.ndarray,
    decline_prob: np.ndarray,
    project: Sequence[str],
) -> FrontierState:
    """The picklable starting state of the frontier's points (see the module docstring);
    ``project``: each model column's project id."""
    seed = copy.copy(sweep)
    seed.milp, seed.lp = None, None
    seed.progress = None
    seed.coverage_pool = dict(sweep.coverage_pool)
    seed.cvar_pool = dict(sweep.cvar_pool)
    seed.last = allocation.solution()
    return FrontierState(
        seed, np.asarray(declined, bool), np.asarray(decline_prob, float), list(project)
    )


_HELD: dict[str, tuple[weakref.ref[FrontierState], DirectModel]] = {}
"""This process's compiled cut models of the frontier state it is solving, by kind (the
points' model, its LP variant, the levels' tests): each task re-targets them (a Parameter
change, the same HiGHS input as a fresh compile) instead of compiling its own. A re-target
starts a fresh HiGHS instance without cuts, so a point does not depend on which task ran
before it in the process."""


def held(state: FrontierState, kind: str) -> DirectModel | None:
    """The model of ``kind`` this process compiled for ``state``, if any."""
    entry = _HELD.get(kind)
    return entry[1] if entry is not None and entry[0]() is state else None


def hold(state: FrontierState, kind: str, model: DirectModel | None) -> None:
    """Keep ``model`` as this process's ``kind`` for ``state`` (one state's at a time)."""
    if model is None:
        return
    if any(ref() is not state for ref, _ in _HELD.values()):
        _HELD.clear()
    _HELD[kind] = (weakref.ref(state), model)


def release_held() -> None:
    """Drop this process's held models (the frontier is done): collected now, not by a later
    stage's garbage collection (a model and its HiGHS callbacks refer to each other)."""
    if _HELD:
        _HELD.clear()
        gc.collect()


def points_sweep(state: FrontierState) -> DirectSweep:
    """A copy of the state's sweep for a task, with this process's held models: the points'
    model (every solve re-targets it to the point's config) and its LP variant (every
    shadow-price solve re-targets it to the point)."""
    base = state.sweep
    sweep = copy.copy(base)
    sweep.milp = held(state, "points") or DirectModel(base.data, base.cover, base.config)
    sweep.lp = held(state, "points_lp")
    return sweep


def solve_points(state: FrontierState, floors: Sequence[float]) -> list[dict[str, Any]]:
    """A task: the plan at each of ``floors``, each from the state's pools and selection.

    The cut model is compiled once (per process: :func:`held`) and re-targeted per point, so
    every point (whichever task holds it) is solved by the same sequence of HiGHS calls.
    """
    base = state.sweep
    sweep = points_sweep(state)
    rows = []
    for floor in floors:
        sweep.coverage_pool = dict(base.coverage_pool)
        sweep.cvar_pool = dict(base.cvar_pool)
        sweep.last = base.last
        cfg = at_floor(base.config, floor)
        sweep.update(cfg)
        rows.append(_point(state, sweep, cfg, floor))
    hold(state, "points", sweep.milp)
    hold(state, "points_lp", sweep.lp)
    return rows


def _point(
    state: FrontierState, sweep: DirectSweep, cfg: RunConfig, floor: float
) -> dict[str, Any]:
    import time

    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(kind="floor", floor=floor, configured=False)
    start = time.perf_counter()
    result = sweep.solve(start)
    if result.status in ("infeasible", "error") or result.solution is None:
        row.update(status=result.status, proposals=0, binding="", projects="")
        return row
    sol = result.solution
    prices = sweep.shadow_prices(sol, time.perf_counter() + cfg.solver.time_limit_s)
    binding = sorted({f"{p.group}: {p.row}" if p.row else p.group for p in prices if p.binding})
    row.update(
        status=result.status,
        mip_gap=result.mip_gap,
        objective=result.objective,
        binding=";".join(binding),
    )
    row.update(figures(state, cfg, sol.y, sol.f * BILLION))
    return row


def figures(state: FrontierState, cfg: RunConfig, y: np.ndarray, fund: np.ndarray) -> dict:
    """A point's figures on the optimisation scenarios (the module docstring)."""
    sweep = state.sweep
    chosen = np.asarray(y) > 0.5
    fund = np.where(chosen, np.asarray(fund, float), 0.0)
    committed = (~state.declined[:, chosen] * fund[chosen][None, :]).sum(axis=1)
    p10, p90 = np.quantile(committed, [0.1, 0.9]) if committed.size else (0.0, 0.0)
    ins = portfolio_figures(sweep.catalog, cfg, sweep.scenarios, chosen.astype(float), fund)
    d = sweep.data
    f_b = fund / BILLION
    draw = float(d.e_draw @ f_b)
    alpha = cfg.model.groups.recoupment.alpha
    ids = sorted({state.base_ids[j] for j in np.flatnonzero(chosen)})
    return {
        "proposals": int(chosen.sum()),
        "proposed_usd": float(fund.sum()),
        # not funded: its own decline or a prerequisite's (the model's expected share)
        "committed_expected_usd": float(fund @ sweep.data.expected_share),
        "committed_p10_usd": float(p10),
        "committed_p90_usd": float(p90),
        "coverage": ins["coverage"]["mean"],
        "expected_recovery": float(d.e_japan @ f_b) / draw if draw > 0 else None,
        "p_recoup": ins["p_recoup"],
        "cvar_shortfall_share": ins.get(f"shortfall_cvar_{alpha:g}_share"),
        "projects": ";".join(ids),
    }


def configured_point(
    state: FrontierState, config: RunConfig, allocation: Any, floor: float
) -> dict[str, Any]:
    """The configured plan as the frontier's first row (solved already)."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        kind="floor",
        floor=floor,
        configured=True,
        status=allocation.status,
        mip_gap=allocation.mip_gap,
        objective=allocation.objective,
        binding=";".join(allocation.binding),
    )
    row.update(figures(state, config, allocation.y, allocation.fund_usd))
    return row


def chunks(floors: Sequence[float], n: int) -> list[list[float]]:
    """``floors`` dealt round-robin into at most ``n`` non-empty tasks."""
    n = max(1, min(n, len(floors)))
    return [list(floors[i::n]) for i in range(n)]


def run_items(
    fn: Callable[..., list[dict[str, Any]]],
    state: FrontierState,
    items: Sequence[Any],
    workers: int | None,
    mapper: Mapper | None,
    dealt: bool = False,
    helpers: Helpers | None = None,
) -> list[dict[str, Any]]:
    """``fn(state, task)`` over ``items``, the rows in ``items``' order (``fn`` returns one
    row per item of its task, in order).

    Each item is independent of the others (``fn`` starts every item from ``state``), so the
    rows do not depend on how the items are shared out: in this process (``workers`` 1, or one
    item); by ``workers`` solvers on this machine, this process and ``workers - 1`` worker
    processes (``helpers``, started ahead by the caller, else started here), each taking the
    next item as it frees up, in order (the slowest item, not an unlucky split, sets the time;
    a worker reads ``state`` from a file once); or through ``mapper`` (Dask), dealt round-robin
    into ``workers`` tasks (:func:`chunks`), as a task carries its own copy of ``state`` (the
    cluster keeps a task's arguments, so that it survives a worker's loss: fewer tasks send it
    fewer times). ``dealt``: dealt into ``workers`` tasks locally too (many short items, each
    task compiling its model once)."""
    if not items:
        return []
    n = max(1, min(workers if workers is not None else default_workers(), len(items)))
    dealt = dealt or mapper is not None
    tasks = chunks(items, n) if dealt else [[item] for item in items]
    if mapper is not None:
        parts = mapper(fn, [(state, task) for task in tasks])
    elif n == 1:
        return fn(state, list(items))
    elif helpers is not None and helpers.n > 0:
        parts = helpers.run(fn, state, tasks)
    else:
        with Helpers(n - 1) as started:
            parts = started.run(fn, state, tasks)
    if dealt:  # the round-robin tasks' rows back in the items' order
        return [parts[i % n][i // n] for i in range(len(items))]
    return [row for part in parts for row in part]


class Helpers:
    """``n`` worker processes that solve :func:`run_items`' tasks beside this process.

    A worker is a fresh interpreter (spawned: HiGHS's threads do not survive a fork) that
    imports portopt as it starts, about 1.6 s of one core: a plan starts its workers when its
    own solve begins (:meth:`portopt.planning.Plan.warm`), which leaves the other core idle,
    so that they are ready when the frontier starts. Close them (or use ``with``) when done."""

    def __init__(self, n: int) -> None:
        self.n = max(0, int(n))
        self.pool: ProcessPoolExecutor | None = None
        if self.n:
            ctx = multiprocessing.get_context("spawn")
            with _main_hidden():
                self.pool = ProcessPoolExecutor(self.n, mp_context=ctx, initializer=_warm)
                for _ in range(self.n):  # start every process now (the pool starts them lazily)
                    self.pool.submit(int)

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (a task running is let finish; the queued ones are dropped)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def run(
        self, fn: Callable[..., list[dict[str, Any]]], state: FrontierState, tasks: list[Any]
    ) -> list[list[dict[str, Any]]]:
        """``fn(state, task)`` of each task, in order: this process and the workers each take
        the next task as they free up. The state goes through a file each worker reads once
        (sent through a worker's start-up pipe, each worker's start waited for the one before
        it to read its state)."""
        assert self.pool is not None
        pool = self.pool
        parts: list[Any] = [None] * len(tasks)
        lock = threading.Lock()
        queue = iter(range(len(tasks)))
        futures: list[tuple[int, Future]] = []
        stopping = []

        with tempfile.TemporaryDirectory(prefix="portopt-frontier-") as folder:
            path = Path(folder) / "state.pickle"
            path.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

            def feed(_: object = None) -> None:
                with lock:  # a task is taken and its future recorded at once
                    i = None if stopping else next(queue, None)
                    if i is None:
                        return
                    future = pool.submit(_adopted, str(path), fn, tasks[i])
                    futures.append((i, future))
                future.add_done_callback(feed)

            try:
                for _ in range(self.n):
                    feed()
                while True:
                    with lock:
                        i = next(queue, None)
                    if i is None:
                        break
                    parts[i] = fn(state, tasks[i])
                wait([f for _, f in futures])  # every task is taken: no future is added now
            except BaseException:
                with lock:
                    stopping.append(True)
                for _, f in futures:
                    f.cancel()
                raise
        for i, future in futures:
            parts[i] = future.result()
        return parts


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Start processes without the caller's ``__main__``: a spawned process imports the
    parent's main module first, so a user's script that calls ``portopt.plan()`` at its top
    level (no ``if __name__ == "__main__"`` guard) would plan again in each worker and break
    the pool. The workers run portopt's functions on portopt's objects only (the state and
    the tasks pickle by reference to portopt's modules), so an empty module stands in."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


_ADOPTED: dict[str, FrontierState] = {}
"""A worker process's state (:meth:`Helpers.run`), read from its file once."""


def _warm() -> None:
    """A worker's start: the modules its tasks use, imported before the first task."""
    import portopt.model.explain
    import portopt.model.marginal  # noqa: F401


def _adopted(
    path: str, fn: Callable[..., list[dict[str, Any]]], task: list[Any]
) -> list[dict[str, Any]]:
    if path not in _ADOPTED:
        _ADOPTED.clear()
        _ADOPTED[path] = pickle.loads(Path(path).read_bytes())
    return fn(_ADOPTED[path], task)


Mapper = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]
"""Runs ``fn(*args)`` for each argument tuple, results in order (the CLI's Dask cluster)."""


def solve_frontier(
    state: FrontierState,
    floors: Sequence[float],
    workers: int | None = None,
    mapper: Mapper | None = None,
    helpers: Helpers | None = None,
) -> list[dict[str, Any]]:
    """Every point of ``floors``, in their order (:func:`run_items`: through ``mapper`` when
    given (Dask), else by ``workers`` local solvers, one: in this process)."""
    return run_items(solve_points, state, floors, workers, mapper, helpers=helpers)


def solve_floors(
    state: FrontierState,
    floors: Sequence[float],
    workers: int | None = None,
    mapper: Mapper | None = None,
) -> list[dict[str, Any]]:
    """Every point of ``floors`` (the floors below the configured one, highest first), in
    their order, the lowest solved first (:func:`floors_above`)."""
    if not floors:
        return []
    if mapper is not None:
        (bottom,) = mapper(solve_points, [(state, [floors[-1]])])[0]
    else:
        (bottom,) = solve_points(state, [floors[-1]])
    return floors_above(state, floors, bottom, workers, mapper)


def floors_above(
    state: FrontierState,
    floors: Sequence[float],
    bottom: dict[str, Any],
    workers: int | None = None,
    mapper: Mapper | None = None,
    helpers: Helpers | None = None,
) -> list[dict[str, Any]]:
    """Every point of ``floors`` (highest first), given ``bottom``, the plan solved at the
    lowest of them.

    A lower floor admits every plan a higher one does (only the floor differs), so its bound is
    at least the higher floor's. The plan at the lowest floor, solved to its gap, is therefore
    within that gap of every floor it meets (its expected recovery at least the floor, less
    :data:`RECOVERY_TOL`): those points take it, with a note, and only the floors above its
    expected recovery are solved, each from the configured plan's state as before
    (:func:`solve_frontier`). Which floors are solved depends on the lowest floor's plan alone,
    never on the number of processes. On the default plan the floor stops binding below 0.95,
    so one solve draws the nine points (bench/RESULTS.md, issue 17)."""
    low = floors[-1]
    reach = None
    if bottom.get("status") == "optimal" and bottom.get("objective") is not None:
        reach = float(bottom["expected_recovery"]) + RECOVERY_TOL
    covered = [f for f in floors[:-1] if reach is not None and f <= reach]
    rest = [f for f in floors[:-1] if f not in covered]
    by_floor = {low: bottom} | {f: covered_point(bottom, f) for f in covered}
    by_floor |= {r["floor"]: r for r in solve_frontier(state, rest, workers, mapper, helpers)}
    return [by_floor[f] for f in floors]


def frontier_points(state: FrontierState, items: Sequence[tuple[str, float]]) -> list[dict]:
    """A task: each item's row, ``("floor", floor)`` (:func:`solve_points`) or ``("level",
    usd)`` (:func:`solve_levels`), each from ``state`` alone."""
    rows: list[dict[str, Any]] = []
    for kind, value in items:
        rows += solve_points(state, [value]) if kind == "floor" else solve_levels(state, [value])
    return rows


def covered_point(bottom: dict[str, Any], floor: float) -> dict[str, Any]:
    """The point at ``floor`` taken from the plan solved at a lower floor (``bottom``) that
    meets it (:func:`solve_floors`): its gap against the lower floor's bound, which is at least
    this floor's."""
    row = {**bottom, "floor": floor, "configured": False}
    row["note"] = (
        f"the plan solved at floor {float(bottom['floor']):.2f}: it meets this floor, and its gap"
        " is against the bound at that lower floor, which is at least this floor's"
    )
    if float(row["expected_recovery"]) > floor + RECOVERY_TOL:
        kept = [b for b in str(row["binding"] or "").split(";") if b and b != BINDING_FLOOR]
        row["binding"] = ";".join(kept)
    return row


def frontier_table(
    rows: Sequence[dict[str, Any]], levels: Sequence[dict[str, Any]] = ()
) -> pd.DataFrame:
    """frontier.csv: the rows by floor, highest first, numbered, each point's plan at least as
    good as the point's above it (:func:`dominate`), with what each plan adds and drops
    against the point above it."""
    rows = dominate(sorted(rows, key=lambda r: -float(r["floor"])))
    previous: set[str] | None = None
    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        r["point"] = i
        now = set(filter(None, str(r.get("projects") or "").split(";")))
        if previous is not None and r.get("status") not in ("infeasible", "error"):
            r["adds"] = ";".join(sorted(now - previous))
            r["drops"] = ";".join(sorted(previous - now))
        else:
            r["adds"] = r["drops"] = ""
        if r.get("status") not in ("infeasible", "error"):
            previous = now
        out.append(r)
    previous = None
    for r in sorted(levels, key=lambda r: float(r["level_usd"])):
        r = dict(r)
        r["point"] = len(out)
        now = set(filter(None, str(r.get("projects") or "").split(";")))
        ok = r.get("status") not in ("infeasible", "error")
        r["adds"] = ";".join(sorted(now - previous)) if ok and previous is not None else ""
        r["drops"] = ";".join(sorted(previous - now)) if ok and previous is not None else ""
        if ok:
            previous = now
        out.append(r)
    return pd.DataFrame(out, columns=list(COLUMNS))


BINDING_FLOOR = "recoupment: expected"
"""The recovery floor's row in ``binding``."""


RECOVERY_TOL = 1e-6
"""A plan meets a floor when its expected recovery is at least the floor less this (the
solver's feasibility tolerance on the floor's row, as a ratio)."""


def dominate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each point's plan: the best of every plan found at any point that meets its floor.

    Only the floor differs between the points, so a plan whose expected recovery meets a
    floor is feasible there (the other rules do not move). Where a solve stopped within its
    gap below another point's plan that is feasible at its floor, that plan is the better
    answer: it is taken, with a note, and its gap against this floor's bound
    (``bound = objective (1 + gap)``). The objective never falls as the floor falls.
    """
    out: list[dict[str, Any]] = []
    for r in rows:
        r = dict(r)
        if r.get("objective") is None or r.get("configured"):  # the plan the run reports
            out.append(r)
            continue
        floor = float(r["floor"])
        best = max(
            (
                o
                for o in rows
                if o.get("objective") is not None
                and float(o["expected_recovery"]) >= floor - RECOVERY_TOL
            ),
            key=lambda o: float(o["objective"]),
        )
        if float(best["objective"]) > float(r["objective"]):
            bound = float(r["objective"]) * (1.0 + float(r.get("mip_gap") or 0.0))
            keep = {k: r[k] for k in ("point", "kind", "floor", "configured")}
            r = {**best, **keep}
            r["mip_gap"] = max(0.0, bound / float(best["objective"]) - 1.0)
            r["note"] = (
                f"the plan found at floor {float(best['floor']):.2f}: it meets this floor and is"
                " better than this floor's own solve (which stopped within its gap)"
            )
            if float(r["expected_recovery"]) > floor + RECOVERY_TOL:
                kept = [b for b in str(r["binding"]).split(";") if b and b != BINDING_FLOOR]
                r["binding"] = ";".join(kept)
        out.append(r)
    return out


def plan_frontier(
    config: RunConfig,
    sweep: DirectSweep,
    allocation: Any,
    project: Sequence[str],
    decline_prob: np.ndarray,
    declined: np.ndarray,
    workers: int | None = None,
    mapper: Mapper | None = None,
    helpers: Helpers | None = None,
) -> pd.DataFrame | None:
    """frontier.csv of a plan (the module docstring); None when there is no frontier to draw
    (``plan.frontier.enabled`` false, no recovery floor, or the plan not chosen by the cut
    model). ``helpers``: worker processes started ahead (:class:`Helpers`), else started here
    when the points are solved locally by more than one solver."""
    floors = frontier_floors(config)
    if not floors or not isinstance(sweep, DirectSweep) or allocation.objective is None:
        return None
    try:
        state = frontier_state(sweep, allocation, declined, decline_prob, project)
        first = configured_point(state, config, allocation, floors[0])
        w = workers if workers is not None else config.plan.frontier.workers
        # the deployment levels, from the committed tranche to the most any plan reaches at the
        # lowest floor, solved beside the lowest floor's plan (each task independent)
        low = committed_capital(state, allocation)
        reached = [float(first["committed_expected_usd"])] if first.get("objective") else []
        high = max(
            [*reached, most_reachable(state, config.plan.frontier.lowest_floor)], default=0.0
        )
        levels = frontier_levels(config, low, high)
        below = floors[1:]
        # the highest levels first: they take the longest (a tighter search and solve), so the
        # processes finish together (the rows do not depend on the order)
        items = [("level", x) for x in sorted(levels, reverse=True)]
        items += [("floor", below[-1])] if below else []
        solved = run_items(frontier_points, state, items, w, mapper, helpers=helpers)
        level_rows = solved[: len(levels)][::-1]
        rows = floors_above(state, below, solved[-1], w, mapper, helpers) if below else []
        # a level some floor's plan reaches above the most found reachable (that MILP ends within
        # its gap): solved too, so the levels run to the most any point commits
        top = max([high, *(float(r["committed_expected_usd"]) for r in rows if r.get("objective"))])
        more = [x for x in frontier_levels(config, low, top) if x not in levels]
        level_rows += run_items(solve_levels, state, more, w, mapper, helpers=helpers)
        return frontier_table([first, *rows], level_rows)
    finally:
        release_held()


# ---------------------------------------------------------------- deployment levels


FLOOR_GRID = 0.01
"""The resolution of a deployment level's floor."""


def committed_capital(state: FrontierState, allocation: Any) -> float:
    """The committed tranche's capital: the fund of the committed projects (the plan holds
    them whatever the floor), where the deployment levels start."""
    d = state.sweep.data
    fund = np.asarray(allocation.fund_usd, float)
    return float(fund[d.committed] @ d.expected_share[d.committed])


def most_reachable(state: FrontierState, floor: float) -> float:
    """The most expected committed capital any plan reaches at ``floor`` with every other rule
    as configured (a MILP maximising it, the CVaR exact by cuts); 0 when none is found in the
    solver's time limit (the levels then stop at the most a floor's plan reached)."""
    import time

    from portopt.model.explain import CutExplainer

    cfg = at_floor(state.sweep.config, floor)
    cfg.model.min_deployment_usd = 0.0
    deadline = time.perf_counter() + float(cfg.solver.time_limit_s)
    explainer = CutExplainer(state.sweep.data, state.sweep.cover, cfg, deadline)
    model = explainer.model([g.name for g in explainer.groups])
    share = state.sweep.data.expected_share
    model.linear(share)
    status, x = model.solve_linear(deadline)
    if status != "optimal" or x is None:
        return 0.0
    y, f, _ = model.split(x)
    return float(share @ (f * (np.round(y) > 0.5))) * BILLION


def frontier_levels(config: RunConfig, low: float, high: float) -> list[float]:
    """The deployment levels: every ``plan.frontier.deployment_step_usd`` of expected committed
    capital above the committed tranche's ``low``, up to ``high`` (the most reachable)."""
    step = config.plan.frontier.deployment_step_usd
    if not step or step <= 0 or high <= low:
        return []
    first = (np.floor(low / step + 1e-9) + 1) * step
    return [float(x) for x in np.arange(first, high + 1e-6 * step, step)]


def floor_ceiling(state: FrontierState) -> float:
    """The highest expected recovery any plan can have (the best column's ratio of expected
    Japan receipts to draws, a mix never exceeds it), up on the level grid, at most 5."""
    d = state.sweep.data
    ok = d.e_draw > 0
    best = float(np.max(d.e_japan[ok] / d.e_draw[ok])) if ok.any() else 0.0
    return float(min(5.0, np.ceil(best / FLOOR_GRID - 1e-9) * FLOOR_GRID))


class LevelTests:
    """The feasibility tests of one deployment level at a floor (``explainer``: its config, the
    level a minimum deployment): the LP relaxation's verdict, and the MILP's, keeping the first
    plan found at each floor (the level's plan starts from it).

    Every test solves one cut model, compiled at the first floor tested and re-targeted to each
    next one (the floor is a Parameter: no compile; a re-target drops the cuts, so a verdict
    depends only on the floor, never on which test ran before it)."""

    def __init__(self, explainer: Any) -> None:
        self.explainer = explainer
        self.names = [g.name for g in explainer.groups]
        self.plans: dict[float, np.ndarray] = {}
        self.lp_verdicts: dict[float, bool | None] = {}
        self.cut_model: Any = None
        self.reuse: Any = None
        """A cut model compiled earlier for these data, re-targeted instead of compiling."""

    def _model(self, floor: float) -> Any:
        """The cut model at ``floor``, its objective zero (any plan)."""
        if self.cut_model is None:
            overrides = {FLOOR_KEY: floor}
            self.cut_model = self.explainer.model(self.names, overrides, reuse=self.reuse)
        else:
            self.cut_model.retarget(at_floor(self.cut_model.config, floor))
        model = self.cut_model
        model.linear(None)
        return model

    def lp(self, floor: float) -> bool | None:
        """Whether the LP relaxation admits ``floor`` (False is a proof; None: no verdict)."""
        if floor not in self.lp_verdicts:
            status, _ = self._model(floor).solve_linear(self.explainer.deadline, lp_only=True)
            self.lp_verdicts[floor] = {"infeasible": False, "feasible": True}.get(status)
        return self.lp_verdicts[floor]

    def milp(self, floor: float) -> bool:
        """Whether a plan meets ``floor`` (False also when no verdict came in time)."""
        if floor in self.plans:
            return True
        if self.lp(floor) is False:
            return False
        model = self._model(floor)
        status, x = model.solve_linear(self.explainer.deadline)
        if status != "optimal" or x is None:
            return False
        self.plans[floor] = np.round(model.split(x)[0])
        return True


def highest_floor(tests: LevelTests, ceiling: float) -> float | None:
    """The highest expected-recovery floor on the 0.01 grid, from ``ceiling`` down to 0, that
    ``tests`` admit: an LP bisection (an infeasible LP is a proof), then MILPs down from the
    LP's answer (one step, then doubling, then a bisection). None when not even 0 admits it."""
    values = [round(k * FLOOR_GRID, 10) for k in range(round(ceiling / FLOOR_GRID), -1, -1)]
    last = len(values) - 1
    if tests.lp(values[last]) is False:
        return None
    lo, hi = -1, last  # the LP is infeasible above lo's floor, feasible at hi's
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if tests.lp(values[mid]) is False:
            lo = mid
        else:
            hi = mid
    if tests.milp(values[hi]):
        return values[hi]
    lo, jump = hi, 1
    while True:
        i = min(last, lo + jump)
        if tests.milp(values[i]):
            hi = i
            break
        if i == last:
            return None
        lo, jump = i, 2 * jump
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if tests.milp(values[mid]):
            hi = mid
        else:
            lo = mid
    return values[hi]


def solve_levels(state: FrontierState, levels: Sequence[float]) -> list[dict[str, Any]]:
    """A task: for each deployment level, the highest expected-recovery floor (0.01 grid) that
    admits that much expected committed capital with every other rule as configured
    (:func:`highest_floor`; above the configured floor too: what deploying less buys), and the
    plan of highest coverage there with the level as a minimum deployment. Each level is
    searched from the same ceiling (:func:`floor_ceiling`), whatever the task's other levels, so
    a level's row does not depend on how the levels are shared between processes."""
    import time

    from portopt.model.explain import CutExplainer
    from portopt.model.terms import Solution

    base = state.sweep
    sweep = points_sweep(state)
    ceiling = floor_ceiling(state)
    rows = []
    for level in sorted(levels):
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(kind="level", level_usd=level, configured=False)
        cfg = base.config.model_copy(deep=True)
        cfg.model.min_deployment_usd = max(cfg.model.min_deployment_usd, level)
        deadline = time.perf_counter() + float(cfg.solver.time_limit_s)
        tests = LevelTests(CutExplainer(base.data, base.cover, cfg, deadline))
        tests.reuse = held(state, "level_tests")
        floor = highest_floor(tests, ceiling)
        hold(state, "level_tests", tests.cut_model)
        if floor is None:
            row.update(status="infeasible", proposals=0, binding="", projects="")
            row["note"] = f"no floor down to 0 admits {level / 1e9:,.0f}B"
            rows.append(row)
            continue
        cfg = at_floor(cfg, floor)
        sweep.coverage_pool = dict(base.coverage_pool)
        sweep.cvar_pool = dict(base.cvar_pool)
        sweep.last = Solution(y=tests.plans[floor], f=np.zeros_like(tests.plans[floor]))
        sweep.update(cfg)
        row.update(_point(state, sweep, cfg, floor))
        row.update(kind="level", level_usd=level, configured=False)
        rows.append(row)
    hold(state, "points", sweep.milp)
    hold(state, "points_lp", sweep.lp)
    return rows


# ---------------------------------------------------------------- marginal values as re-plans


def kept_out_by(state: FrontierState, pid: str) -> list[str]:
    """The groups (``model.groups`` names) of a minimal set that keeps ``pid`` out of every
    plan: with it forced in (at its best round), the deletion filter over the policy groups,
    the facts (dependencies, exclusions) enforced throughout unless they alone keep it out (as
    :class:`portopt.model.explain.CutExplainer` explains an infeasible plan). A test without a
    verdict in the solver's time limit counts as feasible, so the set may be smaller than a
    minimal one, never larger."""
    import time

    from portopt.model.explain import CutExplainer
    from portopt.model.forcing import Forcing

    base = state.sweep
    deadline = time.perf_counter() + float(base.config.solver.time_limit_s)
    explainer = CutExplainer(base.data, base.cover, base.config, deadline)
    forcing = Forcing({pid: None})

    def infeasible(enabled: list[str]) -> bool:
        model = explainer.model(enabled)
        model.linear(None)
        forcing.apply(model)
        return model.solve_linear(deadline)[0] == "infeasible"

    facts = [g.name for g in explainer.groups if g.fact]
    policies = [g.name for g in explainer.groups if not g.fact]
    if infeasible(facts):
        facts, policies = [], facts
    if not infeasible([*facts, *policies]):
        return []
    kept = list(policies)
    for name in policies:
        rest = [k for k in kept if k != name]
        if infeasible([*facts, *rest]):
            kept = rest
    return kept


def replan_tasks(state: FrontierState, items: Sequence[tuple[str, bool]]) -> list[dict[str, Any]]:
    """A task: for each ``(project, chosen)``, the full plan with the project forced out (when
    the base plan chose it) or in at its best round (when not), every other choice free; each
    from the base plan's cut pool, a forced-out one from the base plan less that project."""
    from portopt.model.forcing import Forcing
    from portopt.model.terms import Solution

    base = state.sweep
    sweep = copy.copy(base)
    sweep.milp = DirectModel(base.data, base.cover, base.config)
    sweep.lp = None
    d = base.data
    index = {pid: q for q, pid in enumerate(d.projects)}
    rows = []
    for pid, chosen in items:
        sweep.coverage_pool = dict(base.coverage_pool)
        sweep.cvar_pool = dict(base.cvar_pool)
        cols = d.columns_of(index[pid])
        if chosen:
            assert base.last is not None
            y0 = np.round(base.last.y)
            y0[cols] = 0.0
            sweep.last = Solution(y=y0, f=np.asarray(base.last.f) * (y0 > 0.5))
            sweep.forcing = Forcing({}, (pid,))
        else:
            sweep.last = None
            sweep.forcing = Forcing({pid: None})
        sweep.update(base.config)
        result = sweep.solve()
        row: dict[str, Any] = {
            "project": pid,
            "chosen": chosen,
            "status": result.status,
            "objective": result.objective,
            "mip_gap": result.mip_gap,
            "round": None,
        }
        if result.solution is not None and not chosen:
            k = int(cols[np.argmax(np.asarray(result.solution.y)[cols])])
            row["round"] = d.quarter_label(int(d.proposal_q[k]))
        rows.append(row)
    return rows


def replan_values(
    config: RunConfig,
    sweep: DirectSweep,
    allocation: Any,
    project: Sequence[str],
    committed: Sequence[bool],
    workers: int | None = None,
    mapper: Mapper | None = None,
    helpers: Helpers | None = None,
) -> list[Any]:
    """Each project's value to the plan as the difference of two full plans (coverage points,
    :class:`portopt.model.marginal.MarginalValue`): the base plan minus the plan with it
    forced out, or the plan with it forced in at its best round minus the base plan; the
    re-plans solved in ``workers`` processes (or through ``mapper``), each from the base plan's
    cuts. A committed project has no value (it cannot be taken out)."""
    from portopt.model.marginal import POINTS, MarginalValue

    state = frontier_state(
        sweep, allocation, np.zeros((0, len(project)), bool), np.zeros(0), project
    )
    y = np.asarray(allocation.y) > 0.5
    ids = list(dict.fromkeys(str(p) for p in project))
    chosen = {pid: bool(y[[j for j, p in enumerate(project) if p == pid]].any()) for pid in ids}
    held = {str(p) for p, c in zip(project, committed, strict=True) if c}
    items = [(pid, chosen[pid]) for pid in ids if pid not in held]
    results = run_items(replan_tasks, state, items, workers, mapper, dealt=True, helpers=helpers)
    by_id = {r["project"]: r for r in results}
    base = POINTS * float(allocation.objective)
    gap0 = float(allocation.mip_gap or 0.0)
    out = []
    for pid in ids:
        if pid in held:
            out.append(MarginalValue(pid, True, base, None, None, None, False, "committed"))
            continue
        r = by_id[pid]
        other = None if r["objective"] is None else POINTS * float(r["objective"])
        gap = r["mip_gap"]
        if other is None:
            why = "taken out" if chosen[pid] else "added"
            reason = f"cannot be {why}: no plan satisfies every rule ({r['status']})"
            value = MarginalValue(pid, chosen[pid], None, None, None, gap, False, reason)
            if not chosen[pid] and r["status"] == "infeasible":
                value.kept_out_by = kept_out_by(state, pid)
                if value.kept_out_by:
                    reason = "cannot be added: no plan satisfies " + " and ".join(value.kept_out_by)
                    value.reason = reason + (
                        " with it (dropping any one of them lets it in)"
                        if len(value.kept_out_by) > 1
                        else " with it: that rule alone keeps it out"
                    )
            out.append(value)
            continue
        v_in, v_out = (base, other) if chosen[pid] else (other, base)
        g_in, g_out = (gap0, gap) if chosen[pid] else (gap, gap0)
        within = abs(v_in - v_out) <= (g_in or 0.0) * abs(v_in) + (g_out or 0.0) * abs(v_out)
        reason = (
            "forced out: the best plan without it"
            if chosen[pid]
            else f"forced in: the best plan with it, proposed in {r['round']}"
        )
        out.append(MarginalValue(pid, chosen[pid], v_in, v_out, v_in - v_out, gap, within, reason))
    return out


__all__ = [
    "COLUMNS",
    "FLOOR_KEY",
    "FRONTIER_FILE",
    "FrontierState",
    "Mapper",
    "at_floor",
    "chunks",
    "configured_point",
    "covered_point",
    "frontier_floors",
    "frontier_levels",
    "frontier_state",
    "frontier_table",
    "kept_out_by",
    "plan_frontier",
    "plan_only",
    "replan_tasks",
    "replan_values",
    "solve_floors",
    "solve_frontier",
    "solve_levels",
    "solve_points",
]
