"""Round over round: ``portopt plan --commitments NEW --compare RUN_DIR`` (portopt.compare)
says what changed since the previous plan and why; a bad RUN_DIR exits 2 before any work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from portopt.cli.main import app
from portopt.errors import EXIT_BAD_INPUT
from portopt.plan.commitments import bundled_path
from portopt.schema import COMPARE_COLUMNS, COMPARE_FILE

ROOT = Path(__file__).resolve().parents[1]


def _small(folder: Path, **plan: Any) -> Path:
    """The default config on the bundled catalog, few scenarios, three rounds a project."""
    config = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    config["scenarios"].update(optimisation=60, evaluation=40)
    config["plan"]["rounds_per_project"] = 3
    config["plan"]["frontier"]["enabled"] = False
    config["plan"].update(plan)
    config["solver"].update(mip_gap=0.01, time_limit_s=120)
    config["output"].update(scenarios_parquet=False, report=True)
    path = folder / f"small-{len(plan)}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def rounds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A first plan, then the plan after its first round: one of that round's proposals
    committed (the new commitments file), the round's others not (declined)."""
    folder = tmp_path_factory.mktemp("compare")
    config = _small(folder)
    first = folder / "first"
    done = cli("plan", str(config), "--out", str(first), "--json")
    assert done.exit_code == 0, done.output
    plan = pd.read_csv(first / "plan.csv")
    open_round = plan[plan["status"] == "proposed"]["proposal_quarter"].min()
    in_round = plan[plan["proposal_quarter"] == open_round].sort_values("project_id")
    taken = in_round.iloc[0]
    made = pd.read_csv(bundled_path())
    row = {"project": taken["project_id"], "quarter": open_round, "amount_usd": taken["fund_usd"]}
    made = pd.concat([made, pd.DataFrame([row])], ignore_index=True)
    commitments = folder / "commitments.csv"
    made.to_csv(commitments, index=False)
    second = folder / "second"
    done = cli(
        "plan",
        str(config),
        "--commitments",
        str(commitments),
        "--compare",
        str(first),
        "--out",
        str(second),
        "--json",
    )
    assert done.exit_code == 0, done.output
    return {
        "first": first,
        "second": second,
        "config": config,
        "taken": taken["project_id"],
        "round": open_round,
        "others": set(in_round["project_id"].iloc[1:]),
        "summary": json.loads(done.stdout),
    }


def test_compare_names_the_commitment_and_the_declines(rounds: dict[str, Any]) -> None:
    table = pd.read_csv(rounds["second"] / COMPARE_FILE, keep_default_na=False)
    assert list(table.columns) == list(COMPARE_COLUMNS)
    by_id = table.set_index("project_id")
    taken = by_id.loc[rounds["taken"]]
    assert taken["change"] == "committed" and taken["status"] == "committed"
    assert taken["previous_status"] == "proposed" and "new commitments" in taken["why"]
    declined = set(table.loc[table["change"] == "declined", "project_id"])
    assert declined == rounds["others"]
    assert all(rounds["round"] in w for w in table.loc[table["change"] == "declined", "why"])
    # every other row is the re-plan around those decisions, and its figures are the two plans'
    first = pd.read_csv(rounds["first"] / "plan.csv").set_index("project_id")
    second = pd.read_csv(rounds["second"] / "plan.csv").set_index("project_id")
    for r in table.itertuples():
        before = first["fund_usd"].get(r.project_id, 0.0)
        after = second["fund_usd"].get(r.project_id, 0.0)
        assert r.previous_fund_usd == pytest.approx(before) and r.fund_usd == pytest.approx(after)
        if r.change in ("added", "dropped", "moved", "resized"):
            assert "1 newly committed" in r.why and f"{len(declined)} declined" in r.why
    # a project in both plans with the same status, round and amount is not listed
    same = [
        p
        for p in set(first.index) & set(second.index)
        if first.at[p, "proposal_quarter"] == second.at[p, "proposal_quarter"]
        and first.at[p, "status"] == second.at[p, "status"]
        and first.at[p, "fund_usd"] == pytest.approx(second.at[p, "fund_usd"], rel=1e-3)
    ]
    assert not set(same) & set(table["project_id"])
    metrics = json.loads((rounds["second"] / "metrics.json").read_text())
    assert metrics["compare"]["newly_committed"] == [rounds["taken"]]
    assert set(metrics["compare"]["declined"]) == rounds["others"]
    assert metrics["compare"]["inputs_changed"] == []
    assert rounds["summary"]["compare"]["changes"]["declined"] == len(rounds["others"])
    page = (rounds["second"] / "report.html").read_text()
    assert 'id="compare"' in page and "Since the previous plan" in page
    assert f"{len(rounds['others'])} declined" in page


def test_compare_names_a_changed_input(rounds: dict[str, Any], tmp_path: Path) -> None:
    done = cli(
        "plan",
        str(rounds["config"]),
        "--compare",
        str(rounds["first"]),
        "--set",
        "model.groups.review_capacity.per_quarter=6",
        "--out",
        str(tmp_path / "out"),
        "--json",
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)["compare"]
    assert summary["inputs_changed"] == ["review capacity a round: 8 -> 6"]
    table = pd.read_csv(tmp_path / "out" / COMPARE_FILE, keep_default_na=False)
    assert len(table) and (table["change"] != "declined").all()
    assert table["why"].str.contains("review capacity a round: 8 -> 6").all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "is not a folder"),
        (lambda p: p, "holds no plan.csv"),
        (lambda p: (p / "plan.csv").write_text("a,b\n1,2\n") and p, "lacks the column"),
    ],
)
def test_a_bad_compare_folder_exits_2_before_any_work(
    rounds: dict[str, Any], tmp_path: Path, make: Any, message: str
) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"plan": {}}))
    out = tmp_path / "out"
    done = cli("plan", str(rounds["config"]), "--compare", str(make(tmp_path)), "--out", str(out))
    assert done.exit_code == EXIT_BAD_INPUT, done.output
    assert "--compare" in done.output and message in done.output
    assert "Traceback" not in done.output
    assert not out.exists()


def _with_commitments_5(folder: Path) -> None:
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["plan"]["commitments"] = 5
    (folder / "metrics.json").write_text(json.dumps(metrics))


def _fund_inf(folder: Path) -> None:
    plan = pd.read_csv(folder / "plan.csv", keep_default_na=False, dtype=str)
    plan.loc[1, "fund_usd"] = "inf"
    plan.to_csv(folder / "plan.csv", index=False)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_with_commitments_5, "plan.commitments is not a list"),
        (lambda f: (f / "metrics.json").write_text("[" * 100_000 + "]" * 100_000), "nested"),
        (_fund_inf, "row 3, fund_usd: 'inf'"),
    ],
    ids=["commitments-not-a-list", "json-nested-deep", "fund-inf"],
)
def test_a_malformed_previous_plan_exits_2_before_any_work(
    rounds: dict[str, Any], tmp_path: Path, edit: Any, message: str
) -> None:
    """A previous plan's files edited by hand: named, exit 2, before the plan runs (the first
    two exited 4 after the whole plan; the third was read as unchanged)."""
    import shutil

    folder = tmp_path / "previous"
    shutil.copytree(rounds["first"], folder)
    edit(folder)
    out = tmp_path / "out"
    done = cli("plan", str(rounds["config"]), "--compare", str(folder), "--out", str(out))
    assert done.exit_code == EXIT_BAD_INPUT, done.output
    assert "--compare" in done.output and message in done.output
    assert "Traceback" not in done.output
    assert not out.exists()


def test_the_docs_describe_compare_csv() -> None:
    text = (ROOT / "docs" / "outputs.md").read_text().split(f"## {COMPARE_FILE}", 1)[1]
    text = text.split("\n## ", 1)[0]
    documented = [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")]
    assert documented == list(COMPARE_COLUMNS)
