"""How much memory a run will take, estimated before any work, and the refusal when it will not
fit.

A run's memory is dominated by arrays whose sizes follow from the config and the catalog
(P projects, K chokepoints, H quarters, S optimisation and E evaluation scenarios, ``b`` bytes
of one scenario's outcomes):

.. math::

    M = M_0 + S\\,(b + m_P P) + M_\\mathrm{engine}
        + E\\,(3 \\cdot 8 + 4K + 3 \\cdot 4H) + 2\\,B\\,(b + 3 \\cdot 8H),
    \\qquad b = P \\sum_{\\text{project fields}} \\mathrm{size} + 8K
        + \\sum_{\\text{scenario fields}} \\mathrm{size},

with :math:`M_0` the interpreter and libraries, :math:`m_P` the allocation model's bytes per
(scenario, project) (:data:`CUT_MODEL_BYTES` or :data:`CVXPY_MODEL_BYTES`),
:math:`M_\\mathrm{engine}` = ``scenarios.chunk_memory_mb``, the evaluation's per-scenario
aggregates (:class:`portopt.evaluate.Aggregates`) and a block of B evaluation
scenarios with their cash paths, held twice while it is folded in.
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


def run_estimate(
    config: RunConfig, n_projects: int, n_chokepoints: int, quarters: int
) -> MemoryEstimate:
    """M for ``portopt run`` (the module docstring), by part; ``quarters`` is H
    (:func:`portopt.engine.inputs.simulated_quarters`)."""
    sc = config.scenarios
    h = quarters
    block = evaluation_block(config, n_projects, n_chokepoints, h)
    model_bytes = CUT_MODEL_BYTES if config.solver.name == "highs_direct" else CVXPY_MODEL_BYTES
    return MemoryEstimate(
        {
            "interpreter and libraries": BASE_BYTES,
            "optimisation scenarios": sc.optimisation * scenario_bytes(n_projects, n_chokepoints),
            "allocation model": sc.optimisation * n_projects * model_bytes,
            "engine working memory": int(sc.chunk_memory_mb * MIB),
            "evaluation aggregates": sc.evaluation
            * (3 * 8 + 4 * n_chokepoints + 4 * len(CASH_FIELDS) * h),
            "evaluation block": 2 * block * scenario_bytes(n_projects, n_chokepoints, h),
            # the coverage quantiles take a float64 copy of the kept coverage and partition a
            # second; the cash bands copy at most outputs.BANDS_BLOCK_BYTES at a time
            "evaluation summaries": sc.evaluation * 2 * 8 * n_chokepoints + 64 * MIB,
        }
    )


def check_run_fits(catalog: Catalog, config: RunConfig) -> None:
    """Refuse, before any work, a run of ``config`` on ``catalog`` that would not fit in the
    memory available (:func:`run_estimate`, :func:`check_fits`)."""
    sc = config.scenarios
    estimate = run_estimate(
        config,
        len(catalog.project_ids),
        len(catalog.chokepoint_ids),
        simulated_quarters(catalog, config),
    )
    check_fits(
        estimate,
        f"scenarios.optimisation={sc.optimisation}, scenarios.evaluation={sc.evaluation}",
    )


def scenarios_estimate(n: int, n_projects: int, n_chokepoints: int) -> MemoryEstimate:
    """M for ``portopt scenarios``: the interpreter and the n scenarios it writes."""
    return MemoryEstimate(
        {
            "interpreter and libraries": BASE_BYTES,
            "scenarios": n * scenario_bytes(n_projects, n_chokepoints),
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
