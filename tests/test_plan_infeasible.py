"""Plans no portfolio can satisfy: exit 3, the groups that must give and each one's largest
feasible give in the user's units, decided on the cut model (portopt.model.explain.CutExplainer).

Each stated give is checked both ways: the plan at the named value is solved (optimal), one
step tighter it is infeasible."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from portopt.cli.main import app
from portopt.config import load_config
from portopt.errors import EXIT_INFEASIBLE, InfeasibleError
from portopt.planning import run_plan

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "portopt" / "data"
SMALL = [
    "scenarios.optimisation=300",
    "scenarios.evaluation=200",
    "output.report=false",
    "output.scenarios_parquet=false",
    "plan.frontier.enabled=false",
]
FLOOR = "model.groups.recoupment.min_expected_recovery"
HIGH = 1.05
"""A floor no plan with $300B, or with tranche 2 committed, can meet (the default 0.95 admits
both since the engine's money became nominal, issue 23)."""


def _cli(out: Path, sets: list[str], *extra: str) -> tuple[int, str]:
    args = ["plan", str(ROOT / "configs" / "default.yaml"), "--out", str(out), *extra]
    for item in [*SMALL, *sets]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def _highest_floor(output: str) -> float:
    said = re.search(r"the highest expected-recovery floor that admits (.*?) is (\d\.\d\d)", output)
    assert said, output
    return float(said.group(2))


def _plan(out: Path, sets: list[str], commitments: Path | None = None):
    config = load_config(ROOT / "configs" / "default.yaml", [*SMALL, *sets])
    return run_plan(config, commitments, out_dir=out)


@pytest.mark.slow
def test_a_hard_target_out_of_reach_names_the_highest_floor_that_admits_it(
    tmp_path: Path,
) -> None:
    """$300B of expected committed capital at a 1.05 floor: exit 3 naming capital (the most
    any plan commits at that floor) and recoupment (the highest floor that admits $300B);
    at that floor the plan is solved to its gap and meets the target, one point higher not."""
    hard = ["plan.target=hard", "plan.target_usd=3e11"]
    code, output = _cli(tmp_path / "no", [*hard, f"{FLOOR}={HIGH}"])
    assert code == EXIT_INFEASIBLE, output
    assert not (tmp_path / "no").exists()
    assert "capital: the hard target (plan.target_usd) $300.0B" in " ".join(output.split())
    assert re.search(r"at the 1\.05 expected-recovery floor, at most \$\d+\.\dB can be", output)
    assert "recoupment: expected recovery floor 1.05 is out of reach" in output
    assert "$300.0B of expected committed capital" in output
    assert "4,958" not in output  # each project counted once, not once per round
    floor = _highest_floor(output)
    assert 0.0 < floor < HIGH
    met = _plan(tmp_path / "yes", [*hard, f"{FLOOR}={floor}"])
    assert met.metrics["status"] == "optimal"
    assert met.metrics["plan"]["committed_expected_usd"] >= 3e11 * (1 - 1e-6)
    with pytest.raises(InfeasibleError):
        _plan(tmp_path / "above", [*hard, f"{FLOOR}={floor + 0.01:.2f}"])


def _tranche_2(tmp_path: Path) -> Path:
    """The bundled first tranche plus tranche 2 (19-20 March 2026: the BWRX-300s and the two
    gas plants), each at its maximum fund share, from the bundled catalog's rows."""
    projects = pd.read_csv(DATA / "projects.csv")
    text = projects.apply(lambda r: " ".join(map(str, r)).lower(), axis=1)
    later = projects["name"].str.contains(r"tranche [3-9]", regex=True)
    bwrx = projects["name"].str.contains("BWRX-300") & text.str.contains("tranche 2") & ~later
    gas = projects["name"].str.contains(r"tranche 2, Mar 2026", regex=False)
    rows = projects[bwrx | gas]
    assert len(rows) == 5, rows["id"].tolist()
    tranche = pd.DataFrame(
        {
            "project": rows["id"],
            "quarter": "2026Q1",
            "amount_usd": rows["base_cost_usd"] * rows["max_fund_share"],
            "source": "tranche 2 (19-20 Mar 2026), test",
        }
    )
    path = tmp_path / "commitments_tranche2.csv"
    pd.concat([pd.read_csv(DATA / "commitments.csv"), tranche]).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_committing_tranche_2_names_the_highest_floor_it_admits(tmp_path: Path) -> None:
    path = _tranche_2(tmp_path)
    code, output = _cli(tmp_path / "no", [f"{FLOOR}={HIGH}"], "--commitments", str(path))
    assert code == EXIT_INFEASIBLE, output
    assert "recoupment: expected recovery floor 1.05 is out of reach" in output
    assert "the 8 committed projects" in output
    floor = _highest_floor(output)
    assert 0.0 < floor < HIGH
    met = _plan(tmp_path / "yes", [f"{FLOOR}={floor}"], path)
    assert met.metrics["status"] == "optimal"
    with pytest.raises(InfeasibleError):
        _plan(tmp_path / "above", [f"{FLOOR}={floor + 0.01:.2f}"], path)


def test_a_plan_that_holds_no_project_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    sets = ["scenarios.optimisation=50", "model.budget_usd=1e6", "plan.target_usd=1e6"]
    code, output = _cli(out, sets, "--no-commitments")
    assert code == EXIT_INFEASIBLE, output
    assert "holds no project" in " ".join(output.split())
    assert "internal error" not in output
    assert not out.exists()
