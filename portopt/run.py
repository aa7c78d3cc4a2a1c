"""One run of portopt: catalog → scenarios → allocation → out-of-sample evaluation → outputs.

Stages, each timed (wall seconds, ``metrics.json["timings_s"]``):

1. ``catalog``: load and validate the catalog (bad input stops here, before any work);
2. ``scenarios_optimisation``: scenarios ``[0, S_opt)``;
3. ``optimise``: the allocation model (an infeasible configuration raises
   :class:`~portopt.errors.InfeasibleError` with its explanation);
4. ``scenarios_evaluation``: fresh scenarios ``[S_opt, S_opt + S_eval)``, with the chosen fund
   dollars as portfolio weights so the engine also returns per-quarter portfolio cash,
   generated a block at a time (:func:`portopt.memory.evaluation_block`) and each folded into
   the evaluation's running aggregates (:class:`portopt.evaluate.Aggregates`), then dropped;
5. ``evaluate``: the chosen portfolio's figures and tables from those aggregates;
6. ``write`` and ``report``: the output folder, written to a temporary sibling and renamed into
   place (:func:`portopt.outputs.staged_output`), so a failure at any stage leaves nothing.

Before the first scenario, the run estimates its memory (:mod:`portopt.memory`) and refuses,
with the estimate and the limit, when it would not fit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from portopt._version import __version__
from portopt.catalog import Catalog, load_catalog
from portopt.config import RunConfig
from portopt.engine.generate import generate_scenarios
from portopt.engine.inputs import simulated_quarters
from portopt.engine.scenario_set import CASH_FIELDS, ScenarioSet
from portopt.errors import ConfigError, Problem
from portopt.evaluate import Aggregates, Evaluation, evaluation_of, portfolio_figures
from portopt.memory import check_run_fits, evaluation_block
from portopt.model import Allocation, DirectSweep, build_model, optimize
from portopt.model.marginal import as_records, marginal_values, relaxations
from portopt.outputs import (
    ALLOCATION_FILE,
    COVERAGE_FILE,
    METRICS_FILE,
    SCENARIOS_DIR,
    bands,
    check_target,
    histogram,
    staged_output,
    write_json,
    write_table,
)
from portopt.plan.calendar import shift
from portopt.report import write_report
from portopt.schema import conform_metrics
from portopt.vocabulary import SECTORS

STAGES: dict[str, str] = {
    "catalog": "Loading and checking the catalog",
    "scenarios_optimisation": "Generating optimisation scenarios",
    "optimise": "Choosing the portfolio",
    "marginal": "Re-solving with each candidate forced in or out, and each rule relaxed",
    "scenarios_evaluation": "Generating fresh evaluation scenarios",
    "evaluate": "Evaluating the portfolio out of sample",
    "write": "Writing tables and scenarios",
    "report": "Writing the report",
}
"""Stage keys (as in ``metrics.json``) and what the terminal shows while each runs."""


class RunProgress(Protocol):
    """What :func:`run` tells a progress display (the CLI's is a rich progress bar)."""

    def start(self, stage: str, label: str, total: int | None) -> None:
        """A stage begins; ``total`` is its number of steps, or None for a spinner."""

    def advance(self, done: int, total: int) -> None:
        """``done`` of ``total`` steps of the current stage are finished."""

    def finish(self, stage: str, seconds: float) -> None:
        """The stage ended after ``seconds`` of wall time."""


@dataclass
class RunResult:
    """What a run produced: the output folder, the tables it wrote and ``metrics.json``."""

    out_dir: Path
    config: RunConfig
    allocation: pd.DataFrame
    coverage: pd.DataFrame
    metrics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


class _Stages:
    """Times each stage into ``timings`` and forwards it to the progress display."""

    def __init__(self, progress: RunProgress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(
        self, stage: str, total: int | None = None, label: str | None = None
    ) -> Iterator[None]:
        if self.progress is not None:
            self.progress.start(stage, label or STAGES[stage], total)
        t0 = time.perf_counter()
        yield
        self.timings[stage] = time.perf_counter() - t0
        if self.progress is not None:
            self.progress.finish(stage, self.timings[stage])

    @property
    def advance(self) -> Callable[[int, int], None] | None:
        return None if self.progress is None else self.progress.advance


def run(
    config: RunConfig,
    out_dir: Path | None = None,
    backend: str | None = None,
    progress: RunProgress | None = None,
) -> RunResult:
    """Run every stage and write the output folder (``out_dir``, else ``config.output.dir``).

    ``backend`` overrides ``config.backend``. Raises a :class:`~portopt.errors.PortoptError`
    for a user's mistake or an infeasible configuration; nothing is written then.
    """
    if backend is not None:
        config = _with_backend(config, backend)
    target = Path(out_dir if out_dir is not None else config.output.dir)
    check_target(target, config.output.overwrite)
    s_opt, s_eval = config.scenarios.optimisation, config.scenarios.evaluation
    if s_eval < 1:
        raise ConfigError(
            [
                Problem(
                    "scenarios.evaluation",
                    None,
                    None,
                    "must be at least 1 for a run: the"
                    " out-of-sample figures and allocation.csv come from these scenarios",
                )
            ],
            "no evaluation scenarios",
        )
    stage = _Stages(progress)
    t_start = time.perf_counter()

    with stage("catalog"):
        catalog = load_catalog(config.catalog)
    check_run_fits(catalog, config)
    with stage("scenarios_optimisation", s_opt, f"Generating {s_opt:,} optimisation scenarios"):
        opt = generate_scenarios(
            catalog,
            config,
            backend=config.backend,
            scenarios=range(0, s_opt),
            progress=stage.advance,
        )
    with stage("optimise"):
        model = build_model(catalog, opt, config)
        allocation = optimize(catalog, config, opt, model=model)
        allocation.in_sample = portfolio_figures(
            catalog, config, opt, allocation.y, allocation.fund_usd
        )
    with stage("marginal"):
        marginal = _marginal(config, catalog, allocation, model)
    fund = _fund_usd(allocation, catalog)
    aggregates = Aggregates(catalog, allocation.y, fund, s_eval)
    with stage("scenarios_evaluation", s_eval, f"Generating {s_eval:,} fresh evaluation scenarios"):
        for block in evaluation_blocks(catalog, config, fund, stage.advance):
            aggregates.add(block)
    with stage("evaluate"):
        evaluation = evaluation_of(allocation, catalog, config, aggregates)
        _add_marginal_columns(evaluation.allocation, marginal["marginal_values"])
        distributions = _distributions(config, aggregates)

    def metrics_of() -> dict[str, Any]:
        metrics = _metrics(
            config, catalog, allocation, evaluation, opt, distributions, stage.timings
        )
        metrics.update(marginal)
        metrics.update(_explanations(catalog, evaluation, marginal))
        return metrics

    return write_outputs(target, config, stage, t_start, evaluation, opt, metrics_of)


def write_outputs(
    target: Path,
    config: RunConfig,
    stage: _Stages,
    t_start: float,
    evaluation: Evaluation,
    opt: ScenarioSet,
    metrics_of: Callable[[], dict[str, Any]],
    tables: dict[str, pd.DataFrame] | None = None,
) -> RunResult:
    """Write the output folder, staged and renamed into place: ``tables`` (file name ->
    table), allocation.csv, coverage.csv, the scenarios, metrics.json (``metrics_of()``, called
    once the ``write`` stage is timed) and the report; the run's :class:`RunResult`."""
    with staged_output(target, config.output.overwrite) as tmp:
        with stage("write"):
            tables = {
                **(tables or {}),
                ALLOCATION_FILE: evaluation.allocation,
                COVERAGE_FILE: evaluation.coverage,
            }
            written = {name: write_table(table, tmp, name) for name, table in tables.items()}
            if config.output.scenarios_parquet:
                opt.to_parquet(tmp / SCENARIOS_DIR)
        metrics = conform_metrics(metrics_of())
        write_json(metrics, tmp / METRICS_FILE)
        if config.output.report:
            with stage("report"):
                write_report(tmp)
        metrics["timings_s"] = _timings(stage.timings, t_start)
        write_json(metrics, tmp / METRICS_FILE)
    return RunResult(
        target,
        config,
        written[ALLOCATION_FILE],
        written[COVERAGE_FILE],
        metrics,
        dict(metrics["timings_s"]),
    )


def _with_backend(config: RunConfig, backend: str) -> RunConfig:
    try:
        return RunConfig.model_validate({**config.model_dump(), "backend": backend})
    except ValueError:
        raise ConfigError(
            [Problem("--backend", None, None, f"'{backend}' is not one of auto, numpy, cupy")],
            "bad backend",
        ) from None


def _marginal(
    config: RunConfig, catalog: Catalog, allocation: Allocation, model: object
) -> dict[str, Any]:
    """metrics.json's ``marginal_values`` and ``relaxations`` (:mod:`portopt.model.marginal`):
    re-solves of the cut model that chose the plan; empty, with a note, on the full formulation
    or a plan no solver proved (the greedy fallback)."""
    if not isinstance(model, DirectSweep) or allocation.objective is None or model.milp is None:
        note = "marginal values need the cut model's solve (solver.name auto or highs_direct)"
        return {"marginal_values": [], "relaxations": [], "marginal_note": note}
    fund = _fund_usd(allocation, catalog)
    shares = _sector_shares(config, catalog, fund)
    binding = [
        s for s, v in shares.items() if v["max"] is not None and v["share"] >= v["max"] - 1e-6
    ]
    gap = config.solver.mip_gap if allocation.status == "optimal" else allocation.mip_gap
    values = marginal_values(model, allocation.y, allocation.objective, gap, config)
    steps = relaxations(model, allocation.objective, gap, config, binding)
    return {"marginal_values": as_records(values), "relaxations": as_records(steps)}


LOW_COVERAGE = 0.10
"""A chokepoint whose expected coverage is below this share of its gap is explained in
``chokepoint_explanations`` (policy choice: below a tenth, the plan leaves the gap open)."""


def _explanations(
    catalog: Catalog, evaluation: Evaluation, marginal: dict[str, Any]
) -> dict[str, Any]:
    """metrics.json's ``chokepoint_explanations``: why each chokepoint with low or zero
    expected coverage (below :data:`LOW_COVERAGE`) is covered as it is. ``verdict`` is
    ``no_capacity`` (no project of the catalog has capacity in it), ``rejected`` (candidates
    have capacity and none was chosen; each is listed with its marginal-value reason) or
    ``selected_fill_little`` (chosen projects have capacity in it but fill little of its gap
    during the window: late, failed or small), with the rejected candidates beside them."""
    cap = catalog.capacity_matrix() > 0
    ids = catalog.project_ids
    names = dict(zip(evaluation.allocation["id"], evaluation.allocation["name"], strict=True))
    chosen = dict(zip(ids, evaluation.allocation["selected"], strict=True))
    reasons = {v["project_id"]: v["reason"] for v in marginal.get("marginal_values", [])}
    out = []
    for k, row in enumerate(evaluation.coverage.itertuples(index=False)):
        if row.expected_coverage >= LOW_COVERAGE:
            continue
        has = [ids[i] for i in np.flatnonzero(cap[:, k])]
        selected = [i for i in has if chosen[i]]
        rejected = [
            {"id": i, "name": names[i], "reason": reasons.get(i, "")} for i in has if not chosen[i]
        ]
        verdict = "no_capacity" if not has else "selected_fill_little" if selected else "rejected"
        out.append(
            {
                "id": row.id,
                "name": row.name,
                "weight": float(row.weight),
                "expected_coverage": float(row.expected_coverage),
                "verdict": verdict,
                "selected": selected,
                "rejected": rejected,
            }
        )
    return {"chokepoint_explanations": out, "low_coverage_threshold": LOW_COVERAGE}


MARGINAL_COLUMNS = ("value_if_forced_in", "value_if_forced_out", "marginal_value", "reason")
"""allocation.csv's marginal-value columns (coverage points; ``reason`` for a rejected one)."""


def _add_marginal_columns(table: pd.DataFrame, values: list[dict[str, Any]]) -> None:
    by_id = {v["project_id"]: v for v in values}
    for column in MARGINAL_COLUMNS:
        table[column] = [by_id.get(pid, {}).get(column) for pid in table["id"]]
    table["within_mip_gap"] = [by_id.get(pid, {}).get("within_gap") for pid in table["id"]]


def _timings(timings: dict[str, float], t_start: float) -> dict[str, float]:
    return {**timings, "total": time.perf_counter() - t_start}


# ---------------------------------------------------------------- what metrics.json holds


def _fund_usd(allocation: Allocation, catalog: Catalog) -> np.ndarray:
    """The fund's dollars per project, in the catalog's project order."""
    if list(allocation.ids) != catalog.project_ids:
        raise RuntimeError("the allocation's projects are not the catalog's, in its order")
    return np.asarray(allocation.fund_usd, dtype=np.float64)


def evaluation_blocks(
    catalog: Catalog,
    config: RunConfig,
    fund: np.ndarray | None = None,
    advance: Callable[[int, int], None] | None = None,
) -> Iterator[ScenarioSet]:
    """The evaluation scenarios ``[S_opt, S_opt + S_eval)``, one block at a time.

    With ``fund`` (dollars per project) as portfolio weights, each block also holds the
    portfolio's cash per quarter.
    """
    s_opt, s_eval = config.scenarios.optimisation, config.scenarios.evaluation
    quarters = simulated_quarters(catalog, config)
    size = evaluation_block(config, len(catalog.project_ids), len(catalog.chokepoint_ids), quarters)
    for first in range(s_opt, s_opt + s_eval, size):
        done = first - s_opt
        yield generate_scenarios(
            catalog,
            config,
            backend=config.backend,
            scenarios=range(first, min(s_opt + s_eval, first + size)),
            weights=fund,
            progress=None if advance is None else lambda d, _, done=done: advance(done + d, s_eval),
        )


def _distributions(config: RunConfig, aggregates: Aggregates) -> dict[str, Any]:
    """Japan's recovery-ratio histogram and per-quarter cash bands, for the report.

    The recovery ratio of scenario s is :math:`\\sum_i f_i\\,\\mathrm{pvjapan}_{is} /
    \\sum_i f_i\\,\\mathrm{pvdraw}_{is}`; cash bands are the P10/P50/P90 and mean over scenarios
    of each quarter's portfolio cash (dollars, not discounted).
    """
    out: dict[str, Any] = {"recovery_ratio": histogram(aggregates.recovery())}
    cash = aggregates.cash
    if cash:
        start = config.scenarios.start
        quarters = [_quarter_label(start, t) for t in range(cash[CASH_FIELDS[0]].shape[1])]
        out["cash_per_quarter"] = {
            "quarter": quarters,
            **{k: bands(cash[k][: aggregates.n]) for k in CASH_FIELDS},
        }
    return out


def _quarter_label(start: str, t: int) -> str:
    return shift(start, t)


def _metrics(
    config: RunConfig,
    catalog: Catalog,
    allocation: Allocation,
    evaluation: Evaluation,
    opt: ScenarioSet,
    distributions: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """metrics.json: the evaluator's figures plus what a reader needs to trust and rerun them."""
    fund = np.asarray(allocation.fund_usd, dtype=np.float64)
    budget = config.model.budget_usd
    metrics: dict[str, Any] = {
        "version": __version__,
        "config_hash": config.digest(),
        "seed": config.seed,
        "catalog": catalog.source,
        "backend": opt.metadata.get("backend"),
        "device": opt.metadata.get("device"),
        **evaluation.metrics,
        "mip_gap_target": config.solver.mip_gap,
        "budget_usd": budget,
        "capital_committed_share": float(fund.sum() / budget),
        "projects": {"selected": len(allocation.selected), "candidates": len(allocation.ids)},
        "recoupment_alpha": config.model.groups.recoupment.alpha,
        "sector_shares": _sector_shares(config, catalog, fund),
        "binding_constraints": [p for p in allocation.shadow_prices if p.get("binding")],
        "notes": list(allocation.notes),
        "model_timings_s": dict(allocation.timings),
        "timings_s": dict(timings),
        "scenarios": {
            "optimisation": {"first": opt.first, "count": opt.n},
            "evaluation": {
                "first": config.scenarios.optimisation,
                "count": config.scenarios.evaluation,
            },
            "start": config.scenarios.start,
            "max_delay_quarters": config.scenarios.max_delay_quarters,
            "window": list(config.scenarios.window),
        },
        "distributions": distributions,
    }
    metrics.pop("timings", None)  # the model's own timings, kept as model_timings_s
    return metrics


def _sector_shares(
    config: RunConfig, catalog: Catalog, fund: np.ndarray
) -> dict[str, dict[str, float | None]]:
    """Each MOU sector's dollars and share of committed capital, with its configured bounds
    (null when the sector-share group is off)."""
    group = config.model.groups.sector_shares
    sector = catalog.projects["sector"].astype(str).to_numpy()
    total = max(float(fund.sum()), 1e-300)
    out: dict[str, dict[str, float | None]] = {}
    for s in SECTORS:
        lo, hi = group.bounds.get(s, (0.0, 1.0)) if group.enabled else (None, None)
        usd = float(fund[sector == s].sum())
        out[s] = {"usd": usd, "share": usd / total, "min": lo, "max": hi}
    return out
