"""The Python API (portopt.plan, portopt.run, PlanResult): nothing written without out_dir,
commitments as a DataFrame, the notebook example of docs/python-api.md run as written."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from _runs import default_run, default_writes

import portopt
from portopt.plan.commitments import FRAME, CommitmentsError
from portopt.plan.commitments import bundled_path as bundled_commitments

__all__ = ["default_run"]  # a fixture, imported so pytest finds it here

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(GOLDEN))
import regen  # noqa: E402 (tests/golden/regen.py: the golden outputs' settings)


def test_plan_and_run_are_the_modules_and_the_jobs() -> None:
    assert callable(portopt.plan) and callable(portopt.run)
    from portopt.plan import plan_options

    assert portopt.plan.plan_options is plan_options  # still the module
    assert portopt.plan.commitments.bundled_path() == bundled_commitments()
    assert "plan" in dir(portopt) and "PlanResult" in dir(portopt)


@pytest.mark.slow
def test_the_default_plan_by_the_api_is_a_table_and_writes_nothing(default_run) -> None:
    """``import portopt; r = portopt.plan(); r.plan``: one row per proposal, nothing on disk
    until ``write`` (the fixture runs it in an empty working folder)."""
    assert default_writes() == []
    plan = default_run.plan
    assert isinstance(plan, pd.DataFrame)
    assert len(plan) == default_run.metrics["projects"]["selected"] > 0
    assert plan["project_id"].is_unique
    written = pd.read_csv(default_run.out_dir / "plan.csv")
    assert list(written["project_id"]) == list(plan["project_id"])
    assert "<table" in default_run._repr_html_()


@pytest.mark.slow
def test_a_commitments_frame_plans_as_the_file_does(tmp_path: Path) -> None:
    """The golden plan (tests/golden/regen.py's settings), with the bundled commitments given
    as a DataFrame and written by ``out_dir``: the same plan.csv, byte for byte."""
    made = pd.read_csv(bundled_commitments())
    sets = list(regen.SETTINGS)
    out = tmp_path / "out"
    result = portopt.plan(ROOT / "configs" / "default.yaml", commitments=made, overrides=sets)
    assert result.out_dir is None and not out.exists()
    result.write(out)
    assert (out / "plan.csv").read_bytes() == (GOLDEN / "plan" / "plan.csv").read_bytes()
    frames = result.to_frames()
    assert {"plan", "allocation", "coverage", "figures", "scenarios/projects"} <= set(frames)
    assert "frontier" in frames and len(frames["frontier"]) >= 8


def test_a_bad_commitments_frame_names_its_row_and_column() -> None:
    made = pd.DataFrame(
        {"project": ["texas_gulflink", "no_such_project"], "quarter": ["2026Q1", "2026Q1"]}
    )
    made["amount_usd"] = [2.1e9, 1e9]
    with pytest.raises(CommitmentsError) as caught:
        portopt.plan(commitments=made)
    problems = caught.value.problems
    assert any(p.file == FRAME and p.row == 3 and p.column == "project" for p in problems)


def test_a_bad_override_is_a_config_error() -> None:
    with pytest.raises(portopt.ConfigError, match=r"scenarios\.evaluaton"):
        portopt.run(overrides=["scenarios.evaluaton=10"])


def _cells(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


@pytest.mark.slow
def test_the_docs_notebook_runs(tmp_path: Path) -> None:
    """docs/python-api.md's cells, in order, in one namespace, in an empty folder: they run,
    and write nothing there."""
    cells = _cells((ROOT / "docs" / "python-api.md").read_text())
    assert len(cells) >= 4
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        namespace: dict[str, object] = {}
        for cell in cells:
            exec(compile(cell, "docs/python-api.md", "exec"), namespace)
    finally:
        os.chdir(here)
    assert list(tmp_path.iterdir()) == []
    assert isinstance(namespace["r"].plan, pd.DataFrame)  # type: ignore[attr-defined]


def test_a_script_without_a_main_guard_plans_with_its_frontier_workers(tmp_path: Path) -> None:
    """The frontier's worker processes are spawned; they must not re-run the caller's script
    (a top-level ``portopt.plan()`` without ``if __name__ == "__main__"``)."""
    import subprocess

    script = tmp_path / "plan_it.py"
    sets = ["scenarios.optimisation=60", "scenarios.evaluation=100", "plan.frontier.workers=2"]
    script.write_text(
        f"import portopt\nr = portopt.plan(overrides={sets!r})\nprint('tables', sorted(r.tables))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "frontier.csv" in done.stdout
    assert "BrokenProcessPool" not in done.stderr


def test_the_run_api_refuses_the_plans_inputs_as_the_cli_does() -> None:
    with pytest.raises(portopt.ConfigError, match=r"plan\.target"):
        portopt.run(overrides=["plan.target=hard"])
