"""The one job pipeline under every command: its stages, written once, over a set of model
columns (:class:`~portopt.plan.columns.Columns`).

A job (:class:`Job`: ``portopt run``'s in :mod:`portopt.run`, ``portopt plan``'s in
:mod:`portopt.planning`) chooses the columns and adds its own outputs; :func:`execute` runs the
stages, in this order, each timed (wall seconds, ``metrics.json["timings_s"]``):

1. ``catalog``: the catalog and the job's columns (a plan's commitments and rounds); bad input
   stops here, before any work; then the memory check (:mod:`portopt.memory`);
2. ``scenarios_optimisation``: scenarios ``[0, S_opt)`` of the engine's columns, laid out as the
   model's; in a plan, each column's decline probability and the declines drawn
   (:mod:`portopt.plan.declines`);
3. ``optimise``: the allocation model over the columns (an infeasible configuration raises
   :class:`~portopt.errors.InfeasibleError` with its explanation), and its in-sample figures;
4. ``marginal``: the job's re-solves of the cut model (:meth:`Job.marginal`);
5. ``scenarios_evaluation``: fresh scenarios ``[S_opt, S_opt + S_eval)`` of the chosen
   projects only, each at its chosen column, with their fund dollars as portfolio weights, a
   block at a time (:func:`portopt.memory.evaluation_block`), each folded into the running
   aggregates (:class:`portopt.evaluate.Aggregates`), then dropped; in a plan, the declines
   drawn again. A project's outcomes do not depend on which others are simulated beside it, so
   simulating the others would change no figure of the portfolio: their rows of allocation.csv
   take their figures from the optimisation scenarios of their first column, already
   simulated (:func:`left_out_table`);
6. ``evaluate``: the figures and tables from those aggregates, the job's own tables
   (:meth:`Job.outputs`) and metrics.json;
7. ``write`` and ``report`` (:meth:`PlanResult.write`, only when an output folder is given):
   the output folder, written to a temporary sibling and renamed into place
   (:func:`portopt.outputs.staged_output`), so a failure at any stage leaves nothing.

A new command is one CLI module (``portopt/cli/<command>.py``: its options and its summary)
and one job module: a :class:`Job` (its columns, its re-solves, its own tables and metrics)
handed to :func:`execute`, or the first stages alone (:func:`choose`) for a command that
compares choices (``portopt whatif``). Every stage reads the one map between a model column,
its project and its engine column (:class:`~portopt.plan.columns.Columns`); none changes a
catalog in place.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from portopt._version import __version__
from portopt.catalog import Catalog, load_catalog
from portopt.config import RunConfig
from portopt.engine.generate import generate_scenarios
from portopt.engine.inputs import simulated_quarters
from portopt.engine.scenario_set import (
    CASH_FIELDS,
    ScenarioSet,
)
from portopt.errors import ConfigError, InfeasibleError, Problem
from portopt.evaluate import (
    Aggregates,
    Evaluation,
    capital_by_basis,
    evaluation_of,
    portfolio_figures,
)
from portopt.interrupts import raise_if_interrupted
from portopt.memory import MemoryEstimate, check_run_fits, evaluation_block, run_estimate
from portopt.model import Allocation, DirectSweep, build_model, formulation, optimize
from portopt.outputs import (
    ALLOCATION_FILE,
    COVERAGE_FILE,
    METRICS_FILE,
    SCENARIOS_DIR,
    bands,
    check_target,
    headline,
    histogram,
    staged_output,
    write_json,
    write_table,
)
from portopt.plan.calendar import shift
from portopt.plan.columns import Columns
from portopt.report import write_report
from portopt.report_plan import PLAN_FILE
from portopt.schema import conform, conform_metrics
from portopt.vocabulary import SECTORS

STAGES: dict[str, str] = {
    "catalog": "Loading and checking the catalog",
    "scenarios_optimisation": "Generating optimisation scenarios",
    "optimise": "Choosing the portfolio",
    "marginal": "Re-solving with each candidate forced in or out, and each rule relaxed",
    "frontier": "Solving the plan at each expected-recovery floor",
    "alternatives": "Finding near-optimal alternative plans",
    "scenarios_evaluation": "Generating fresh evaluation scenarios",
    "evaluate": "Evaluating the portfolio out of sample",
    "write": "Writing tables and scenarios",
    "report": "Writing the report",
}
"""Stage keys (as in ``metrics.json``) and what the terminal shows while each runs (a job may
word a stage its own way: :attr:`Job.labels`)."""


class RunProgress(Protocol):
    """What the pipeline tells a progress display (the CLI's is a rich progress bar)."""

    def start(self, stage: str, label: str, total: int | None) -> None:
        """A stage begins; ``total`` is its number of steps, or None for a spinner."""

    def advance(self, done: int, total: int) -> None:
        """``done`` of ``total`` steps of the current stage are finished."""

    def finish(self, stage: str, seconds: float) -> None:
        """The stage ended after ``seconds`` of wall time."""


class Stages:
    """Times each stage into ``timings`` and forwards it to the progress display."""

    def __init__(self, progress: RunProgress | None, labels: dict[str, str] | None = None):
        self.progress = progress
        self.labels = {**STAGES, **(labels or {})}
        self.timings: dict[str, float] = {}
        self.t_start = time.perf_counter()

    @contextmanager
    def __call__(
        self, stage: str, total: int | None = None, label: str | None = None
    ) -> Iterator[None]:
        raise_if_interrupted()
        if self.progress is not None:
            self.progress.start(stage, label or self.labels[stage], total)
        t0 = time.perf_counter()
        yield
        raise_if_interrupted()  # a signal that a library swallowed still stops the run here
        self.timings[stage] = time.perf_counter() - t0
        if self.progress is not None:
            self.progress.finish(stage, self.timings[stage])

    @property
    def advance(self) -> Callable[[int, int], None] | None:
        return None if self.progress is None else self.progress.advance

    @property
    def solving(self) -> Callable[[Any], None] | None:
        """The display's ``solving`` (the solve's incumbent, bound and gap), if it has one."""
        return getattr(self.progress, "solving", None)

    def total(self) -> dict[str, float]:
        """Every stage's seconds so far, and ``total`` since the pipeline began."""
        return {**self.timings, "total": time.perf_counter() - self.t_start}


@dataclass
class Outcome:
    """What the stages produced, for a job's own outputs (:meth:`Job.outputs`)."""

    config: RunConfig
    columns: Columns
    """The model's columns (a plan's with each column's decline probability)."""
    engine: ScenarioSet
    """The optimisation scenarios of the engine's columns."""
    scenarios: ScenarioSet
    """The optimisation scenarios as the model's columns (declines applied in a plan)."""
    allocation: Allocation
    marginal: dict[str, Any]
    cols: list[int]
    """The model column each project is evaluated at (its chosen one, else its first)."""
    evaluation: Evaluation
    """The out-of-sample evaluation reported (declines included in a plan)."""
    plain: Evaluation
    """The same without declines (``evaluation`` itself in a run)."""
    committed: np.ndarray | None
    """In a plan, each evaluation scenario's committed dollars (declined proposals out)."""


class Job(Protocol):
    """What a command adds to the pipeline: its columns, its re-solves, its own outputs."""

    name: str
    """"run" or "plan": how refusals and notes name the job."""
    labels: dict[str, str]
    """Stage labels that differ from :data:`STAGES`."""

    def prepare(self, config: RunConfig) -> RunConfig:
        """The configuration the job runs (a plan's target applied); refuses a bad one."""

    def columns(self, catalog: Catalog, config: RunConfig) -> Columns:
        """The model's columns over ``catalog``."""

    def marginal(
        self, config: RunConfig, chosen: Choice, advance: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        """metrics.json's ``marginal_values``, ``relaxations`` (and a note), from the
        allocation ``chosen`` and the model that chose it; ``advance`` reports the re-solves
        done."""

    def outputs(self, outcome: Outcome) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        """The job's own tables (file name -> table) and metrics.json entries.

        A job may also have ``forcing`` (a :class:`portopt.model.forcing.Forcing`: projects
        forced in or out of the optimise stage) and ``explore(config, columns, scenarios,
        allocation, model, stage)``, more solves of the model after the marginal stage in
        stages of their own, returning more tables (a plan's frontier.csv)."""


def memory_estimate(job: Job, config: RunConfig) -> MemoryEstimate:
    """What :func:`execute` estimates ``job`` on ``config`` will hold at its peak (and refuses
    when it would not fit), before any scenario is drawn."""
    config = job.prepare(config)
    columns = job.columns(load_catalog(config.catalog), config)
    return run_estimate(config, columns, formulation(config), local_workers(job))


def local_workers(job: Job) -> bool:
    """Whether ``job`` solves its frontier in processes on this machine (not on a Dask
    cluster through its ``mapper``)."""
    return getattr(job, "mapper", None) is None


@dataclass
class Choice:
    """What the first three stages give: the columns, their optimisation scenarios, the model
    and the allocation it chose (:func:`choose`)."""

    catalog: Catalog
    """The catalog, one row per project."""
    columns: Columns
    engine: ScenarioSet
    """The optimisation scenarios of the engine's columns."""
    scenarios: ScenarioSet
    """The optimisation scenarios as the model's columns (declines applied in a plan)."""
    model: object
    allocation: Allocation


def choose(
    job: Job,
    config: RunConfig,
    catalog: Catalog | None = None,
    stage: Stages | None = None,
    warm: bool = False,
) -> Choice:
    """The stages ``catalog``, ``scenarios_optimisation`` and ``optimise`` of ``job`` (its
    ``prepare`` already applied to ``config``): the columns over ``catalog`` (else the one
    ``config.catalog`` names), the memory check, the optimisation scenarios and the allocation
    with its in-sample figures. What-if and the sweeps call it for a job's choice without the
    evaluation. ``warm``: as the optimise stage starts, ``job.warm(config, columns)`` (where the
    job has one) starts what its later stages will use; the caller calls ``job.release()``."""
    stage = stage or Stages(None, job.labels)
    s_opt = config.scenarios.optimisation
    with stage("catalog"):
        catalog = load_catalog(config.catalog) if catalog is None else catalog
        columns = job.columns(catalog, config)
    check_run_fits(config, columns, formulation(config), local_workers(job))
    n_engine = len(columns.engine_catalog.project_ids)
    what = "" if columns.identity else f" of {n_engine:,} (project, start) pairs"
    with stage(
        "scenarios_optimisation", s_opt, f"Generating {s_opt:,} optimisation scenarios{what}"
    ):
        engine = generate_scenarios(
            columns.engine_catalog,
            config,
            backend=config.backend,
            scenarios=range(0, s_opt),
            progress=stage.advance,
        )
        opt = columns.model_scenarios(engine)
        if columns.planned:
            columns = columns.with_decline_probability(columns.decline_probability(opt, config))
            opt, _ = columns.declines(opt, columns.decline_prob, config)
    cat = columns.catalog
    forcing = getattr(job, "forcing", None)
    with stage("optimise"):
        if warm and hasattr(job, "warm"):
            job.warm(config, columns)
        model = build_model(cat, opt, config)
        if forcing:
            forcing.attach(model)
        allocation = optimize(cat, config, opt, model=model, progress=stage.solving)
        if forcing:
            forcing.check(model, allocation.y)
        allocation.in_sample = portfolio_figures(
            cat, config, opt, allocation.y, allocation.fund_usd
        )
    return Choice(catalog, columns, engine, opt, model, allocation)


def check_evaluation(config: RunConfig, what: str) -> None:
    """:class:`ConfigError` when ``config`` has no evaluation scenarios (a ``what``: a plan or
    a run needs them), before any work."""
    if config.scenarios.evaluation < 1:
        raise ConfigError(
            [
                Problem(
                    "scenarios.evaluation",
                    None,
                    None,
                    f"must be at least 1 for a {what}: the out-of-sample figures and"
                    " allocation.csv come from these scenarios",
                )
            ],
            "no evaluation scenarios",
        )


def execute(
    job: Job,
    config: RunConfig,
    out_dir: Path | None = None,
    progress: RunProgress | None = None,
) -> PlanResult:
    """Run ``job``'s stages; with ``out_dir``, write the output folder there (checked before
    any work, written staged). Nothing is written without it.

    Raises a :class:`~portopt.errors.PortoptError` for a user's mistake or an infeasible
    configuration; nothing is written then.
    """
    config = job.prepare(config)
    if out_dir is not None:
        check_target(Path(out_dir), config.output.overwrite)
    check_evaluation(config, job.name)
    stage = Stages(progress, job.labels)
    try:
        return _execute(job, config, out_dir, stage)
    finally:
        if hasattr(job, "release"):
            job.release()


def _execute(job: Job, config: RunConfig, out_dir: Path | None, stage: Stages) -> PlanResult:
    s_eval = config.scenarios.evaluation
    chosen_plan = choose(job, config, stage=stage, warm=True)
    catalog, columns, engine = chosen_plan.catalog, chosen_plan.columns, chosen_plan.engine
    opt, allocation, model = chosen_plan.scenarios, chosen_plan.allocation, chosen_plan.model
    cat = columns.catalog
    with stage("marginal"):
        marginal = job.marginal(config, chosen_plan, stage.advance)
    explore = getattr(job, "explore", None)
    explored = {} if explore is None else explore(config, columns, opt, allocation, model, stage)

    cols = columns.evaluation_columns(allocation.y)
    every = columns.evaluation_catalog(cols)
    chosen = np.asarray(allocation.y)[cols] > 0.5
    if not chosen.any():
        raise InfeasibleError(
            f"the best {'plan' if columns.planned else 'portfolio'} holds no project: under"
            " these rules no candidate adds coverage within the budget and the other limits,"
            " so there is nothing to propose or evaluate; loosen them (model.budget_usd, the"
            " recovery floor, the capacities) or add candidates"
        )
    fund_all = np.where(chosen, np.asarray(allocation.fund_usd, dtype=np.float64)[cols], 0.0)
    # only the chosen projects are simulated afresh: a project's outcomes do not depend on
    # which others are simulated beside it (its own draws, the shared market path), so the
    # portfolio's figures are the same; the others' rows of allocation.csv come from the
    # optimisation scenarios their columns were simulated on (:func:`left_out_table`)
    eval_catalog = subset(every, np.flatnonzero(chosen))
    fund = fund_all[chosen]
    y = np.ones(len(fund))
    plain_agg = Aggregates(eval_catalog, y, fund, s_eval)
    declined_agg = Aggregates(eval_catalog, y, fund, s_eval) if columns.planned else None
    committed = np.empty(s_eval) if columns.planned else None
    p_eval = columns.decline_prob[cols][chosen]
    with stage("scenarios_evaluation", s_eval, f"Generating {s_eval:,} fresh evaluation scenarios"):
        done = 0
        for block in evaluation_blocks(eval_catalog, config, fund, stage.advance):
            plain_agg.add(block)
            if declined_agg is not None and committed is not None:
                masked, mask = columns.declines(block, p_eval, config)
                declined_agg.add(masked)
                committed[done : done + block.n] = (~mask * fund[None, :]).sum(axis=1)
            done += block.n
    eval_alloc = replace(allocation, ids=list(eval_catalog.project_ids), y=y, fund_usd=fund)
    with stage("evaluate"):
        plain = evaluation_of(eval_alloc, eval_catalog, config, plain_agg)
        evaluation = plain
        if declined_agg is not None:
            evaluation = evaluation_of(eval_alloc, eval_catalog, config, declined_agg)
        evaluation.metrics["capital_by_basis"] = capital_by_basis(every, fund_all)
        table = left_out_table(columns, engine, cols, chosen, every, plain.allocation, config)
        evaluation.allocation = columns.allocation_table(table, cols)
        add_marginal_columns(evaluation.allocation, marginal["marginal_values"])
        outcome = Outcome(
            config, columns, engine, opt, allocation, marginal, cols, evaluation, plain, committed
        )
        tables, extra = job.outputs(outcome)
        tables = {**tables, **explored}
        metrics = run_metrics(
            config, cat, allocation, evaluation, opt, distributions(config, plain_agg)
        )
        metrics.update(marginal)
        metrics.update(explanations(catalog, evaluation, marginal))
        metrics.update(extra)
        metrics["notes"] = list(metrics.get("notes", [])) + columns.notes
    # the frames and metrics under the names the files carry (portopt.schema)
    tables = {name: conform(table, name) for name, table in tables.items()}
    result = PlanResult(
        config=config,
        plan=tables.get(PLAN_FILE),
        allocation=conform(evaluation.allocation, ALLOCATION_FILE),
        coverage=conform(evaluation.coverage, COVERAGE_FILE),
        metrics=conform_metrics(metrics),
        scenarios=opt,
        tables=tables,
        stages=stage,
    )
    if out_dir is not None:
        result.write(out_dir)
    return result


@dataclass
class PlanResult:
    """What a job produced, in memory: its tables and figures as pandas DataFrames, and
    metrics.json as a dict. :meth:`write` writes the output folder; ``out_dir`` is where it was
    last written (None until then)."""

    config: RunConfig
    plan: pd.DataFrame | None
    """plan.csv: one row per proposal (None for a one-shot run)."""
    allocation: pd.DataFrame
    """allocation.csv: one row per project."""
    coverage: pd.DataFrame
    """coverage.csv: one row per chokepoint."""
    metrics: dict[str, Any]
    """metrics.json (``timings_s`` filled in as the stages ran)."""
    scenarios: ScenarioSet
    """The optimisation scenarios the model chose on (the model's columns)."""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    """The job's own tables, by file name (plan.csv)."""
    stages: Stages | None = field(default=None, repr=False)
    out_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.stages is not None:
            self.metrics["timings_s"] = self.stages.total()

    @property
    def timings(self) -> dict[str, float]:
        """Each stage's wall seconds, and the total."""
        return dict(self.metrics.get("timings_s", {}))

    @property
    def figures(self) -> pd.DataFrame:
        """The headline figures (rows) in and out of sample (columns)."""
        alpha = self.config.model.groups.recoupment.alpha
        parts = {k: headline(self.metrics.get(k) or {}, alpha) for k in SAMPLES}
        return pd.DataFrame(parts).rename_axis("figure")

    def scenario_tables(self) -> dict[str, pd.DataFrame]:
        """The optimisation scenarios as the three tables of ``scenarios/`` (by file name; a
        negative integer, the engine's "never", as a missing value)."""
        return scenario_frames(self.scenarios)

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Every table by name: plan (in a plan), allocation, coverage, figures, the job's
        other tables by file name without ``.csv`` (a plan's ``frontier``, and ``compare``,
        ``alternatives``, ``bench`` when asked for), and the scenario tables as
        ``scenarios/<table>``."""
        out: dict[str, pd.DataFrame] = {}
        if self.plan is not None:
            out["plan"] = self.plan
        out |= {"allocation": self.allocation, "coverage": self.coverage, "figures": self.figures}
        for name, frame in self.tables.items():
            out.setdefault(name.removesuffix(".csv"), frame)
        for name, frame in self.scenario_tables().items():
            out[f"{SCENARIOS_DIR}/{name.removesuffix('.parquet')}"] = frame
        return out

    def write(self, out_dir: str | Path) -> Path:
        """Write the output folder (``tables``, allocation.csv, coverage.csv, the scenarios,
        metrics.json and the report, as the configuration asks), staged and renamed into
        place; ``out_dir`` once done."""
        target = Path(out_dir)
        stage = self.stages or Stages(None)
        config = self.config
        with staged_output(target, config.output.overwrite) as tmp:
            with stage("write"):
                for name, table in self.tables.items():
                    write_table(table, tmp, name)
                write_table(self.allocation, tmp, ALLOCATION_FILE)
                write_table(self.coverage, tmp, COVERAGE_FILE)
                if config.output.scenarios_parquet:
                    self.scenarios.to_parquet(tmp / SCENARIOS_DIR)
            self.metrics["timings_s"] = dict(stage.timings)
            write_json(self.metrics, tmp / METRICS_FILE)
            if config.output.report:
                with stage("report"):
                    write_report(tmp)
            self.metrics["timings_s"] = stage.total()
            write_json(self.metrics, tmp / METRICS_FILE)
        self.out_dir = target
        return target

    def _repr_html_(self) -> str:
        """A notebook's view: the headline figures and the first rows of the main table."""
        m = self.metrics
        kind = "plan" if self.plan is not None else "run"
        head = (
            f"<p><b>portopt {kind}</b>: {html.escape(str(m.get('status')))}"
            f" ({html.escape(str(m.get('solver')))}), {m['projects']['selected']} of"
            f" {m['projects']['candidates']} projects selected</p>"
        )
        main = self.plan if self.plan is not None else self.allocation
        return head + self.figures.to_html() + main.head(10).to_html(index=False)


SAMPLES = ("in_sample", "out_of_sample")
"""metrics.json's blocks of figures: on the optimisation scenarios, on the fresh ones."""


def scenario_frames(scenarios: ScenarioSet) -> dict[str, pd.DataFrame]:
    """The tables :meth:`ScenarioSet.to_parquet` writes, as DataFrames (the same Arrow tables:
    same rows, columns and types; an integer's null as a missing value)."""
    import pyarrow as pa

    nullable = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
    return {
        name: table.to_pandas(types_mapper=nullable.get)
        for name, table in scenarios.arrow_tables().items()
    }


def subset(catalog: Catalog, rows: np.ndarray) -> Catalog:
    """The catalog's projects at positions ``rows`` (every chokepoint kept)."""
    ids = [catalog.project_ids[j] for j in rows]
    return Catalog(
        catalog.projects.loc[ids], catalog.chokepoints, catalog.capacity.loc[ids], catalog.source
    )


def left_out_table(
    columns: Columns,
    engine: ScenarioSet,
    cols: list[int],
    chosen: np.ndarray,
    every: Catalog,
    table: pd.DataFrame,
    config: RunConfig,
) -> pd.DataFrame:
    """allocation.csv, one row per project in the catalog's order: the chosen projects' rows
    of ``table`` (the fresh evaluation scenarios), and each other project's figures at its
    column (``cols``) on the optimisation scenarios (``engine``, no declines), its fund 0."""
    others = np.flatnonzero(~chosen)
    if not others.size:
        return table.reset_index(drop=True)
    model = columns.model_scenarios(engine)
    left = subset(every, others)
    picked = [cols[j] for j in others]
    scenarios = replace(
        model,
        project_ids=list(left.project_ids),
        project={k: v[:, picked] for k, v in model.project.items()},
        cash={},
    )
    none = np.zeros(others.size)
    agg = Aggregates(left, none, none, scenarios.n, tranche=False)
    agg.add(scenarios)
    out = evaluation_of(
        Allocation(
            ids=list(left.project_ids),
            y=none,
            fund_usd=none,
            status="",
            solver="",
            objective=None,
            bound=None,
            mip_gap=None,
            timings={},
        ),
        left,
        config,
        agg,
    ).allocation
    both = pd.concat([table, out], ignore_index=True).set_index("id", drop=False)
    return both.loc[list(every.project_ids)].reset_index(drop=True)


def with_backend(config: RunConfig, backend: str | None) -> RunConfig:
    """``config`` with ``backend`` (``--backend``) when given; refuses an unknown one."""
    if backend is None:
        return config
    try:
        return RunConfig.model_validate({**config.model_dump(), "backend": backend})
    except ValueError:
        raise ConfigError(
            [Problem("--backend", None, None, f"'{backend}' is not one of auto, numpy, cupy")],
            "bad backend",
        ) from None


MARGINAL_NOTE = "marginal values need the cut model's solve (solver.name auto or highs_direct)"
"""metrics.json's ``marginal_note`` when the cut model did not choose."""


def proved(allocation: Allocation, model: object) -> bool:
    """Whether the cut model chose ``allocation`` with a solver's proof (re-solves need it)."""
    return (
        isinstance(model, DirectSweep)
        and allocation.objective is not None
        and model.milp is not None
    )


LOW_COVERAGE = 0.10
"""A chokepoint whose expected coverage is below this share of its gap is explained in
``chokepoint_explanations`` (policy choice: below a tenth, the plan leaves the gap open)."""


def explanations(
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


def add_marginal_columns(table: pd.DataFrame, values: list[dict[str, Any]]) -> None:
    """Add :data:`MARGINAL_COLUMNS` and ``within_mip_gap`` to allocation.csv's ``table``."""
    by_id = {v["project_id"]: v for v in values}
    for column in MARGINAL_COLUMNS:
        table[column] = [by_id.get(pid, {}).get(column) for pid in table["id"]]
    table["within_mip_gap"] = [by_id.get(pid, {}).get("within_gap") for pid in table["id"]]


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


def distributions(config: RunConfig, aggregates: Aggregates) -> dict[str, Any]:
    """Japan's recovery-ratio histogram and per-quarter cash bands, for the report.

    The recovery ratio of scenario s is :math:`\\sum_i f_i\\,\\mathrm{pvjapan}_{is} /
    \\sum_i f_i\\,\\mathrm{pvdraw}_{is}`; cash bands are the P10/P50/P90 and mean over scenarios
    of each quarter's portfolio cash (dollars, not discounted).
    """
    out: dict[str, Any] = {"recovery_ratio": histogram(aggregates.recovery())}
    cash = aggregates.cash
    if cash:
        start = config.scenarios.start
        quarters = [shift(start, t) for t in range(cash[CASH_FIELDS[0]].shape[1])]
        out["cash_per_quarter"] = {
            "quarter": quarters,
            **{k: bands(cash[k][: aggregates.n]) for k in CASH_FIELDS},
        }
    return out


def run_metrics(
    config: RunConfig,
    catalog: Catalog,
    allocation: Allocation,
    evaluation: Evaluation,
    opt: ScenarioSet,
    distributions: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json: the evaluator's figures plus what a reader needs to trust and rerun them
    (``catalog``: the model's columns; ``timings_s`` is filled in as the stages end)."""
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
        "sector_shares": sector_shares(config, catalog, fund),
        "binding_constraints": [p for p in allocation.shadow_prices if p.get("binding")],
        "notes": list(allocation.notes),
        "model_timings_s": dict(allocation.timings),
        "timings_s": {},
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


def sector_shares(
    config: RunConfig, catalog: Catalog, fund: np.ndarray
) -> dict[str, dict[str, float | None]]:
    """Each MOU sector's expected committed dollars and share of expected committed capital,
    the basis its bounds hold on (docs/scenario-model.md, "The basis of the capital rules"),
    with its configured bounds (null when the sector-share group is off); ``fund`` per row of
    ``catalog``, each counted at its probability of being funded (``unfunded_prob``; 1 without
    a plan)."""
    group = config.model.groups.sector_shares
    sector = catalog.projects["sector"].astype(str).to_numpy()
    pr = catalog.projects
    if "unfunded_prob" in pr:
        fund = np.asarray(fund, dtype=np.float64) * (1.0 - pr["unfunded_prob"].to_numpy(float))
    total = max(float(fund.sum()), 1e-300)
    out: dict[str, dict[str, float | None]] = {}
    for s in SECTORS:
        lo, hi = group.bounds.get(s, (0.0, 1.0)) if group.enabled else (None, None)
        usd = float(fund[sector == s].sum())
        out[s] = {"usd": usd, "share": usd / total, "min": lo, "max": hi}
    return out


RunResult = PlanResult
"""The former name of :class:`PlanResult` (a one-shot run's result is the same kind)."""

__all__ = [
    "LOW_COVERAGE",
    "MARGINAL_COLUMNS",
    "MARGINAL_NOTE",
    "STAGES",
    "Choice",
    "Job",
    "Outcome",
    "PlanResult",
    "RunProgress",
    "RunResult",
    "Stages",
    "add_marginal_columns",
    "check_evaluation",
    "choose",
    "distributions",
    "evaluation_blocks",
    "execute",
    "explanations",
    "proved",
    "run_metrics",
    "scenario_frames",
    "sector_shares",
    "with_backend",
]
