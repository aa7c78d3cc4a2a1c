"""The deployment plan (portopt.plan, portopt.planning): rounds, commitments, the plan's columns,
exhaustive enumeration on a small catalog, re-planning with more rounds committed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _runs import default_run
from typer.testing import CliRunner

from portopt.catalog import load_catalog
from portopt.cli.main import app
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.errors import EXIT_BAD_INPUT, InputError
from portopt.model import optimize
from portopt.model.data import build_data, scores
from portopt.model.groups import GROUPS
from portopt.model.terms import Solution
from portopt.plan import load_commitments, plan_options, rounds
from portopt.plan.calendar import decision_date
from portopt.plan.commitments import Commitment, write_commitments
from portopt.planning import model_scenarios, plan_config, run_plan, with_declines
from tests.conftest import write_catalog_csv

ROOT = Path(__file__).resolve().parents[1]


def _config(folder: Path, out: Path, **plan: object) -> object:
    """A small plan: three rounds (2027Q1..Q3), two reviews a round, fixed fund shares."""
    sets = [
        f"catalog={folder}",
        f"output.dir={out}",
        "scenarios.optimisation=60",
        "scenarios.evaluation=40",
        "plan.first_quarter=2027Q1",
        "plan.deadline=2027-09-30",
        "model.groups.review_capacity.per_quarter=2",
        "model.groups.max_projects.enabled=false",
        "model.groups.recoupment.min_expected_recovery=0.5",
        "model.groups.recoupment.max_shortfall_share=1.5",
        "model.groups.sector_shares.enabled=false",
        "model.budget_usd=8e10",
        "plan.target_usd=8e10",
        "solver.mip_gap=0",
        "solver.time_limit_s=60",
        "output.report=false",
        "output.scenarios_parquet=false",
    ]
    sets += [f"plan.{k}={v}" for k, v in plan.items()]
    return load_config(ROOT / "configs" / "default.yaml", sets)


@pytest.fixture
def catalog_folder(small_catalog, tmp_path: Path) -> Path:
    cat = small_catalog
    projects = cat.projects.copy()
    projects["max_fund_share"] = projects["min_fund_share"] = 0.5
    projects["status"] = "candidate"
    out = tmp_path / "catalog"
    write_catalog_csv(type(cat)(projects, cat.chokepoints, cat.capacity, cat.source), out)
    return out


def _commit(tmp_path: Path, rows: list[tuple[str, str, float]]) -> Path:
    path = tmp_path / "commitments.csv"
    write_commitments([Commitment(*r) for r in rows], path)
    return path


def test_rounds_run_to_the_last_decision_inside_the_deadline() -> None:
    plan = load_config(ROOT / "configs" / "default.yaml").plan
    found = rounds(plan)
    assert [r.quarter for r in found] == [f"{y}Q{q}" for y in (2027, 2028) for q in range(1, 5)]
    # 2 October 2028 + 45 business days is 4 December 2028; a 2029Q1 proposal misses 19 January
    assert found[-1].decided == "2028-12-04"
    assert str(decision_date("2029Q1", 45)) > plan.deadline
    assert found[0].construction_start("2026Q2") == "2027Q2"
    assert found[0].construction_start("2028Q3") == "2028Q3"


def test_the_bundled_commitments_are_the_first_tranche() -> None:
    config = load_config(ROOT / "configs" / "default.yaml")
    catalog = load_catalog(None)
    made = load_commitments(None, catalog, config)
    assert {c.project for c in made} == set(
        catalog.projects.index[catalog.projects["status"] == "committed"]
    )
    assert {c.quarter for c in made} == {"2026Q1"}
    assert sum(c.amount_usd for c in made) == pytest.approx(36.0e9)


BAD_COMMITMENTS = {
    "unknown project": ("nope,2026Q1,1e9", 2, "project", "not a catalog project"),
    "bad quarter": ("gas_ohio,2026Q5,5e9", 2, "quarter", "not a quarter"),
    "before the start": ("gas_ohio,2025Q4,5e9", 2, "quarter", "before scenarios.start"),
    "after the deadline": ("gas_ohio,2030Q1,5e9", 2, "quarter", "after the deadline"),
    "negative amount": ("gas_ohio,2026Q1,-5", 2, "amount_usd", "not a positive number"),
    "text amount": ("gas_ohio,2026Q1,lots", 2, "amount_usd", "not a positive number"),
    "above the cost": ("gas_ohio,2026Q1,1e12", 2, "amount_usd", "above the maximum"),
    "twice": ("gas_ohio,2026Q1,5e9\ngas_ohio,2026Q2,5e9", 3, "project", "committed twice"),
}


@pytest.mark.parametrize("case", list(BAD_COMMITMENTS))
def test_a_bad_commitments_file_names_row_and_column(
    case: str, small_catalog, tmp_path: Path
) -> None:
    body, row, column, words = BAD_COMMITMENTS[case]
    path = tmp_path / "c.csv"
    path.write_text("project,quarter,amount_usd\n" + body + "\n")
    config = load_config(ROOT / "configs" / "default.yaml")
    with pytest.raises(InputError) as info:
        load_commitments(path, small_catalog, config)
    problem = info.value.problems[-1]
    assert (problem.file, problem.row, problem.column) == (str(path), row, column)
    assert words in problem.message
    assert info.value.exit_code == EXIT_BAD_INPUT


def test_a_missing_column_or_file_is_named(small_catalog, tmp_path: Path) -> None:
    config = load_config(ROOT / "configs" / "default.yaml")
    path = tmp_path / "c.csv"
    path.write_text("project,amount_usd\ngas_ohio,1e9\n")
    with pytest.raises(InputError, match="quarter"):
        load_commitments(path, small_catalog, config)
    with pytest.raises(InputError, match="no such file"):
        load_commitments(tmp_path / "absent.csv", small_catalog, config)


def test_the_cli_refuses_a_bad_commitments_file_and_writes_nothing(
    catalog_folder: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("project,quarter,amount_usd\nnope,2026Q1,1e9\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "plan",
            str(ROOT / "configs" / "default.yaml"),
            "--commitments",
            str(bad),
            "--out",
            str(out),
            "--set",
            f"catalog={catalog_folder}",
        ],
    )
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "row 2" in result.output and "'project'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_columns_one_per_round_and_engine_columns_one_per_start(
    catalog_folder: Path, tmp_path: Path
) -> None:
    config = plan_config(_config(catalog_folder, tmp_path / "o"))
    catalog = load_catalog(config.catalog)
    made = [
        Commitment("gas_ohio", "2026Q1", 0.5 * catalog.projects.loc["gas_ohio", "base_cost_usd"])
    ]
    options = plan_options(catalog, config, made)
    pr = options.catalog.projects
    assert (pr.loc[pr["project"] == "gas_ohio", "status"] == "committed").all()
    assert (pr["project"] == "gas_ohio").sum() == 1
    for pid in catalog.project_ids:
        if pid != "gas_ohio":
            assert list(pr.loc[pr["project"] == pid, "proposal_quarter"]) == [
                "2027Q1",
                "2027Q2",
                "2027Q3",
            ]
    eng = options.engine_catalog.projects
    assert eng.index.is_unique and set(eng["entity_id"]) == set(catalog.project_ids)
    # rounds that start a project at the same quarter share one engine column
    assert len(eng) == pr["scenario_id"].nunique() <= len(pr)


def _exact_objective(data, config, y: np.ndarray) -> tuple[float, np.ndarray]:
    f = data.f_max * y
    m = config.model
    tiebreak = m.recovery_tiebreak / (m.budget_usd / 1e9)
    value = float(scores(data, y).mean())
    value += tiebreak * float((data.e_japan - data.e_draw) @ f) + float(data.f_reward @ f)
    return value, f


def test_the_plan_equals_exhaustive_enumeration(catalog_folder: Path, tmp_path: Path) -> None:
    """Five candidates, each never or proposed in one of three rounds (4^5 plans), one project
    committed: the solver's plan is the best plan that every group admits."""
    config = plan_config(_config(catalog_folder, tmp_path / "o"))
    catalog = load_catalog(config.catalog)
    made = [
        Commitment("gas_ohio", "2026Q1", 0.5 * catalog.projects.loc["gas_ohio", "base_cost_usd"])
    ]
    options = plan_options(catalog, config, made)
    engine = generate_scenarios(
        options.engine_catalog, config, backend="numpy", scenarios=range(60)
    )
    opt, p, _ = with_declines(model_scenarios(engine, options), options.catalog, config)
    options.catalog.projects["decline_prob"] = p
    cat = options.catalog
    allocation = optimize(cat, config, opt)
    assert allocation.status == "optimal"

    data = build_data(cat, opt, config)
    groups = [g(data, config) for g in GROUPS]
    groups = [g for g in groups if g.enabled(config)]
    base = cat.projects["project"].to_numpy()
    candidates = [pid for pid in dict.fromkeys(base) if pid != "gas_ohio"]
    assert len(candidates) == 5
    best, best_y, feasible = -np.inf, None, 0
    for choice in itertools.product(range(4), repeat=len(candidates)):  # 0: never, k: round k
        y = (base == "gas_ohio").astype(float)
        for pid, k in zip(candidates, choice, strict=True):
            if k:
                y[np.flatnonzero(base == pid)[k - 1]] = 1.0
        value, f = _exact_objective(data, config, y)
        if any(g.check(Solution(y=y, f=f), data, config) for g in groups):
            continue
        feasible += 1
        if value > best + 1e-12:
            best, best_y = value, y
    assert 1 < feasible < 4 ** len(candidates)  # the rules bind: not every plan is admitted
    assert allocation.objective == pytest.approx(best, rel=1e-9, abs=1e-12)
    # the solver's plan is one of the best (rounds that start a project alike are ties)
    y = np.round(allocation.y)
    value, f = _exact_objective(data, config, y)
    assert not [line for g in groups for line in g.check(Solution(y=y, f=f), data, config)]
    assert value == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert best_y is not None


@pytest.mark.slow
def test_a_replan_keeps_every_committed_decision(catalog_folder: Path, tmp_path: Path) -> None:
    config = _config(catalog_folder, tmp_path / "first")
    catalog = load_catalog(config.catalog)
    tranche = [("gas_ohio", "2026Q1", 0.5 * catalog.projects.loc["gas_ohio", "base_cost_usd"])]
    first = run_plan(config, commitments=_commit(tmp_path, tranche))
    plan = pd.read_csv(first.out_dir / "plan.csv")
    round_one = plan[plan["proposal_quarter"] == "2027Q1"]
    assert len(round_one) >= 1
    decided = tranche + [
        (r.project, r.proposal_quarter, float(r.fund_usd)) for r in round_one.itertuples()
    ]
    again = _config(catalog_folder, tmp_path / "second")
    second = run_plan(again, commitments=_commit(tmp_path, decided))
    replan = pd.read_csv(second.out_dir / "plan.csv").set_index("project")
    for pid, quarter, amount in decided:
        assert replan.loc[pid, "proposal_quarter"] == quarter
        assert replan.loc[pid, "status"] == "committed"
        assert replan.loc[pid, "fund_usd"] == pytest.approx(amount, rel=1e-12)
    # only later rounds are open: nothing new is proposed in or before the committed round
    new = replan[replan["status"] == "proposed"]
    assert set(new["proposal_quarter"]) <= {"2027Q2", "2027Q3"}
    assert second.metrics["plan"]["first_quarter"] == "2027Q2"


def test_every_proposal_lies_inside_the_window_and_the_capacity(
    catalog_folder: Path, tmp_path: Path
) -> None:
    config = _config(catalog_folder, tmp_path / "o")
    result = run_plan(config)
    plan = pd.read_csv(result.out_dir / "plan.csv")
    new = plan[plan["status"] == "proposed"]
    assert set(new["proposal_quarter"]) <= {"2027Q1", "2027Q2", "2027Q3"}
    assert new.groupby("proposal_quarter").size().max() <= 2
    summary = result.metrics["plan"]
    assert summary["committed_expected_usd"] == pytest.approx(plan["expected_committed_usd"].sum())
    assert summary["proposed_usd"] >= summary["committed_expected_usd"]
    assert summary["deployment_gap_usd"] == pytest.approx(
        max(0.0, summary["target_usd"] - summary["committed_expected_usd"])
    )
    assert summary["rounds"][-1]["cumulative_committed_usd"] == pytest.approx(
        summary["committed_expected_usd"]
    )


@pytest.mark.slow
def test_the_default_job_is_the_plan(default_run) -> None:
    """``make run``: plan.csv with every proposal in [plan.first_quarter, the deadline], each
    round within the review capacity, the first tranche fixed in 2026Q1, the committed capital
    against the target in metrics.json and in the report's calendar and curve."""
    config = load_config(ROOT / "configs" / "default.yaml")
    plan = pd.read_csv(default_run.out_dir / "plan.csv")
    summary = default_run.metrics["plan"]
    committed = plan[plan["status"] == "committed"]
    assert set(committed["project"]) == {
        "sb_energy_portsmouth_gas",
        "texas_gulflink",
        "element_six_diamond_grit",
    }
    assert set(committed["proposal_quarter"]) == {"2026Q1"}
    new = plan[plan["status"] == "proposed"]
    assert len(new) > 0
    allowed = {r.quarter for r in rounds(config.plan)}
    assert set(new["proposal_quarter"]) <= allowed
    cap = config.model.groups.review_capacity.per_quarter
    assert new.groupby("proposal_quarter").size().max() <= cap
    assert summary["target_usd"] == config.plan.target_usd
    assert summary["committed_expected_usd"] == pytest.approx(plan["expected_committed_usd"].sum())
    html = (default_run.out_dir / "report.html").read_text()
    assert "plot-plan-calendar" in html or "calendar" in html.lower()


__all__ = ["default_run"]  # a fixture, imported so pytest finds it here


@pytest.mark.slow
def test_a_plan_value_is_the_difference_of_two_solves(
    catalog_folder: Path, small_catalog, tmp_path: Path
) -> None:
    """A chosen project's value with the rest of the plan held: the plan's objective minus
    that of a fresh plan in which every other chosen project is committed as chosen and the
    project is gone (fixed fund shares, no declines: the two models differ only there)."""
    from portopt.model import build_model
    from portopt.model.marginal import POINTS, plan_values

    config = plan_config(_config(catalog_folder, tmp_path / "o", **{"decline.enabled": "false"}))
    catalog = load_catalog(config.catalog)
    options = plan_options(catalog, config, [])
    engine = generate_scenarios(
        options.engine_catalog, config, backend="numpy", scenarios=range(60)
    )
    opt, p, _ = with_declines(model_scenarios(engine, options), options.catalog, config)
    options.catalog.projects["decline_prob"] = p
    sweep = build_model(options.catalog, opt, config)
    allocation = optimize(options.catalog, config, opt, model=sweep)
    values = {
        v.project_id: v for v in plan_values(sweep, allocation.y, allocation.objective, 0.0, config)
    }
    pr = options.catalog.projects
    chosen = [
        (str(pr["project"].iloc[j]), str(pr["proposal_quarter"].iloc[j]), allocation.fund_usd[j])
        for j in np.flatnonzero(allocation.y > 0.5)
    ]
    assert len(chosen) >= 2
    q = chosen[0][0]
    rest = [c for c in chosen if c[0] != q]

    keep = [i for i in small_catalog.project_ids if i != q]
    sub = small_catalog.subset(keep)
    projects = sub.projects.copy()
    projects["max_fund_share"] = projects["min_fund_share"] = 0.5
    projects["status"] = "candidate"
    folder = write_catalog_csv(
        type(sub)(projects, sub.chokepoints, sub.capacity, sub.source), tmp_path / "without"
    )
    other = plan_config(_config(folder, tmp_path / "o2", **{"decline.enabled": "false"}))
    made = [Commitment(pid, quarter, float(f)) for pid, quarter, f in rest]
    o2 = plan_options(load_catalog(other.catalog), other, made)
    e2 = generate_scenarios(o2.engine_catalog, other, backend="numpy", scenarios=range(60))
    s2, p2, _ = with_declines(model_scenarios(e2, o2), o2.catalog, other)
    o2.catalog.projects["decline_prob"] = p2
    without = optimize(o2.catalog, other, s2)
    assert values[q].value_if_forced_out == pytest.approx(POINTS * without.objective, rel=1e-9)
    assert values[q].marginal_value == pytest.approx(
        POINTS * (allocation.objective - without.objective), rel=1e-9, abs=1e-9
    )


@pytest.mark.slow
def test_the_plan_command_prints_the_plan(catalog_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    sets = [
        f"catalog={catalog_folder}",
        "scenarios.optimisation=40",
        "scenarios.evaluation=20",
        "plan.deadline=2027-09-30",
        "model.budget_usd=8e10",
        "plan.target_usd=8e10",
        "model.groups.recoupment.min_expected_recovery=0.5",
        "model.groups.recoupment.max_shortfall_share=1.5",
        "output.report=false",
    ]
    args = ["plan", str(ROOT / "configs" / "default.yaml"), "--out", str(out)]
    for item in sets:
        args += ["--set", item]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "Committed by the deadline" in table.output and "2027Q1" in table.output
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["proposals"] == len(pd.read_csv(out / "plan.csv"))
    assert summary["target_usd"] == 8e10


@pytest.mark.slow
def test_a_hard_target_is_met_or_named(catalog_folder: Path, tmp_path: Path) -> None:
    """A hard target holds on expected committed capital; one out of reach stops with exit 3
    naming the capital group; a soft target below the budget is refused as bad input."""
    met = run_plan(_config(catalog_folder, tmp_path / "hard", target="hard", target_usd=1.5e10))
    assert met.metrics["plan"]["committed_expected_usd"] >= 1.5e10 * (1 - 1e-9)
    assert met.metrics["plan"]["target_kind"] == "hard"
    args = ["plan", str(ROOT / "configs" / "default.yaml"), "--out", str(tmp_path / "no")]
    for item in (
        f"catalog={catalog_folder}",
        "scenarios.optimisation=40",
        "scenarios.evaluation=20",
        "plan.deadline=2027-09-30",
        "model.budget_usd=8e10",
        "plan.target=hard",
        "plan.target_usd=8e10",
    ):
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "capital" in result.output and not (tmp_path / "no").exists()
    soft = [*args[:-2], "--set", "plan.target=soft", "--set", "plan.target_usd=4e10"]
    refused = CliRunner().invoke(app, soft)
    assert refused.exit_code == EXIT_BAD_INPUT, refused.output
    assert "plan.target_usd" in refused.output
