"""Every exploration tool on the plan: ``frontier``, ``whatif`` and ``robustness`` run plans by
default and take ``--commitments``; ``whatif --force-in ID[@QUARTER]`` and ``--force-out ID``
(portopt.model.forcing); a candidate the base plan left out is reported as such."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from portopt.catalog import load_catalog
from portopt.cli.main import app
from portopt.config import load_config
from portopt.errors import EXIT_BAD_INPUT
from portopt.model.forcing import Forcing, parse_force_in
from portopt.plan.commitments import bundled_path
from portopt.planning import run_plan

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "model.groups.recoupment.min_expected_recovery"


def _small(folder: Path, floor: float = 0.95) -> Path:
    """The default config on the bundled catalog, few scenarios, three rounds a project."""
    config = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    config["scenarios"].update(optimisation=60, evaluation=40)
    config["plan"]["rounds_per_project"] = 3
    config["plan"]["frontier"]["enabled"] = False
    config["solver"].update(mip_gap=0.01, time_limit_s=120)
    config["output"].update(scenarios_parquet=False, report=False)
    config["model"]["groups"]["recoupment"]["min_expected_recovery"] = floor
    path = folder / f"small-{floor}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tools")


def test_frontier_of_floors_equals_the_plans_run_alone(folder: Path) -> None:
    config = _small(folder)
    out = folder / "frontier"
    vary = f"{FLOOR}=0.95,0.85"
    result = cli(
        "frontier",
        str(config),
        "--vary",
        vary,
        "--commitments",
        str(bundled_path()),
        "--workers",
        "2",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "frontier.csv")
    assert list(table[FLOOR]) == [0.95, 0.85]
    for floor, row in zip((0.95, 0.85), table.to_dict("records"), strict=True):
        alone = run_plan(load_config(config, [f"{FLOOR}={floor}"]), out_dir=folder / f"p{floor}")
        plan = alone.metrics["plan"]
        assert row["status"] == alone.metrics["status"] == "optimal"
        assert row["capital_usd"] == pytest.approx(
            plan["committed_expected_usd"], rel=1e-9
        )  # frontier.csv keeps 10 digits
        assert row["coverage"] == pytest.approx(
            plan["coverage"], rel=1e-9
        )  # frontier.csv keeps 10 digits
        assert row["n_selected"] == alone.metrics["projects"]["selected"]
    # a lower floor commits more
    assert table["capital_usd"].iloc[1] > table["capital_usd"].iloc[0]


def test_whatif_force_in_alaska_lng_runs_on_plans(folder: Path) -> None:
    config = _small(folder, 0.75)
    out = folder / "force-in"
    result = cli(
        "whatif",
        str(config),
        "--force-in",
        "alaska_lng",
        "--commitments",
        str(bundled_path()),
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == "plan"
    assert summary["variant"].startswith("force alaska_lng in")
    changes = pd.read_csv(out / "whatif.csv", keep_default_na=False)
    row = changes.set_index("project_id").loc["alaska_lng"]
    assert row["cause"] == "forced in"
    assert row["variant_quarter"] != ""  # the variant plan proposes it


def test_force_in_at_a_quarter_and_force_out(folder: Path) -> None:
    config = load_config(_small(folder, 0.75))
    forced = run_plan(
        config,
        out_dir=folder / "at",
        forcing=Forcing(parse_force_in(["alaska_lng@2027Q2"]), ("mp_materials_10x_magnets",)),
    )
    plan = pd.read_csv(forced.out_dir / "plan.csv", keep_default_na=False).set_index("project_id")
    assert plan.loc["alaska_lng", "proposal_quarter"] == "2027Q2"
    assert "mp_materials_10x_magnets" not in plan.index


def test_a_candidate_the_base_left_out_is_reported_as_such(folder: Path) -> None:
    config = _small(folder)
    base = run_plan(load_config(config), out_dir=folder / "base")
    chosen = set(pd.read_csv(base.out_dir / "plan.csv")["project_id"])
    left_out = next(p for p in base.allocation["project_id"] if p not in chosen)
    out = folder / "left-out"
    result = cli("whatif", str(config), "--force-out", left_out, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["not_in_base_plan"] == [left_out]
    assert summary["variant_solve"]["kept_base"] is True
    assert summary["deltas"]["committed_expected_usd"]["delta"] == 0.0
    changes = pd.read_csv(out / "whatif.csv", keep_default_na=False).set_index("project_id")
    assert changes.loc[left_out, "note"] == "not in the base plan"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--force-in", "alaska_lgn"], "--force-in: unknown project 'alaska_lgn' (did you mean"),
        (["--force-in", "alaska_lng@2027Q5"], "'2027Q5' is not a quarter"),
        (["--one-shot", "--force-in", "alaska_lng"], "--force-in: works on plans"),
        (["--commitments", "x.csv", "--one-shot", "--drop", "a"], "--commitments: works on plans"),
        (["--force-out", "texas_gulflink"], "--force-out: 'texas_gulflink' is committed"),
        (["--drop", "texas_gulflink"], "--drop: 'texas_gulflink' is committed"),
        (["--force-in", "alaska_lng@2031Q1"], "'alaska_lng' cannot be proposed in 2031Q1"),
        (["--force-in", "alaska_lng", "--force-out", "alaska_lng"], "is forced out too"),
    ],
    ids=[
        "unknown",
        "bad-quarter",
        "one-shot-force",
        "one-shot-commitments",
        "committed-out",
        "committed-drop",
        "round-not-open",
        "in-and-out",
    ],
)
def test_bad_forcing_exits_2(folder: Path, args: list[str], message: str) -> None:
    out = folder / "bad"
    result = cli("whatif", str(_small(folder)), *args, "--out", str(out))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert message in result.output.replace("\n", " ")
    assert not out.exists()


def test_robustness_runs_plans_with_commitments(folder: Path) -> None:
    out = folder / "robust"
    result = cli(
        "robustness",
        str(_small(folder, 0.85)),
        "--batches",
        "2",
        "--vary",
        "scenarios",
        "--commitments",
        str(bundled_path()),
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    core = pd.read_csv(out / "robustness.csv", keep_default_na=False).set_index("project_id")
    # the committed first tranche is in every batch's plan
    for pid in ("sb_energy_portsmouth_gas", "texas_gulflink", "element_six_diamond_grit"):
        assert core.loc[pid, "core_index"] == 1.0


# ---------------------------------------------------------------- marginal values as re-plans


@pytest.fixture
def six(small_catalog: Any, tmp_path: Path) -> Path:
    """The six-project catalog with fixed fund shares, every project a candidate."""
    from tests.conftest import write_catalog_csv

    cat = small_catalog
    projects = cat.projects.copy()
    projects["max_fund_share"] = projects["min_fund_share"] = 0.5
    projects["status"] = "candidate"
    out = tmp_path / "catalog"
    write_catalog_csv(type(cat)(projects, cat.chokepoints, cat.capacity, cat.source), out)
    return out


def _six_config(folder: Path, *sets: str) -> Any:
    return load_config(
        ROOT / "configs" / "default.yaml",
        [
            f"catalog={folder}",
            "scenarios.optimisation=60",
            "scenarios.evaluation=40",
            "plan.first_quarter=2027Q1",
            "plan.deadline=2027-09-30",
            "model.groups.review_capacity.per_quarter=2",
            "model.groups.recoupment.min_expected_recovery=0.5",
            "model.groups.recoupment.max_shortfall_share=1.5",
            "model.groups.sector_shares.enabled=false",
            "model.budget_usd=8e10",
            "plan.target_usd=8e10",
            "plan.frontier.enabled=false",
            "solver.mip_gap=0",
            "solver.time_limit_s=60",
            *sets,
        ],
    )


def test_a_plans_marginal_value_is_the_difference_of_two_full_plans(six: Path) -> None:
    base = run_plan(_six_config(six, "plan.marginal=replan"), write=False)
    values = {v["project_id"]: v for v in base.metrics["marginal_values"]}
    assert "two full plans" in base.metrics["marginal_note"]
    objective = 100.0 * base.metrics["objective"]
    chosen = set(base.plan["project_id"])
    config = _six_config(six)
    checked = 0
    for pid, value in values.items():
        if value["reason"] == "committed" or value["marginal_value"] is None:
            continue
        forcing = Forcing({}, (pid,)) if pid in chosen else Forcing({pid: None})
        other = 100.0 * run_plan(config, write=False, forcing=forcing).metrics["objective"]
        expected = objective - other if pid in chosen else other - objective
        assert value["marginal_value"] == pytest.approx(expected, abs=5e-4), pid  # 3 digits
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("mode", ["held", "replan"])
def test_a_plans_candidate_kept_out_names_the_groups(six: Path, mode: str) -> None:
    """The energy sector capped at 0%: its projects cannot be added; ``kept_out_by`` names the
    sector rule (a full re-plan: the minimal set with the project forced in; the plan held:
    every rule that adding it to the plan as it is breaks)."""
    config = _six_config(
        six,
        "model.groups.sector_shares.enabled=true",
        "model.groups.sector_shares.bounds.energy=[0.0, 0.0]",
        f"plan.marginal={mode}",
    )
    values = run_plan(config, write=False).metrics["marginal_values"]
    energy = {"gas_ohio", "ap1000_pair"}
    for v in values:
        if v["project_id"] in energy:
            assert not v["selected"]
            if mode == "replan":
                assert v["kept_out_by"] == ["sector_shares"], v["reason"]
                assert "that rule alone keeps it out" in v["reason"]
            else:
                assert "sector_shares" in v["kept_out_by"], v["reason"]
                assert "sector_shares: energy holds" in v["reason"]
        else:
            assert v["kept_out_by"] == [], v


@pytest.mark.slow
def test_three_alternatives_within_the_slack_and_distinct(folder: Path) -> None:
    out = folder / "alternatives"
    args = ["plan", str(_small(folder)), "--alternatives", "3", "--slack", "1%"]
    result = cli(*args, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "alternatives.csv", keep_default_na=False)
    assert list(table["alternative"]) == [0, 1, 2, 3]
    metrics = json.loads((out / "metrics.json").read_text())
    assert table["objective"].iloc[0] == pytest.approx(metrics["objective"], rel=1e-9)
    assert (table["gives_up"] <= 0.01 + 1e-6).all()
    assert (table["objective"] >= 0.99 * metrics["objective"] - 1e-6).all()
    plans = [frozenset(p.split(";")) for p in table["projects"]]
    assert len(set(plans)) == 4  # the plan and three distinct alternatives
    for plan, adds, drops in zip(plans[1:], table["adds"][1:], table["drops"][1:], strict=True):
        assert plan == (plans[0] | set(filter(None, adds.split(";")))) - set(drops.split(";"))
    _check_bench(out, metrics)


def _check_bench(out: Path, metrics: dict[str, Any]) -> None:
    """bench.csv: a row per new proposal; a substitute is a candidate the plan left out, in
    the proposal's round; it never does worse than the empty slot, whose loss is the
    proposal's own marginal value with the rest of the plan held (plan_values, another
    code path)."""
    bench = pd.read_csv(out / "bench.csv", keep_default_na=False)
    plan = pd.read_csv(out / "plan.csv", keep_default_na=False)
    proposed = plan[plan["status"] != "committed"]
    assert sorted(zip(bench["proposal_quarter"], bench["project_id"], strict=True)) == sorted(
        zip(proposed["proposal_quarter"], proposed["project_id"], strict=True)
    )
    values = {v["project_id"]: v for v in metrics["marginal_values"]}
    gap = 100 * metrics["objective"] * 0.01 * 2  # two solves, each within solver.mip_gap
    solved = bench[bench["status"] == "optimal"]
    assert len(solved) >= len(bench) // 2
    subs = solved[solved["substitute_id"] != ""]
    assert len(subs) >= 1
    assert not set(subs["substitute_id"]) & set(plan["project_id"])
    for r in solved.itertuples():
        assert float(r.value_lost) <= float(r.value_lost_empty) + gap
        mv = values[r.project_id]["marginal_value"]
        if mv is not None:
            assert float(r.value_lost_empty) == pytest.approx(mv, abs=gap)


def test_bad_slack_exits_2(folder: Path) -> None:
    result = cli("plan", str(_small(folder)), "--alternatives", "2", "--slack", "one")
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "--slack" in result.output


def test_a_support_lever_reports_its_cost_beside_its_effect(folder: Path) -> None:
    config = _small(folder, 0.85)
    base = run_plan(load_config(config), write=False)
    plan = base.plan.set_index("project_id")
    pid = next(p for p in plan.index if plan.loc[p, "status"] != "committed")
    key = f"support.projects.{pid}.capex_reduction"
    out = folder / "support"
    result = cli("whatif", str(config), "--variant-set", f"{key}=0.3", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["variant"] == f"set {key}=0.3 (base None)"
    support = summary["us_support"]
    [row] = support["variant"]["projects"]
    assert row["project"] == pid and row["capex_reduction"] == 0.3
    base_cost = float(load_catalog(None).projects.loc[pid, "base_cost_usd"])
    assert row["proposed"]  # cheaper to Japan, the plan keeps it
    assert row["capex_cost_usd"] == pytest.approx(0.3 * base_cost)
    assert support["cost_expected_usd"] == pytest.approx(row["capex_cost_expected_usd"])
    assert 0 < support["cost_expected_usd"] <= 0.3 * base_cost
    # the effect beside it: the project's amount is a share of a lower cost
    changes = pd.read_csv(out / "whatif.csv", keep_default_na=False).set_index("project_id")
    assert changes.loc[pid, "variant_fund_usd"] < changes.loc[pid, "base_fund_usd"]
    assert set(summary["deltas"]) >= {"committed_expected_usd", "coverage_score", "recovery_ratio"}
    assert "US support costs" in cli(
        "whatif", str(config), "--variant-set", f"{key}=0.3", "--out", str(out)
    ).output.replace("\n", " ")


def test_a_price_floor_reports_what_it_costs_the_us(folder: Path) -> None:
    config = _small(folder, 0.85)
    base = run_plan(load_config(config), write=False)
    plan = base.plan.set_index("project_id")
    catalog = load_catalog(None).projects
    priced = catalog["price_factor"].astype(str) != "none"
    pid = next(p for p in plan.index if plan.loc[p, "status"] != "committed" and priced[p])
    key = f"support.projects.{pid}"
    sets = [f"{key}.price_floor=1.3", f"{key}.price_floor_years=10"]
    out = folder / "floor"
    args = [x for s in sets for x in ("--variant-set", s)]
    result = cli("whatif", str(config), *args, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    support = json.loads(result.stdout)["us_support"]
    [row] = support["variant"]["projects"]
    assert row["price_floor"] == 1.3 and row["price_floor_share"] == 1.0
    assert row["price_floor_years"] == 10
    assert row["proposed"]  # a floor only adds to the project's cash: the plan keeps it
    # 1.3 x today's price for ten years pays in some scenarios, at most the floor's whole
    # value on every unit sold over the term
    assert row["floor_cost_expected_usd"] > 0
    assert support["cost_expected_usd"] == pytest.approx(row["floor_cost_expected_usd"])
    assert row["capex_cost_expected_usd"] == 0.0
    words = cli("whatif", str(config), *args, "--out", str(out)).output.replace("\n", " ")
    assert "price floors' top-ups" in words


def test_a_lever_on_an_unknown_project_is_named_before_any_plan(folder: Path) -> None:
    config = _small(folder, 0.85)
    out = folder / "unknown-lever"
    key = "support.projects.vulcan_magnets.price_floor"
    result = cli("frontier", str(config), "--vary", f"{key}=1.0,1.3", "--out", str(out))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    text = result.output.replace("\n", " ")
    assert "support.projects.vulcan_magnets" in text and "is not a catalog project" in text
    assert "vulcan_elements_benson_magnets" in text  # the near match
    assert "Traceback" not in text and not out.exists()
