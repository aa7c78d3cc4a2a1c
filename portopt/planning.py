"""``portopt plan``: the deployment plan, end to end.

The plan's stages are the run's (:mod:`portopt.run`), over the plan's columns:

1. ``catalog``: the catalog, the commitments file (:mod:`portopt.plan.commitments`) and the
   plan's columns (:func:`portopt.plan.plan_options`): one per (project, open round), one per
   committed project;
2. ``scenarios_optimisation``: the engine simulates each distinct (project, construction
   start) once, with common random numbers; the model's columns take their start's outcomes,
   each column's decline probability comes from Japan's expected recovery on it, and the
   declines are drawn per (scenario, project) (:mod:`portopt.plan.declines`);
3. ``optimise``: the allocation model over the columns, the plan's rules being groups of it
   (one proposal per project, review capacity per round, JBIC's yearly capacity, the budget and
   the deployment target on expected committed capital, dependencies started in order);
4. ``marginal``: each project's value to the plan by forced re-solves, when the cut model chose;
5. ``scenarios_evaluation`` and ``evaluate``: fresh scenarios of each project at its chosen
   start (a project left out at its earliest one), with the declines drawn again: the plan's
   figures include them;
6. ``write`` and ``report``: plan.csv, allocation.csv, coverage.csv, metrics.json (its
   ``plan`` key), the scenarios and the report, staged and renamed into place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.catalog import Catalog, load_catalog
from portopt.config import RunConfig, quarter_index
from portopt.engine.generate import generate_scenarios
from portopt.engine.philox import key_of_seed
from portopt.engine.scenario_set import ScenarioSet
from portopt.errors import ConfigError, InfeasibleError, Problem
from portopt.evaluate import Aggregates, evaluation_of, portfolio_figures
from portopt.memory import check_run_fits
from portopt.model import DirectSweep, build_model, optimize
from portopt.model.forcing import Forcing
from portopt.model.marginal import as_records, plan_values
from portopt.outputs import check_target
from portopt.plan import (
    PlanOptions,
    apply_declines,
    decline_probability,
    load_commitments,
    plan_options,
)
from portopt.plan.calendar import deadline_quarter, disbursement_shares, shift
from portopt.plan.declines import declined
from portopt.report_plan import PLAN_FILE
from portopt.run import (
    RunProgress,
    RunResult,
    _add_marginal_columns,
    _distributions,
    _explanations,
    _metrics,
    _Stages,
    _with_backend,
    evaluation_blocks,
    write_outputs,
)
from portopt.tradeoff import FRONTIER_FILE, Mapper, frontier_floors, plan_frontier
from portopt.vocabulary import SECTORS

SHORT_SECTOR_SHARE = 0.95
"""A sector's pipeline is short when the plan takes at least this share of what its candidates
could take at their maximum fund share."""

PLAN_CSV_COLUMNS = (
    "project",
    "name",
    "sector",
    "basis",
    "status",
    "proposal_quarter",
    "funding_quarter",
    "construction_start",
    "build_quarters",
    "expected_completion",
    "fund_usd",
    "decline_prob",
    "expected_committed_usd",
    "expected_recovery",
    "p_recoup",
    "marginal_value",
    "reason",
)


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
    pos = {pid: j for j, pid in enumerate(engine.project_ids)}
    cols = np.array([pos[s] for s in options.catalog.projects["scenario_id"]], dtype=np.intp)
    return replace(
        engine,
        project_ids=list(options.catalog.project_ids),
        project={k: v[:, cols] for k, v in engine.project.items()},
    )


def with_declines(
    scenarios: ScenarioSet, catalog: Catalog, config: RunConfig
) -> tuple[ScenarioSet, np.ndarray, np.ndarray]:
    """Each column's decline probability (from its expected recovery on ``scenarios``), the
    (scenario, column) declines and the set with them applied."""
    draw = scenarios.project["pv_draw"].mean(axis=0)
    japan = scenarios.project["pv_japan"].mean(axis=0)
    recovery = np.divide(japan, draw, out=np.zeros_like(japan), where=draw > 0)
    committed = (catalog.projects["status"].astype(str) == "committed").to_numpy()
    p = decline_probability(recovery, committed, config.plan.decline)
    return _declined(scenarios, catalog, p, config)


def _declined(
    scenarios: ScenarioSet, catalog: Catalog, p: np.ndarray, config: RunConfig
) -> tuple[ScenarioSet, np.ndarray, np.ndarray]:
    base = [str(b) for b in catalog.projects["project"]]
    mask = declined(scenarios, base, p, key_of_seed(config.seed))
    return apply_declines(scenarios, mask), p, mask


def run_plan(
    config: RunConfig,
    commitments: str | Path | None = None,
    out_dir: Path | None = None,
    backend: str | None = None,
    progress: RunProgress | None = None,
    no_commitments: bool = False,
    mapper: Mapper | None = None,
    forcing: Forcing | None = None,
) -> RunResult:
    """Plan the deployment and write the output folder (``out_dir``, else ``output.dir``).

    ``commitments`` (a CSV path) overrides ``plan.commitments``; None there too means the
    bundled first tranche; ``no_commitments`` plans every project as a candidate. The plan
    frontier (frontier.csv, :mod:`portopt.tradeoff`) is solved in local processes, or through
    ``mapper`` (the CLI's Dask cluster with ``--scheduler``). ``forcing``: projects forced in
    (at a round, or their best) or out (what-ifs). Raises a
    :class:`~portopt.errors.PortoptError` for a user's mistake or an infeasible plan; nothing is
    written then.
    """
    if backend is not None:
        config = _with_backend(config, backend)
    config = plan_config(config)
    target = Path(out_dir if out_dir is not None else config.output.dir)
    check_target(target, config.output.overwrite)
    s_opt, s_eval = config.scenarios.optimisation, config.scenarios.evaluation
    if s_eval < 1:
        raise ConfigError(
            [Problem("scenarios.evaluation", None, None, "must be at least 1 for a plan")],
            "no evaluation scenarios",
        )
    stage = _Stages(progress)
    t_start = time.perf_counter()

    with stage("catalog", label="Loading the catalog, the commitments and the plan's options"):
        catalog = load_catalog(config.catalog)
        path = commitments if commitments is not None else config.plan.commitments
        made = load_commitments(path, catalog, config, none=no_commitments)
        options = plan_options(catalog, config, made)
    check_run_fits(options.engine_catalog, config)
    n_engine = len(options.engine_catalog.project_ids)
    with stage(
        "scenarios_optimisation",
        s_opt,
        f"Generating {s_opt:,} optimisation scenarios of {n_engine:,} (project, start) pairs",
    ):
        engine = generate_scenarios(
            options.engine_catalog,
            config,
            backend=config.backend,
            scenarios=range(0, s_opt),
            progress=stage.advance,
        )
        plain = model_scenarios(engine, options)
        opt, p, declines = with_declines(plain, options.catalog, config)
        options.catalog.projects["decline_prob"] = p
    cat = options.catalog
    with stage("optimise", label="Choosing the plan"):
        model = build_model(cat, opt, config)
        if forcing:
            if not isinstance(model, DirectSweep):
                raise ConfigError(
                    [Problem("solver.name", None, None, "forcing projects needs the cut model")],
                    "bad forcing",
                )
            model.forcing = forcing
        allocation = optimize(cat, config, opt, model=model, progress=stage.solving)
        if forcing:
            check_forcing(forcing, model.data, allocation.y)
        allocation.in_sample = portfolio_figures(
            cat, config, opt, allocation.y, allocation.fund_usd
        )
    with stage("marginal", label="Re-solving each project in or out, the rest of the plan held"):
        marginal = plan_marginal(config, allocation, model, stage.advance)
    frontier = None
    if frontier_floors(config)[1:]:
        n = len(frontier_floors(config))
        with stage("frontier", label=f"Solving the plan at {n} expected-recovery floors"):
            frontier = plan_frontier(config, model, allocation, cat, declines, mapper=mapper)
    chosen = _chosen(cat, allocation.y)
    eval_catalog, eval_cols = _evaluation_catalog(options, chosen)
    chosen_rows = np.asarray(allocation.y)[eval_cols] > 0.5
    y = chosen_rows.astype(float)
    fund = np.where(chosen_rows, np.asarray(allocation.fund_usd)[eval_cols], 0.0)
    p_eval = cat.projects["decline_prob"].to_numpy()[eval_cols] * (y > 0.5)
    plain_agg = Aggregates(eval_catalog, y, fund, s_eval)
    declined_agg = Aggregates(eval_catalog, y, fund, s_eval)
    committed = np.empty(s_eval)
    with stage("scenarios_evaluation", s_eval, f"Generating {s_eval:,} fresh evaluation scenarios"):
        done = 0
        for block in evaluation_blocks(eval_catalog, config, fund, stage.advance):
            plain_agg.add(block)
            masked, _, mask = _declined(block, eval_catalog, p_eval, config)
            declined_agg.add(masked)
            committed[done : done + block.n] = (~mask * fund[None, :]).sum(axis=1)
            done += block.n
    eval_alloc = replace(allocation, ids=list(eval_catalog.project_ids), y=y, fund_usd=fund)
    with stage("evaluate"):
        plain_eval = evaluation_of(eval_alloc, eval_catalog, config, plain_agg)
        evaluation = evaluation_of(eval_alloc, eval_catalog, config, declined_agg)
        evaluation.allocation = _allocation_table(plain_eval.allocation, cat, eval_cols)
        table = plan_table(cat, allocation, engine, config.scenarios.start, evaluation.allocation)
        _add_marginal_columns(evaluation.allocation, marginal["marginal_values"])
        _add_plan_marginal(table, evaluation.allocation)
        distributions = _distributions(config, plain_agg)
        summary = plan_summary(
            config, catalog, options, table, allocation, committed, plain_eval, evaluation
        )

    def metrics_of() -> dict[str, Any]:
        metrics = _metrics(config, cat, allocation, evaluation, opt, distributions, stage.timings)
        metrics.update(marginal)
        metrics.update(_explanations(catalog, evaluation, marginal))
        metrics["plan"] = summary
        metrics["projects"] = {
            "selected": len(table),
            "candidates": len(catalog.project_ids),
            "columns": len(cat.project_ids),
            "engine_columns": n_engine,
        }
        metrics["notes"] = list(metrics.get("notes", [])) + options.notes
        return metrics

    tables = {PLAN_FILE: table}
    if frontier is not None:
        tables[FRONTIER_FILE] = frontier
    return write_outputs(target, config, stage, t_start, evaluation, opt, metrics_of, tables)


def check_forcing(forcing: Forcing, data: Any, y: np.ndarray) -> None:
    """Raise :class:`InfeasibleError` when the plan ``y`` breaks the forcing (the cut model
    found none that keeps it, and another formulation answered without it)."""
    rows, zero = forcing.columns(data)
    chosen = np.asarray(y) > 0.5
    if chosen[zero].any() or any(chosen[cols].sum() != 1 for cols in rows):
        raise InfeasibleError(
            "no plan satisfies every rule with " + ", ".join(forcing.describe()), []
        )


def plan_marginal(
    config: RunConfig,
    allocation: Any,
    model: object,
    advance: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """metrics.json's ``marginal_values`` of a plan (:func:`portopt.model.marginal.plan_values`:
    each project in or out, the rest of the plan held fixed); empty, with a note, when the cut
    model did not choose the plan."""
    if not isinstance(model, DirectSweep) or allocation.objective is None or model.milp is None:
        note = "marginal values need the cut model's solve (solver.name auto or highs_direct)"
        return {"marginal_values": [], "relaxations": [], "marginal_note": note}
    values = plan_values(
        model, allocation.y, allocation.objective, allocation.mip_gap, config, advance
    )
    note = (
        "each project's value is the plan with it minus the plan without it, every other"
        " project's round held as chosen and the amounts re-optimised (not a full re-plan)"
    )
    return {"marginal_values": as_records(values), "relaxations": [], "marginal_note": note}


def _chosen(cat: Catalog, y: np.ndarray) -> dict[str, int]:
    """Each selected project's column."""
    base = cat.projects["project"].astype(str).to_numpy()
    return {str(base[j]): int(j) for j in np.flatnonzero(y > 0.5)}


def _evaluation_catalog(options: PlanOptions, chosen: dict[str, int]) -> tuple[Catalog, list[int]]:
    """One row per project, under its own id, at its chosen start (else its first column's),
    and the model column each row stands for."""
    cat = options.catalog
    base = cat.projects["project"].astype(str).to_numpy()
    cols: list[int] = []
    for pid in dict.fromkeys(base.tolist()):
        cols.append(chosen.get(pid, int(np.flatnonzero(base == pid)[0])))
    ids = [str(cat.projects["scenario_id"].iloc[j]) for j in cols]
    eng = options.engine_catalog
    projects = eng.projects.loc[ids].copy()
    projects.index = pd.Index(base[cols], name=eng.projects.index.name)
    capacity = eng.capacity.loc[ids].set_axis(projects.index, axis=0)
    return Catalog(projects, eng.chokepoints, capacity, eng.source), cols


def _allocation_table(table: pd.DataFrame, cat: Catalog, cols: list[int]) -> pd.DataFrame:
    """allocation.csv of a plan: one row per project (its id, not the engine column's), with
    the round it is proposed in (blank when left out)."""
    out = table.copy()
    pr = cat.projects
    selected = out["selected"].to_numpy()
    for name in ("proposal_quarter", "funding_quarter", "construction_start"):
        values = pr[name].astype(str).to_numpy()[cols]
        out[name] = np.where(selected, values, "")
    out["decline_prob"] = np.where(selected, pr["decline_prob"].to_numpy()[cols].round(6), np.nan)
    return out


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
        p = float(r["decline_prob"])
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


def _add_plan_marginal(table: pd.DataFrame, by_project: pd.DataFrame) -> None:
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
