r"""How much memory a run or a plan will take, estimated before any work, and the refusal when
it will not fit.

A job's memory is dominated by arrays whose sizes follow from the config and the catalog: S
optimisation and E evaluation scenarios, :math:`P_e` engine columns (a plan's (project, start)
pairs), :math:`P_m` model columns (its (project, round) pairs; a run has one of each per
project, :math:`P_e = P_m = P`), K chokepoints, H quarters, ``b(P)`` the bytes of one scenario
of P columns. The stage that holds the most: what the job keeps by then, and what the stage
holds while it runs (the estimate's parts are that stage's; a stage does not count another's
transient memory, nor what is made after it):

.. math::

    M = M_0 + S\,b(P_e) + \max(M_\mathrm{engine},\ [\text{plan}]\,(48 + 57)\,S P_m,\
        [\text{plan}]\, 48\,S P_m + m_F\,S P_m
        + \max(A + 1.4\,B\,b_H(P) + 16 E K + 64\,\mathrm{MiB},\ A + 16\,S P_m,\
        [\text{frontier}]\,(F_0 + 48\,S P_m + n\,(W_0 + 160\,S P_m) + 16\,\mathrm{MiB}))),

    A = E\,(a\,(3 \cdot 8 + 4K + 3 \cdot 4H) + [\text{plan}]\,8),

with :math:`M_0` the interpreter and libraries (:data:`BASE_BYTES`); the engine's scenarios;
a plan's model columns with Japan's declines applied (48 B of fields each); the allocation
model, :math:`m_F` bytes per (scenario, model column) of its formulation (:data:`MODEL_BYTES`).
The stages: the engine's working arrays (:math:`M_\mathrm{engine}` =
``scenarios.chunk_memory_mb``); a plan's declines (:data:`DECLINE_BYTES`); the evaluation,
its per-scenario aggregates A (:class:`portopt.evaluate.Aggregates`, a = 2 for a plan's
figures with and without declines, 1 for a run, and a plan's committed capital per scenario)
with a block of B evaluation scenarios, their cash paths and the summaries; the optimisation
scenarios written as Parquet beside the aggregates (:data:`PARQUET_BYTES`); and a plan's
frontier (or its re-plans, ``plan.marginal: replan``) on the cut model: the plan's own
memory while it redraws the declines and writes the workers' state (:math:`F_0`,
:data:`FRONTIER_BYTES`), and n solvers at once (:func:`frontier_workers`): this process and
n - 1 worker processes (:class:`portopt.tradeoff.Helpers`), each a fresh interpreter
(:data:`WORKER_BASE_BYTES`) holding the state it was sent (:data:`WORKER_BYTES`), with the
pool's resource tracker (:data:`TRACKER_BYTES`); this process solves from its own state,
without reading a copy. The measured peak is the whole process tree's: the largest sum of the
resident memory of the plan and its workers at one moment (``bench/bench_memory.py``). Every
constant is measured (bench/RESULTS.md, "Memory of a plan"; the command is ``python
bench/bench_memory.py plan KEY=VALUE ...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import psutil

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.inputs import simulated_quarters
from portopt.engine.scenario_set import CASH_FIELDS, PROJECT_FIELDS, SCENARIO_FIELDS
from portopt.errors import ConfigError, Problem
from portopt.plan.columns import Columns

MIB = 2**20
BASE_BYTES = 300 * MIB
"""M_0: peak RSS of a run of 2,000 + 2,000 scenarios of the bundled catalog is 267 MiB
(``/usr/bin/time -v portopt run default --set scenarios.optimisation=2000 --set
scenarios.evaluation=2000 --set solver.name=highs_direct --set output.report=false --set
output.scenarios_parquet=false``), rounded up."""
CUT_MODEL_BYTES = 32
"""m_P of ``solver.name: highs_direct`` (the cut model), per (scenario, project): peak RSS grows
by 73 B per (scenario, project) from 2,000 to 20,000 optimisation scenarios of the bundled
catalog (267 to 344 MiB; the command of :data:`BASE_BYTES` with
``scenarios.optimisation=20000``), 48 B of it the scenarios themselves; rounded up."""
CVXPY_MODEL_BYTES = 800
"""m_P of the CVXPY model (every other solver), per (scenario, project): its rows grow as
scenarios × (chokepoints + 1); peak RSS is 632 MiB at 10,000 optimisation scenarios of the
bundled catalog, 365 MiB above the highs_direct 2,000-scenario run (an upper bound on the
growth), 736 B per (scenario, project) beyond the scenarios' own 48 B (the command of
:data:`BASE_BYTES` with ``scenarios.optimisation=10000`` and the default solver); rounded up."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run will hold at its peak, by what holds them, and the stage that peak falls in
    (with every stage's total beside it)."""

    parts: dict[str, int]
    stage: str = ""
    """The stage the peak falls in; "" for a command of one stage."""
    stages: dict[str, int] = field(default_factory=dict)
    """Every stage's total, the peak's among them."""

    @classmethod
    def at_peak(cls, stages: dict[str, dict[str, int]]) -> MemoryEstimate:
        """The estimate of the stage whose parts add up to the most."""
        totals = {name: sum(parts.values()) for name, parts in stages.items()}
        peak = max(totals, key=lambda name: totals[name])
        return cls(stages[peak], peak, totals)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def __str__(self) -> str:
        shown = ", ".join(f"{name} {gib(b)}" for name, b in self.parts.items() if b >= MIB)
        if not self.stage:
            return f"{gib(self.total)} ({shown})"
        others = ", ".join(f"{n} {gib(b)}" for n, b in self.stages.items() if n != self.stage)
        return (
            f"{gib(self.total)} at its peak, in the {self.stage} stage ({shown};"
            f" the other stages: {others})"
        )


def gib(n_bytes: float) -> str:
    """Bytes as GiB with two decimals."""
    return f"{n_bytes / 2**30:,.2f} GiB"


def scenario_bytes(n_projects: int, n_chokepoints: int, quarters: int = 0) -> int:
    """b: the bytes of one scenario of a :class:`~portopt.engine.scenario_set.ScenarioSet`,
    plus its portfolio cash paths over ``quarters`` when given."""
    size = [np.dtype(d).itemsize for d in PROJECT_FIELDS.values()]
    per_scenario = [np.dtype(d).itemsize for d in SCENARIO_FIELDS.values()]
    return (
        n_projects * sum(size)
        + 8 * n_chokepoints
        + sum(per_scenario)
        + 8 * len(CASH_FIELDS) * quarters
    )


def evaluation_block(config: RunConfig, n_projects: int, n_chokepoints: int, quarters: int) -> int:
    """B: evaluation scenarios generated at a time, so a block fits ``chunk_memory_mb``;
    ``quarters`` is H, the length of the portfolio's cash paths."""
    sc = config.scenarios
    per = scenario_bytes(n_projects, n_chokepoints, quarters)
    return int(max(1, min(sc.evaluation, sc.chunk_memory_mb * MIB // per)))


FIELD_BYTES = sum(np.dtype(d).itemsize for d in PROJECT_FIELDS.values())
"""Bytes of one (scenario, column) of a scenario set's project fields (48)."""
DECLINE_BYTES = FIELD_BYTES + 8 + 1
"""A plan's declines, per (scenario, model column), while they are drawn: the declined copy of
every field beside the undeclined one (48), the uniforms (8) and the mask (1). Measured: the
optimisation stage's peak grows by 151 B per (scenario, model column) from 2,000 to 10,000
scenarios, against 42 + 48 + 57 = 147 B of engine scenarios, model columns and declines."""
EVALUATION_BLOCKS = 1.4
"""The evaluation stage holds a block of scenarios with their cash paths (at most
``chunk_memory_mb``) and the engine's working arrays: measured, a plan's evaluation stage
peaks about 1.4 blocks above what it keeps (360 MiB at the default 256 MiB; bench/RESULTS.md,
"Memory of a plan")."""
PARQUET_BYTES = 16
"""Bytes per (scenario, model column) while ``scenarios/projects.parquet`` is written: the
scenario index (8) and the project codes (4), the never-masks of the integer fields and their
null-masked copies; the float fields go to Arrow without a copy."""
MODEL_BYTES = {"cuts": CUT_MODEL_BYTES, "full": CVXPY_MODEL_BYTES}
"""m_F by formulation (:func:`portopt.model.formulation`)."""
WORKER_BASE_BYTES = 320 * MIB
"""W_0: a worker process of the frontier (or of ``plan.marginal: replan``) apart from its
state: a fresh interpreter with what :mod:`portopt.tradeoff` imports (its high-water mark is
192 MiB, ``python -c "import portopt.tradeoff, portopt.model.explain"``) and what its solves
hold at their peak (the deployment levels' cut models and HiGHS). Measured: the worker of the
default plan peaked at 359 MiB at 400 optimisation scenarios and 513 MiB at 2,000, less its
state (:data:`WORKER_BYTES`) 319 and 315 MiB (7 December 2026, ``python
bench/bench_memory.py plan``)."""
STATE_BYTES = 88
"""Bytes per (scenario, model column) of the state each worker receives
(:class:`portopt.tradeoff.FrontierState`, pickled): the model's declined columns (56), the cut
model's scenario data (25) and coverage split (7), the declines' mask (1). Measured: 84 B at
1,000 optimisation scenarios of the bundled plan (``len(pickle.dumps(state))``; 76 B before
the engine's ``pv_floor``)."""
WORKER_BYTES = 2 * STATE_BYTES
"""A worker's bytes per (scenario, model column) at its peak: the pickled state as read (from a
file in the system's temporary folder, which holds it while the workers run:
:func:`portopt.tradeoff.run_items`), then unpickled beside those bytes (2 × 80); the cut model
it compiles afterwards is smaller. Measured: the largest worker of the default plan peaked at
383 MiB at 2,000 optimisation scenarios and 1,139 MiB at 10,000 (675 model columns; the
estimate is 406 and 1,230 MiB; bench/RESULTS.md, "Memory of a plan"), 424 MiB at 2,000 once
each worker solved its points one task after another ("The frontier one task per point")."""
FRONTIER_BASE_BYTES = 160 * MIB
""":math:`F_0`, the fixed part of the plan's own memory while its frontier runs
(:data:`FRONTIER_BYTES`)."""
FRONTIER_BYTES = FIELD_BYTES
"""The plan's own memory while its frontier runs, above what it keeps, at the moment the
process tree peaks: a fixed :data:`FRONTIER_BASE_BYTES` and this many bytes per (scenario,
model column), the declined copy of the fields while the declines' mask is redrawn for the
workers' state. Measured on the default plan (the tree's peak less its workers' and the
tracker's, against the plan before its frontier): about +180 MiB at 2,000 optimisation
scenarios and +450 MiB at 10,000; 160 MiB and 48 B per (scenario, model column) fit both. The
plan's own peak in that stage is higher (+223 MiB and +1,228 MiB) but falls earlier, while it
pickles a worker's state, before the workers hold theirs. At 400 scenarios the plan grows
40 MiB (over-counted by about 130 MiB), while each worker, whose solve rather than its state
sets its peak there (300 MiB measured), is under-counted by about 60 MiB."""
TRACKER_BYTES = 16 * MIB
"""The resource tracker process that a spawning process pool starts (12 MiB measured)."""


def frontier_workers(config: RunConfig, columns: Columns, formulation: str) -> int | None:
    """Solvers a plan's frontier points (:func:`portopt.tradeoff.plan_frontier`) or its
    re-plans (``plan.marginal: replan``) run on at once, this process and the worker processes
    beside it: ``plan.frontier.workers``, else every core this process may use, at most one per
    point when there are no deployment levels; 0 when the points are solved in this process
    alone (one solver); None when there is no frontier and no re-plan (a one-shot run, the full
    CVXPY model, ``plan.frontier.enabled`` false)."""
    from portopt.plan.frontier import default_workers, frontier_floors

    if not columns.planned or formulation != "cuts":
        return None
    floors = len(frontier_floors(config))
    replan = config.plan.marginal == "replan"
    if floors < 2 and not replan:
        return None
    w = config.plan.frontier.workers or default_workers()
    if not replan and not config.plan.frontier.deployment_step_usd:
        w = min(w, floors - 1)  # a point each at most; deployment levels are more tasks
    return w if w > 1 else 0


def run_estimate(
    config: RunConfig, columns: Columns, formulation: str, local_workers: bool = True
) -> MemoryEstimate:
    """M for a run or a plan over ``columns``, solved with ``formulation`` (the module
    docstring), by part at the stage that holds the most: what the job keeps by then, and what
    that stage holds while it runs. ``local_workers``: a plan's frontier solved in worker
    processes on this machine (not through a Dask cluster).
    """
    sc = config.scenarios
    s, e = sc.optimisation, sc.evaluation
    k = len(columns.projects.chokepoint_ids)
    p_engine = len(columns.engine_catalog.project_ids)
    p_model = len(columns.catalog.project_ids)
    p = len(columns.projects.project_ids)
    h = simulated_quarters(columns.engine_catalog, config)
    planned = columns.planned
    block = evaluation_block(config, p, k, h)
    aggregates = 2 if planned else 1  # a plan's figures with and without Japan's declines
    per_eval = aggregates * (3 * 8 + 4 * k + 4 * len(CASH_FIELDS) * h) + (8 if planned else 0)
    kept = {
        "interpreter and libraries": BASE_BYTES,
        "optimisation scenarios": s * scenario_bytes(p_engine, k),
        "model's columns (declined)": 0 if columns.identity else s * p_model * FIELD_BYTES,
        f"allocation model ({formulation})": s * p_model * MODEL_BYTES[formulation],
    }
    evaluated = {"evaluation aggregates": e * per_eval}
    engine = ["interpreter and libraries", "optimisation scenarios"]
    declines = [*engine, "model's columns (declined)"]  # the model is built after them
    stages = {
        "scenario engine": {
            **{name: kept[name] for name in engine},
            "engine's working arrays": int(sc.chunk_memory_mb * MIB),
        },
        "declines": {
            **{name: kept[name] for name in declines},
            "declines": s * p_model * DECLINE_BYTES if planned else 0,
        },
        "evaluation": {
            **kept,
            **evaluated,
            # the coverage quantiles take a float64 copy of the kept coverage and partition a
            # second; the cash bands copy at most outputs.BANDS_BLOCK_BYTES at a time
            "evaluation block and summaries": int(
                EVALUATION_BLOCKS * block * scenario_bytes(p, k, h) + e * 2 * 8 * k + 64 * MIB
            ),
        },
    }
    if config.output.scenarios_parquet:
        stages["scenario files"] = {
            **kept,
            **evaluated,
            "scenario files": s * p_model * PARQUET_BYTES,
        }
    n = frontier_workers(config, columns, formulation)
    if n is not None:
        helpers = max(0, n - 1) if local_workers else 0  # this process is the n-th solver
        each = WORKER_BASE_BYTES + s * p_model * WORKER_BYTES
        stages["frontier"] = {
            **kept,
            "frontier's share in this process": FRONTIER_BASE_BYTES + s * p_model * FRONTIER_BYTES,
            f"frontier's {helpers} worker process{'es' if helpers != 1 else ''}": helpers * each
            + TRACKER_BYTES
            if helpers
            else 0,
        }
    return MemoryEstimate.at_peak(stages)


def check_run_fits(
    config: RunConfig,
    columns: Columns | Catalog,
    formulation: str,
    local_workers: bool = True,
) -> None:
    """Refuse, before any work, a run of ``config`` over ``columns`` (or one column per project
    of a catalog) that would not fit in the memory available (:func:`run_estimate`,
    :func:`check_fits`)."""
    if isinstance(columns, Catalog):
        columns = Columns.one_per_project(columns)
    sc = config.scenarios
    check_fits(
        run_estimate(config, columns, formulation, local_workers),
        f"scenarios.optimisation={sc.optimisation}, scenarios.evaluation={sc.evaluation}",
    )


def scenarios_estimate(n: int, n_projects: int, n_chokepoints: int) -> MemoryEstimate:
    """M for ``portopt scenarios``: the interpreter, the n scenarios it writes, and the Parquet
    files while they are written (:data:`PARQUET_BYTES`)."""
    return MemoryEstimate(
        {
            "interpreter and libraries": BASE_BYTES,
            "scenarios": n * scenario_bytes(n_projects, n_chokepoints),
            "scenario files": n * n_projects * PARQUET_BYTES,
        }
    )


def available_bytes() -> int:
    """Memory the operating system can give this process now without swapping."""
    return int(psutil.virtual_memory().available)


def check_fits(estimate: MemoryEstimate, keys: str, limit: int | None = None) -> None:
    """Raise :class:`ConfigError` naming ``keys`` (what sets the sizes) when ``estimate`` is
    above ``limit`` (default: :func:`available_bytes`)."""
    limit = available_bytes() if limit is None else limit
    hint = "lower the scenario counts (memory grows linearly with each)"
    if estimate.stage == "frontier":
        hint += (
            "; or fewer frontier worker processes (plan.frontier.workers, each holds a copy of"
            " the optimisation scenarios) or none (plan.frontier.enabled=false)"
        )
    if estimate.total > limit:
        raise ConfigError(
            [
                Problem(
                    keys,
                    None,
                    None,
                    f"this run needs about {estimate}, more than the {gib(limit)} of memory"
                    f" available; {hint}",
                )
            ],
            "the run would not fit in memory",
        )
