"""``portopt run``'s job: the pipeline (:mod:`portopt.pipeline`) over one column per project,
at its earliest start.

The one-shot selection: which projects to fund and with how much, all at once, evaluated on
fresh scenarios. Its re-solves (``marginal``) force each candidate in or out and relax each
binding rule by one step (:mod:`portopt.model.marginal`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.model.marginal import as_records, marginal_values, relaxations
from portopt.pipeline import (
    LOW_COVERAGE,
    MARGINAL_NOTE,
    STAGES,
    Choice,
    Outcome,
    PlanResult,
    RunProgress,
    RunResult,
    evaluation_blocks,
    execute,
    proved,
    sector_shares,
    with_backend,
)
from portopt.plan.columns import Columns
from portopt.plan.support import with_support


class OneShot:
    """The one-shot run: one column per project, the re-solves of every candidate and rule."""

    name = "run"
    labels: dict[str, str] = {}  # noqa: RUF012 (read only)

    def prepare(self, config: RunConfig) -> RunConfig:
        return config

    def columns(self, catalog: Catalog, config: RunConfig) -> Columns:
        return Columns.one_per_project(with_support(catalog, config))

    def marginal(
        self, config: RunConfig, chosen: Choice, advance: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        """metrics.json's ``marginal_values`` and ``relaxations``: re-solves of the cut model
        that chose the portfolio; empty, with a note, on the full formulation or a portfolio
        no solver proved (the greedy fallback)."""
        allocation, model = chosen.allocation, chosen.model
        if not proved(allocation, model):
            return {"marginal_values": [], "relaxations": [], "marginal_note": MARGINAL_NOTE}
        fund = np.asarray(allocation.fund_usd, dtype=np.float64)
        shares = sector_shares(config, chosen.columns.catalog, fund)
        binding = [
            s for s, v in shares.items() if v["max"] is not None and v["share"] >= v["max"] - 1e-6
        ]
        gap = config.solver.mip_gap if allocation.status == "optimal" else allocation.mip_gap
        values = marginal_values(model, allocation.y, allocation.objective, gap, config, advance)
        steps = relaxations(model, allocation.objective, gap, config, binding)
        return {"marginal_values": as_records(values), "relaxations": as_records(steps)}

    def outputs(self, outcome: Outcome) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        return {}, {}


def run(
    config: RunConfig,
    out_dir: Path | None = None,
    backend: str | None = None,
    progress: RunProgress | None = None,
    write: bool = True,
) -> PlanResult:
    """Run every stage and write the output folder (``out_dir``, else ``config.output.dir``;
    nothing when ``write`` is false).

    ``backend`` overrides ``config.backend``. Raises a :class:`~portopt.errors.PortoptError`
    for a user's mistake or an infeasible configuration; nothing is written then.
    """
    config = with_backend(config, backend)
    target = None if not write else Path(out_dir if out_dir is not None else config.output.dir)
    return execute(OneShot(), config, target, progress)


__all__ = [
    "LOW_COVERAGE",
    "STAGES",
    "OneShot",
    "RunProgress",
    "RunResult",
    "evaluation_blocks",
    "run",
]
