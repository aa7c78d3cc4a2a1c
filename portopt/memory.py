r"""How much memory a run or a plan will take, estimated before any work, and the refusal when
it will not fit.

A job's memory is dominated by arrays whose sizes follow from the config and the catalog: S
optimisation and E evaluation scenarios, :math:`P_e` engine columns (a plan's (project, start)
pairs), :math:`P_m` model columns (its (project, round) pairs; a run has one of each per
project, :math:`P_e = P_m = P`), K chokepoints, H quarters, ``b(P)`` the bytes of one scenario
of P columns. What a stage makes and the job keeps to its end, plus the largest of what a stage
holds only while it runs:

.. math::

    M = M_0 + S\,b(P_e) + [\text{plan}]\, 48\,S P_m + m_F\,S P_m
        + E\,(a\,(3 \cdot 8 + 4K + 3 \cdot 4H) + [\text{plan}]\,8)
        + \max(M_\mathrm{engine},\ [\text{plan}]\,57\,S P_m,\
                1.4\,B\,b_H(P) + 16 E K + 64\,\mathrm{MiB},\ 16\,S P_m),

with :math:`M_0` the interpreter and libraries (:data:`BASE_BYTES`); the engine's scenarios;
a plan's model columns with Japan's declines applied (48 B of fields each); the allocation
model, :math:`m_F` bytes per (scenario, model column) of its formulation (:data:`MODEL_BYTES`);
the evaluation's per-scenario aggregates (:class:`portopt.evaluate.Aggregates`, a = 2 for a
plan's figures with and without declines, 1 for a run) and a plan's committed capital per
scenario. The stages' transient memory: the engine's working arrays
(:math:`M_\mathrm{engine}` = ``scenarios.chunk_memory_mb``), a plan's declines
(:data:`DECLINE_BYTES`), a block of B evaluation scenarios with their cash paths and the
summaries of the evaluation, and the optimisation scenarios written as Parquet
(:data:`PARQUET_BYTES`). Every constant is measured (bench/RESULTS.md, "Memory"; the command
is ``python bench/bench_memory.py plan KEY=VALUE ...``).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Bytes a run will hold at its peak, by what holds them."""

    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def __str__(self) -> str:
        shown = ", ".join(f"{name} {gib(b)}" for name, b in self.parts.items() if b >= MIB)
        return f"{gib(self.total)} ({shown})"


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


def run_estimate(config: RunConfig, columns: Columns, formulation: str) -> MemoryEstimate:
    """M for a run or a plan over ``columns``, solved with ``formulation`` (the module
    docstring), by part: what the job keeps, then the largest of the stages' transient memory.
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
    stages = {
        "scenario engine": int(sc.chunk_memory_mb * MIB),
        "declines": s * p_model * DECLINE_BYTES if planned else 0,
        # the coverage quantiles take a float64 copy of the kept coverage and partition a
        # second; the cash bands copy at most outputs.BANDS_BLOCK_BYTES at a time
        "evaluation block and summaries": int(
            EVALUATION_BLOCKS * block * scenario_bytes(p, k, h) + e * 2 * 8 * k + 64 * MIB
        ),
        "scenario files": s * p_model * PARQUET_BYTES if config.output.scenarios_parquet else 0,
    }
    widest = max(stages, key=lambda name: stages[name])
    return MemoryEstimate(
        {
            "interpreter and libraries": BASE_BYTES,
            "optimisation scenarios": s * scenario_bytes(p_engine, k),
            "model's columns (declined)": 0 if columns.identity else s * p_model * FIELD_BYTES,
            f"allocation model ({formulation})": s * p_model * MODEL_BYTES[formulation],
            "evaluation aggregates": e * per_eval,
            f"{widest} (the largest stage)": stages[widest],
        }
    )


def check_run_fits(config: RunConfig, columns: Columns | Catalog, formulation: str) -> None:
    """Refuse, before any work, a run of ``config`` over ``columns`` (or one column per project
    of a catalog) that would not fit in the memory available (:func:`run_estimate`,
    :func:`check_fits`)."""
    if isinstance(columns, Catalog):
        columns = Columns.one_per_project(columns)
    sc = config.scenarios
    check_fits(
        run_estimate(config, columns, formulation),
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
    if estimate.total > limit:
        raise ConfigError(
            [
                Problem(
                    keys,
                    None,
                    None,
                    f"this run needs about {estimate}, more than the {gib(limit)} of memory"
                    " available; lower the scenario counts (memory grows linearly with each)",
                )
            ],
            "the run would not fit in memory",
        )
