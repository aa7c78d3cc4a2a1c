"""A plan's inputs given to a command that answers the one-shot question (run; whatif, frontier
and robustness with --one-shot) are refused with exit 2 naming them, before any work: the
command would otherwise ignore them and answer another question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portopt.cli.main import app
from portopt.errors import EXIT_BAD_INPUT

PLAN_KEYS = ["--set", "plan.target=hard", "--set", "plan.commitments=/nonexistent/c.csv"]
COMMANDS = {
    "run": ["run", "default"],
    "whatif": ["whatif", "default", "--one-shot", "--drop", "gas_ohio"],
    "frontier": ["frontier", "default", "--one-shot", "--vary", "model.budget_usd=4e11,5e11"],
    "robustness": ["robustness", "default", "--one-shot", "--batches", "2"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_plan_keys_given_to_a_one_shot_command_exit_2(command: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [*COMMANDS[command], *PLAN_KEYS, "--out", str(out)])
    text = result.output.replace("\n", "")
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "plan.target: 'hard'" in text and "plan.commitments" in text
    assert f"`portopt {command}`" in text and "`portopt plan`" in text
    assert not out.exists()


def test_plan_keys_in_a_config_file_are_refused_too(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("plan:\n  first_quarter: 2028Q1\n")
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "plan.first_quarter" in result.output


def test_a_varied_plan_key_is_refused_by_frontier(tmp_path: Path) -> None:
    args = ["frontier", "default", "--one-shot", "--vary", "plan.first_quarter=2027Q1,2028Q3"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "plan.first_quarter" in result.output


def test_robustness_does_not_rewrite_a_plans_report(tmp_path: Path) -> None:
    folder = tmp_path / "plan_run"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"plan": {"rounds": []}}))
    (folder / "report.html").write_text("<html>the plan</html>")
    args = ["robustness", "default", "--one-shot", "--batches", "2", "--report", str(folder)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "output folder of a plan" in result.output.replace("\n", "")
    assert (folder / "report.html").read_text() == "<html>the plan</html>"


def test_robustness_of_plans_does_not_rewrite_a_one_shot_report(tmp_path: Path) -> None:
    folder = tmp_path / "one_shot_run"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"capital_committed_usd": 1.0}))
    (folder / "report.html").write_text("<html>the run</html>")
    args = ["robustness", "default", "--batches", "2", "--report", str(folder)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "one-shot run" in result.output.replace("\n", "")
    assert (folder / "report.html").read_text() == "<html>the run</html>"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("files", "said"),
    [
        ({"plan.csv": 'a,b\n"unterminated\n'}, "cannot be reported"),
        ({"plan.csv": "project_id\nx\n", "metrics.json": '{"plan": 5}'}, "cannot be reported"),
    ],
    ids=["broken-plan-csv", "plan-not-a-mapping"],
)
def test_a_report_folder_that_cannot_be_reported_exits_2_before_any_batch(
    tmp_path: Path, files: dict[str, str], said: str
) -> None:
    """Robustness re-renders the run's report at the end: a folder whose files cannot be
    rendered used to exit 4 after every batch, with the robustness files written."""
    folder = tmp_path / "plan_run"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"plan": {"rounds": []}}))
    for name, text in files.items():
        (folder / name).write_text(text)
    args = ["robustness", "default", "--batches", "2", "--report", str(folder)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "--report" in result.output and said in result.output.replace("\n", "")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_the_default_config_is_not_refused(tmp_path: Path) -> None:
    # the bundled default lists every plan key at its default: a one-shot command takes it
    args = [
        "whatif",
        "default",
        "--one-shot",
        "--drop",
        "nope_not_a_project",
        "--out",
        str(tmp_path / "o"),
    ]
    result = CliRunner().invoke(app, args)
    assert "plan inputs" not in result.output
