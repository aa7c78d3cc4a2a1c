"""``portopt plan``'s job: the pipeline (:mod:`portopt.pipeline`) over the plan's columns.

The plan's columns (:func:`portopt.plan.plan_options`, :class:`~portopt.plan.columns.Columns`)
are one per (project, open round) and one per committed project; the engine simulates each
distinct (project, construction start) once, with common random numbers. The pipeline draws
Japan's declines on them (:mod:`portopt.plan.declines`), chooses the plan with the plan's rules
as groups of the allocation model (one proposal per project, review capacity per round, JBIC's
yearly capacity, the budget and the deployment target on expected committed capital,
dependencies started in order), and evaluates it on fresh scenarios, each project at its chosen
start (a project left out at its earliest one), declines drawn again.

This module adds what is the plan's own: its target (:func:`plan_config`), its re-solves
(:func:`plan_marginal`: each project in or out, the rest of the plan held), plan.csv
(:func:`plan_table`) and metrics.json's ``plan`` (:func:`plan_summary`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.alternatives import ALTERNATIVES_FILE, alternatives
from portopt.bench import BENCH_FILE, bench
from portopt.catalog import Catalog
from portopt.compare import COMPARE_FILE, compare_plans, load_previous
from portopt.config import RunConfig, quarter_index
from portopt.engine.scenario_set import ScenarioSet
from portopt.errors import ConfigError, Problem
from portopt.memory import frontier_workers
from portopt.model import Allocation, DirectSweep
from portopt.model.api import formulation
from portopt.model.forcing import Forcing
from portopt.model.marginal import as_records, plan_values
from portopt.outputs import check_target
from portopt.pipeline import (
    MARGINAL_NOTE,
    Choice,
    Outcome,
    PlanResult,
    RunProgress,
    execute,
    proved,
    with_backend,
)
from portopt.plan import PlanOptions, load_commitments, plan_options
from portopt.plan.calendar import deadline_quarter, disbursement_shares, shift
from portopt.plan.columns import Columns
from portopt.plan.frontier import frontier_floors
from portopt.plan.support import floor_payers, support_cost, with_support
from portopt.report_plan import PLAN_FILE
from portopt.schema import TABLES
from portopt.tradeoff import (
    FRONTIER_FILE,
    Helpers,
    Mapper,
    plan_frontier,
    replan_values,
)
from portopt.vocabulary import SECTORS

SHORT_SECTOR_SHARE = 0.95
"""A sector's pipeline is short when the plan takes at least this share of what its candidates
could take at their maximum fund share."""

PLAN_CSV_COLUMNS = TABLES[PLAN_FILE].built_columns()
"""plan.csv's columns as the plan table is built (portopt.schema declares them once)."""


def plan_config(config: RunConfig) -> RunConfig:
    """``config`` with the plan's target applied: a hard target is the model's minimum
    deployment (on expected committed capital). Raises :class:`ConfigError` for a target
    the budget cannot hold, or a soft target below the budget (its shortfall would not be
    linear: use a hard one)."""
    plan, budget = config.plan, config.model.budget_usd
    if plan.target_usd > budget:
        raise ConfigError(
            [
                Problem(
                    "plan.target_usd",
                    None,
                    None,
                    f"{plan.target_usd:g} exceeds model.budget_usd {budget:g}: the fund cannot"
                    " commit more than its budget",
                )
            ],
            "bad plan",
        )
    if plan.target == "hard":
        config = config.model_copy(deep=True)
        config.model.min_deployment_usd = max(config.model.min_deployment_usd, plan.target_usd)
    elif plan.target_usd < budget and plan.shortfall_price > 0:
        raise ConfigError(
            [
                Problem(
                    "plan.target_usd",
                    None,
                    None,
                    f"a soft target ({plan.target_usd:g}) below the budget ({budget:g}) is not"
                    " supported: set plan.target to hard, or the target to the budget",
                )
            ],
            "bad plan",
        )
    return config


def model_scenarios(engine: ScenarioSet, options: PlanOptions) -> ScenarioSet:
    """The engine's (project, start) columns laid out as the model's (project, round) ones."""
    return Columns.of_plan(options.catalog, options).model_scenarios(engine)


def with_declines(
    scenarios: ScenarioSet, catalog: Catalog, config: RunConfig
) -> tuple[ScenarioSet, np.ndarray, np.ndarray]:
    """Each column of the model ``catalog``'s decline probability (from its expected recovery
    on ``scenarios``), the (scenario, column) declines and the set with them applied."""
    project = catalog.projects["project"].astype(str).to_numpy(dtype=object)
    columns = Columns(catalog, catalog, catalog, project, np.arange(len(project)))
    p = columns.decline_probability(scenarios, config)
    masked, mask = columns.declines(scenarios, p, config)
    return masked, p, mask


class Plan:
    """The plan's job: its columns from the commitments and rounds, its own outputs."""

    name = "plan"
    labels = {  # noqa: RUF012 (read only)
        "catalog": "Loading the catalog, the commitments and the plan's options",
        "optimise": "Choosing the plan",
        "marginal": "Re-solving each project in or out, the rest of the plan held",
    }

    def __init__(
        self,
        commitments: str | Path | pd.DataFrame | None = None,
        none: bool = False,
        forcing: Forcing | None = None,
        mapper: Mapper | None = None,
    ) -> None:
        self.commitments = commitments
        """A CSV path or a DataFrame; None: ``plan.commitments``, else the bundled tranche."""
        self.none = none
        """No decisions made: every project a candidate (``--no-commitments``)."""
        self.forcing = forcing
        """Projects forced in (at a round, or their best) or out: a what-if's variant."""
        self.mapper = mapper
        """Runs the frontier's tasks (the CLI's Dask cluster); None: local processes."""
        self.helpers: Helpers | None = None
        """The worker processes of the frontier and the re-plans, started by :meth:`warm`."""

    def warm(self, config: RunConfig, columns: Columns) -> None:
        """As the plan's solve starts (one core busy), start the worker processes its frontier
        or re-plans will use beside this process (:class:`portopt.tradeoff.Helpers`): their
        start-up overlaps the solve. None when they run in this process alone or on a Dask
        cluster."""
        solvers = frontier_workers(config, columns, formulation(config))
        if self.mapper is None and solvers and solvers > 1 and self.helpers is None:
            self.helpers = Helpers(solvers - 1)

    def release(self) -> None:
        """Stop the worker processes :meth:`warm` started."""
        if self.helpers is not None:
            self.helpers.close()
            self.helpers = None

    def explore(
        self,
        config: RunConfig,
        columns: Columns,
        scenarios: ScenarioSet,
        allocation: Allocation,
        model: object,
        stage: Any,
    ) -> dict[str, pd.DataFrame]:
        """frontier.csv (:mod:`portopt.tradeoff`): the plan at each expected-recovery floor
        from the configured one down to ``plan.frontier.lowest_floor``, in a stage of its own.
        The worker processes :meth:`warm` started stop here (the last stage to use them)."""
        try:
            if not isinstance(model, DirectSweep) or not proved(allocation, model):
                return {}
            out: dict[str, pd.DataFrame] = {}
            project = [str(p) for p in columns.project]
            k = config.plan.alternatives.count
            if k > 0:
                label = f"Finding {k} near-optimal alternative plans"
                with stage("alternatives", label=label):
                    found = alternatives(
                        config,
                        model,
                        allocation,
                        project,
                        columns.unfunded_prob,  # expected committed capital's basis
                    )
                if found is not None:
                    out[ALTERNATIVES_FILE] = found
                with stage("bench", label="Finding each round's substitutes"):
                    substitutes = bench(config, model, allocation)
                if substitutes is not None:
                    out[BENCH_FILE] = substitutes
            floors = frontier_floors(config)
            if len(floors) < 2:
                return out
            label = f"Solving the plan at {len(floors)} expected-recovery floors"
            with stage("frontier", label=label):
                _, mask = columns.declines(scenarios, columns.decline_prob, config)
                table = plan_frontier(
                    config,
                    model,
                    allocation,
                    project,
                    columns.unfunded_prob,  # expected committed capital's basis
                    mask,
                    mapper=self.mapper,
                    helpers=self.helpers,
                )
            if table is not None:
                out[FRONTIER_FILE] = table
            return out
        finally:
            self.release()

    def prepare(self, config: RunConfig) -> RunConfig:
        return plan_config(config)

    def columns(self, catalog: Catalog, config: RunConfig) -> Columns:
        self.loaded = catalog
        catalog = with_support(catalog, config)
        given = self.commitments
        made = load_commitments(
            given if given is not None else config.plan.commitments,
            catalog,
            config,
            none=self.none,
        )
        return Columns.of_plan(catalog, plan_options(catalog, config, made))

    def marginal(
        self, config: RunConfig, chosen: Choice, advance: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        columns, allocation, model = chosen.columns, chosen.allocation, chosen.model
        if config.plan.marginal == "replan" and proved(allocation, model):
            assert isinstance(model, DirectSweep)
            committed = (columns.catalog.projects["status"].astype(str) == "committed").tolist()
            values = replan_values(
                config,
                model,
                allocation,
                [str(p) for p in columns.project],
                committed,
                mapper=self.mapper,
                helpers=self.helpers,
            )
            note = (
                "each project's value is the best plan with it minus the best plan without it:"
                " two full plans, every other project's round and amount free"
            )
            return {"marginal_values": as_records(values), "relaxations": [], "marginal_note": note}
        return plan_marginal(config, allocation, model, advance)

    def outputs(self, outcome: Outcome) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        """plan.csv and metrics.json's ``plan`` and ``projects``."""
        columns, config, by_project = outcome.columns, outcome.config, outcome.evaluation.allocation
        assert columns.plan is not None and outcome.committed is not None
        start = config.scenarios.start
        table = plan_table(columns.catalog, outcome.allocation, outcome.engine, start, by_project)
        add_plan_marginal(table, by_project)
        summary = plan_summary(
            config,
            columns.projects,
            columns.plan,
            table,
            outcome.allocation,
            outcome.committed,
            outcome.plain,
            outcome.evaluation,
        )
        projects = {
            "selected": len(table),
            "candidates": len(columns.projects.project_ids),
            "columns": len(columns.catalog.project_ids),
            "engine_columns": len(columns.engine_catalog.project_ids),
        }
        floors = outcome.evaluation.aggregates.floor_cost()
        extra: dict[str, Any] = {"plan": summary, "projects": projects}
        extra["offtake_floors"] = floor_payers(outcome.evaluation.aggregates.catalog, floors)
        if config.support.projects:
            extra["support"] = support_cost(
                getattr(self, "loaded", columns.projects), config, table, floors
            )
        return {PLAN_FILE: table}, extra


def run_plan(
    config: RunConfig,
    commitments: str | Path | pd.DataFrame | None = None,
    out_dir: Path | None = None,
    backend: str | None = None,
    progress: RunProgress | None = None,
    no_commitments: bool = False,
    write: bool = True,
    forcing: Forcing | None = None,
    mapper: Mapper | None = None,
    compare: str | Path | None = None,
) -> PlanResult:
    """Plan the deployment and write the output folder (``out_dir``, else ``output.dir``;
    nothing when ``write`` is false).

    ``commitments`` (a CSV path or a DataFrame of its columns) overrides ``plan.commitments``;
    None there too means the bundled first tranche; ``no_commitments`` plans every project as a
    candidate; ``forcing``: projects forced in or out (what-ifs). The plan frontier
    (frontier.csv, :mod:`portopt.tradeoff`) is solved in local processes, or through ``mapper``
    (the CLI's Dask cluster with ``--scheduler``). ``compare``: a previous plan's output folder;
    the new plan is compared with it (compare.csv and metrics.json's ``compare``,
    :mod:`portopt.compare`). Raises a
    :class:`~portopt.errors.PortoptError` for a user's mistake or an infeasible plan; nothing is
    written then.
    """
    config = with_backend(config, backend)
    target = None if not write else Path(out_dir if out_dir is not None else config.output.dir)
    job = Plan(commitments, no_commitments, forcing, mapper)
    if compare is None:
        return execute(job, config, target, progress)
    previous = load_previous(compare)  # a bad folder: exit 2 before any work
    if target is not None:
        check_target(target, config.output.overwrite)
    result = execute(job, config, None, progress)
    assert result.plan is not None
    table, summary = compare_plans(previous, result.plan, result.metrics)
    result.tables[COMPARE_FILE] = table
    result.metrics["compare"] = summary
    if target is not None:
        result.write(target)
    return result


def plan_marginal(
    config: RunConfig,
    allocation: Allocation,
    model: object,
    advance: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """metrics.json's ``marginal_values`` of a plan (:func:`portopt.model.marginal.plan_values`:
    each project in or out, the rest of the plan held fixed); empty, with a note, when the cut
    model did not choose the plan."""
    if not proved(allocation, model):
        return {"marginal_values": [], "relaxations": [], "marginal_note": MARGINAL_NOTE}
    values = plan_values(
        model, allocation.y, allocation.objective, allocation.mip_gap, config, advance
    )
    note = (
        "each project's value is the plan with it minus the plan without it, every other"
        " project's round held as chosen and the amounts re-optimised (not a full re-plan)"
    )
    return {"marginal_values": as_records(values), "relaxations": [], "marginal_note": note}


def plan_table(
    cat: Catalog,
    allocation: Any,
    engine: ScenarioSet,
    start: str,
    by_project: pd.DataFrame,
) -> pd.DataFrame:
    """plan.csv: one row per proposal, by round then project id. ``expected_completion`` is
    the median completion quarter over the optimisation scenarios in which the project
    completes, blank when it fails in half of them or more."""
    pr = cat.projects
    rows = []
    figures = by_project.set_index("id")
    pos = {pid: j for j, pid in enumerate(engine.project_ids)}
    for j in np.flatnonzero(allocation.y > 0.5):
        r = pr.iloc[j]
        pid = str(r["project"])
        complete = engine.project["complete_q"][:, pos[str(r["scenario_id"])]]
        done = complete[complete >= 0]
        expected = ""
        if done.size * 2 > complete.size:
            expected = shift(start, int(np.median(done)))
        f = float(allocation.fund_usd[j])
        p = float(r["unfunded_prob"] if "unfunded_prob" in pr else r["decline_prob"])
        rows.append(
            {
                "project": pid,
                "name": str(r["name"]),
                "sector": str(r["sector"]),
                "basis": str(r["basis"]) if "basis" in pr else "",
                "status": "committed" if str(r["status"]) == "committed" else "proposed",
                "proposal_quarter": str(r["proposal_quarter"]),
                "funding_quarter": str(r["funding_quarter"]),
                "construction_start": str(r["construction_start"]),
                "build_quarters": int(r["build_quarters"]),
                "expected_completion": expected,
                "fund_usd": round(f, 2),
                "decline_prob": round(p, 6),
                "expected_committed_usd": round(f * (1.0 - p), 2),
                "expected_recovery": float(figures.loc[pid, "expected_recovery_ratio"]),
                "p_recoup": float(figures.loc[pid, "p_recoup"]),
                "marginal_value": None,
                "reason": None,
            }
        )
    table = pd.DataFrame(rows, columns=list(PLAN_CSV_COLUMNS))
    if table.empty:
        return table
    # YYYYQn labels sort as the quarters do
    return table.sort_values(["proposal_quarter", "project"], kind="stable").reset_index(drop=True)


def add_plan_marginal(table: pd.DataFrame, by_project: pd.DataFrame) -> None:
    """plan.csv's ``marginal_value`` and ``reason``, from allocation.csv's."""
    if table.empty or "marginal_value" not in by_project:
        return
    values = by_project.set_index("id")
    table["marginal_value"] = [values.loc[p, "marginal_value"] for p in table["project"]]
    table["reason"] = [values.loc[p, "reason"] for p in table["project"]]


def plan_summary(
    config: RunConfig,
    catalog: Catalog,
    options: PlanOptions,
    table: pd.DataFrame,
    allocation: Any,
    committed: np.ndarray,
    plain: Any,
    declined: Any,
) -> dict[str, Any]:
    """metrics.json's ``plan``: the deployment against the target, round by round."""
    plan = config.plan
    review = config.model.groups.review_capacity
    capacity = review.per_quarter if review.enabled else None
    deadline_q = deadline_quarter(plan)
    open_rounds = {r.quarter for r in options.rounds}
    first = min(  # YYYYQn labels sort as the quarters do
        [*table["proposal_quarter"].tolist(), *(r.quarter for r in options.rounds)],
        default=plan.first_quarter,
    )
    rounds, cumulative = [], 0.0
    q = first
    while quarter_index(q, deadline_q) <= 0:
        rows = table[table["proposal_quarter"] == q]
        new = rows[rows["status"] != "committed"]
        exp = float(rows["expected_committed_usd"].sum())
        cumulative += exp
        rounds.append(
            {
                "quarter": q,
                "proposals": len(rows),
                "capacity": capacity if q in open_rounds else None,
                "new_proposals": len(new),
                "proposed_usd": float(rows["fund_usd"].sum()),
                "committed_expected_usd": exp,
                "cumulative_committed_usd": cumulative,
            }
        )
        q = shift(q, 1)

    jbic = config.model.groups.jbic_capacity
    by_fy: dict[int, float] = {}
    for r in table.itertuples(index=False):
        for fy, part in disbursement_shares(r.construction_start, r.build_quarters).items():
            by_fy[fy] = by_fy.get(fy, 0.0) + part * r.expected_committed_usd
    funding_years = [
        {
            "year": fy,
            "committed_expected_usd": usd,
            "capacity_usd": jbic.per_fiscal_year_usd if jbic.enabled else None,
        }
        for fy, usd in sorted(by_fy.items())
    ]

    pr = catalog.projects
    pipeline = (pr["base_cost_usd"].astype(float) * pr["max_fund_share"].astype(float)).groupby(
        pr["sector"].astype(str)
    )
    pipe = pipeline.sum().to_dict()
    planned = table.groupby("sector")["expected_committed_usd"].sum().to_dict()
    sectors = [
        {
            "sector": s,
            "planned_usd": float(planned.get(s, 0.0)),
            "pipeline_usd": float(pipe.get(s, 0.0)),
            "short": bool(
                pipe.get(s, 0.0) <= 0
                or planned.get(s, 0.0) >= SHORT_SECTOR_SHARE * pipe.get(s, 0.0)
            ),
        }
        for s in SECTORS
    ]
    expected = float(table["expected_committed_usd"].sum())
    proposed = float(table["fund_usd"].sum())
    gap = max(0.0, plan.target_usd - expected)
    c1 = float(declined.metrics["out_of_sample"]["coverage"]["mean"])
    c0 = float(plain.metrics["out_of_sample"]["coverage"]["mean"])
    p10, p90 = np.quantile(committed, [0.1, 0.9]) if committed.size else (np.nan, np.nan)
    return {
        "first_quarter": options.first_open or plan.first_quarter,
        "last_proposal_quarter": options.rounds[-1].quarter if options.rounds else None,
        "deadline": plan.deadline,
        "review_business_days": plan.review_business_days,
        "review_capacity_per_window": capacity,
        "target_usd": plan.target_usd,
        "target_kind": plan.target,
        "shortfall_price_per_10b": plan.shortfall_price if plan.target == "soft" else None,
        "proposed_usd": proposed,
        "committed_expected_usd": expected,
        "committed_p10_usd": float(p10),
        "committed_p90_usd": float(p90),
        "pipeline_reserve_usd": proposed - expected,
        "deployment_gap_usd": gap,
        "coverage": c1,
        "coverage_without_declines": c0,
        "coverage_lost_to_declines": c0 - c1,
        "rounds": rounds,
        "funding_years": funding_years,
        "sectors": sectors,
        "gap_reasons": _gap_reasons(gap, allocation, sectors, config),
        "declines": {
            "enabled": plan.decline.enabled,
            "basis": "illustrative",
            "expected_declined": proposed - expected,
        },
        "commitments": [
            {"project": c.project, "quarter": c.quarter, "amount_usd": c.amount_usd}
            for c in options.commitments
        ],
        "columns": len(options.catalog.project_ids),
    }


def _gap_reasons(
    gap: float, allocation: Any, sectors: list[dict[str, Any]], config: RunConfig
) -> list[str]:
    """Plain words for what holds the plan below its target."""
    if gap <= 1e-6 * config.plan.target_usd:
        return []
    out = []
    for b in allocation.shadow_prices:
        if b.get("binding"):
            row = b.get("row") or ""
            out.append(f"{b.get('group')} ({row}) binds: {b.get('meaning', '')}".strip())
    short = [s["sector"] for s in sectors if s["short"] and s["pipeline_usd"] > 0]
    if short:
        out.append(
            "the pipeline is nearly used up in "
            + ", ".join(short)
            + f" (the plan takes {SHORT_SECTOR_SHARE:.0%} or more of what its candidates can take)"
        )
    if config.plan.target == "soft":
        out.append(
            f"the target is soft: each $10B short costs {config.plan.shortfall_price:g} of coverage"
            " score, so the plan deploys until another dollar would cost more coverage or break a"
            " rule"
        )
    return out
