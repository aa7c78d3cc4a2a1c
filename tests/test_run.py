"""``portopt run`` end to end: the output folder, determinism, bad input, atomic writes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from _runs import default_run, read_allocation
from typer.testing import CliRunner

from portopt.catalog import bundled_path
from portopt.cli.main import app
from portopt.config import load_config
from portopt.errors import ConfigError
from portopt.outputs import check_target, staged_output, write_csv

__all__ = ["default_run"]  # a fixture, imported so pytest finds it here

FILES = ("allocation.csv", "coverage.csv", "metrics.json", "scenarios", "report.html")
TIMING_FIELDS = ("timings_s", "model_timings_s")
"""The fields of metrics.json that hold wall times, the only ones two runs may differ in."""
REPORT_TIMINGS = re.compile(r'<table id="timings".*?</table>', re.S)
"""The report's table of stage wall times."""
STAGES = (
    "catalog",
    "scenarios_optimisation",
    "optimise",
    "marginal",
    "scenarios_evaluation",
    "evaluate",
    "write",
    "report",
    "total",
)
SMALL = {
    "scenarios": {"optimisation": 200, "evaluation": 400},
    "solver": {"time_limit_s": 20.0},
    "seed": 11,
    # loose enough that the bundled catalog is feasible whatever its calibration; the project
    # limit keeps every solve far inside its time limit (same seed, same files)
    "model": {
        "groups": {
            "recoupment": {"max_shortfall_share": 2.0, "min_expected_recovery": None},
            "max_projects": {"enabled": True, "limit": 30},
        }
    },
}


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    """The bundled catalog with few scenarios, as a YAML file."""
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["run", *args])


def leftovers(folder: Path) -> list[str]:
    """Staging or moved-aside folders next to ``folder`` (there should be none)."""
    if not folder.parent.exists():
        return []
    return [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


# ---------------------------------------------------------------- the happy path


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small config run twice with one seed (CliRunner) and once with another."""
    root = tmp_path_factory.mktemp("small")
    config = root / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    runs = {}
    for name, extra in (("a", []), ("b", []), ("other_seed", ["--seed", "12"])):
        out = root / name
        result = invoke(str(config), "--out", str(out), *extra)
        assert result.exit_code == 0, result.output
        runs[name] = out
    return runs


@pytest.mark.slow
def test_writes_the_five_files(small_runs: dict[str, Path]) -> None:
    for out in small_runs.values():
        assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
        assert leftovers(out) == []


def _without_timings(path: Path) -> bytes:
    if path.name == "metrics.json":
        metrics = json.loads(path.read_text())
        for name in TIMING_FIELDS:
            assert name in metrics
            metrics.pop(name)
        return json.dumps(metrics, sort_keys=True).encode()
    if path.name == "report.html":
        text, found = REPORT_TIMINGS.subn("", path.read_text())
        assert found == 1, "the report's timings table was not found"
        return text.encode()
    return path.read_bytes()


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files(small_runs: dict[str, Path]) -> None:
    a, b = small_runs["a"], small_runs["b"]
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert Path("scenarios", "projects.parquet") in files
    for name in files:
        assert _without_timings(a / name) == _without_timings(b / name), name
    other = small_runs["other_seed"]
    assert json.loads((other / "metrics.json").read_text())["seed"] == 12
    assert (other / "allocation.csv").read_bytes() != (a / "allocation.csv").read_bytes()


@pytest.mark.slow
def test_allocation_table(small_runs: dict[str, Path]) -> None:
    table = read_allocation(small_runs["a"])
    assert list(table.columns) == [
        "project_id",
        "name",
        "sector",
        "selected",
        "fund_usd",
        "fund_share",
        "expected_recovery_ratio",
        "p_recoup",
        "expected_online_share",
        "value_if_forced_in",
        "value_if_forced_out",
        "marginal_value",
        "reason",
        "within_mip_gap",
    ]
    assert table["selected"].any()
    rejected = table.loc[~table["selected"]]
    assert rejected["reason"].str.startswith("forced in").all()
    assert (table.loc[~table["selected"], "fund_usd"] == 0).all()
    assert (table.loc[table["selected"], "fund_usd"] > 0).all()
    metrics = json.loads((small_runs["a"] / "metrics.json").read_text())
    assert table["fund_usd"].sum() == pytest.approx(metrics["capital_committed_usd"], rel=1e-6)
    assert table["fund_usd"].sum() <= metrics["budget_usd"] * (1 + 1e-6)


@pytest.mark.slow
def test_metrics_hold_the_figures(small_runs: dict[str, Path]) -> None:
    m = json.loads((small_runs["a"] / "metrics.json").read_text())
    for part in ("in_sample", "out_of_sample"):
        assert set(m[part]) >= {
            "coverage",
            "recovery_ratio",
            "p_recoup",
            "shortfall_cvar_0.95_share",
        }
        assert m[part]["coverage"]["p10"] <= m[part]["coverage"]["p90"]
    assert m["in_vs_out"]["coverage.mean"] == pytest.approx(
        m["out_of_sample"]["coverage"]["mean"] - m["in_sample"]["coverage"]["mean"], abs=1e-9
    )
    assert m["in_sample"]["scenarios"] == 200 and m["out_of_sample"]["scenarios"] == 400
    assert m["shadow_prices"], "no shadow prices"
    assert all({"group", "row", "unit", "coverage_per_unit"} <= set(s) for s in m["shadow_prices"])
    assert set(m["timings_s"]) == set(STAGES)
    assert len(m["marginal_values"]) == m["projects"]["candidates"]
    assert {r["rule"] for r in m["relaxations"]} >= {"budget", "review capacity"}
    assert all(v >= 0 for v in m["timings_s"].values())
    assert m["scenarios"]["optimisation"] == {"first": 0, "count": 200}
    assert m["scenarios"]["evaluation"] == {"first": 200, "count": 400}
    assert m["config_hash"] == load_config(None, SMALL).digest()
    assert {
        "status",
        "solver",
        "objective",
        "mip_gap",
        "sector_shares",
        "backend",
        "device",
        "version",
        "binding_constraints",
    } <= set(m)


@pytest.mark.slow
def test_real_subprocess(small_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub"
    exe = Path(sys.executable).with_name("portopt")
    proc = subprocess.run(
        [str(exe), "run", str(small_config), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Capital committed" in proc.stdout and str(out.name) in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


@pytest.mark.slow
def test_default_run(default_run: Any) -> None:
    """The default job, the plan (shared with the browser test): every file, every stage
    timed."""
    files = (*FILES, "plan.csv", "frontier.csv")  # the default job is a plan, with its frontier
    assert sorted(p.name for p in default_run.out_dir.iterdir()) == sorted(files)
    assert set(default_run.metrics["timings_s"]) == {*STAGES, "frontier"}
    assert default_run.metrics["scenarios"]["evaluation"]["first"] == 2000


# ------------------------------------------- bad input: exit 2, infeasible: exit 3, nothing


def _fails_cleanly(result: Any, out: Path, *needles: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output
    assert not out.exists()
    assert leftovers(out) == []


def test_bad_config_key(small_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(str(small_config), "--out", str(out), "--set", "model.budget_dollars=1")
    _fails_cleanly(result, out, "model.budget_dollars")


def test_bad_backend(small_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _fails_cleanly(invoke(str(small_config), "--out", str(out), "--backend", "tpu"), out, "tpu")


def test_malformed_catalog(small_config: Path, tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    shutil.copytree(bundled_path(), folder, ignore=shutil.ignore_patterns("*.md", "__*"))
    projects = pd.read_csv(folder / "projects.csv", dtype=str, keep_default_na=False)
    projects.loc[1, "base_cost_usd"] = "lots"
    projects.to_csv(folder / "projects.csv", index=False)
    out = tmp_path / "out"
    result = invoke(str(small_config), "--out", str(out), "--set", f"catalog={folder}")
    _fails_cleanly(result, out, "projects.csv", "row 3", "base_cost_usd", "lots")


def test_infeasible_config_is_explained(small_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "out"
    result = invoke(
        str(small_config),
        "--out",
        str(out),
        "--set",
        "model.min_deployment_usd=5e11",
        "--set",
        "model.groups.max_projects.limit=1",
        "--set",
        "model.groups.max_projects.enabled=true",
    )
    _fails_cleanly(result, out, "no portfolio satisfies", "max_projects", code=3)
    assert not out.parent.exists(), "the parent folder made for the output was left behind"


def test_existing_folder_without_overwrite(small_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke(str(small_config), "--out", str(out), "--set", "output.overwrite=false")
    assert result.exit_code == 2 and "overwrite" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------- a failure mid-run


@pytest.mark.parametrize(
    "stage", ["portopt.pipeline.evaluation_of", "portopt.pipeline.write_report"]
)
@pytest.mark.slow
def test_failure_mid_run_leaves_no_output(
    stage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portopt.run import run

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(stage, boom)
    config = load_config(None, SMALL)
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    existing.mkdir()
    (existing / "allocation.csv").write_text("old\n")
    for out in (fresh, existing):
        with pytest.raises(RuntimeError, match="disk on fire"):
            run(config, out_dir=out)
        assert leftovers(out) == []
    assert not fresh.exists()
    assert [p.name for p in existing.iterdir()] == ["allocation.csv"]
    assert (existing / "allocation.csv").read_text() == "old\n"


# ---------------------------------------------------------------- the output folder itself


def test_staged_output_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    with staged_output(target) as tmp:
        assert tmp.parent == target.parent and not target.exists()
        (tmp / "plan.csv").write_text("1")
    assert (target / "plan.csv").read_text() == "1"
    with staged_output(target, overwrite=True) as tmp:
        (tmp / "allocation.csv").write_text("2")
    assert [p.name for p in target.iterdir()] == ["allocation.csv"]
    assert leftovers(target) == []
    with pytest.raises(ConfigError), staged_output(target, overwrite=False):
        pass


def test_staged_output_cleans_up_on_error(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(KeyError), staged_output(target) as tmp:
        (tmp / "half.csv").write_text("half")
        raise KeyError("stop")
    assert not (tmp_path / "new").exists()


def test_csv_is_stable(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {"id": ["a", "b,c"], "x": [0.1 + 0.2, -0.0], "n": [1, 2], "flag": [True, False]}
    )
    write_csv(table, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == 'id,x,n,flag\na,0.3,1,true\n"b,c",0,2,false\n'


def test_no_evaluation_scenarios(small_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(str(small_config), "--out", str(out), "--set", "scenarios.evaluation=0")
    _fails_cleanly(result, out, "scenarios.evaluation")


def test_default_config_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from portopt.cli.run import resolve_config

    assert resolve_config("mine.yaml") == "mine.yaml"
    monkeypatch.chdir(tmp_path)
    assert resolve_config(None) == "default"  # the bundled default
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "default.yaml").write_text("seed: 1\n")
    assert resolve_config(None) == tmp_path / "configs" / "default.yaml"


@pytest.mark.parametrize("where", ["here", "above", "under-a-file", "not-a-file-system"])
def test_an_output_folder_that_cannot_be_is_refused_before_any_work(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = tmp_path / "work" / "deeper"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    (tmp_path / "a_file.txt").write_text("x")
    target = {
        "here": Path("."),
        "above": Path(".."),
        "under-a-file": tmp_path / "a_file.txt" / "out",
        "not-a-file-system": Path("/proc/portopt-out"),
    }[where]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as caught:
        check_target(target, overwrite=True)
    assert "output.dir" in str(caught.value.problems[0])
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_folder_of_the_users_own_is_never_replaced(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("keep")
    with pytest.raises(ConfigError) as caught, staged_output(mine, overwrite=True):
        pass
    assert "holds files portopt did not write (keep.txt)" in str(caught.value)
    assert (mine / "keep.txt").read_text() == "keep"
    (tmp_path / "empty").mkdir()
    with staged_output(tmp_path / "empty", overwrite=True) as tmp:  # an empty one is taken
        (tmp / "plan.csv").write_text("1")
    assert (tmp_path / "empty" / "plan.csv").exists()


def test_every_output_file_name_is_known_to_the_folder_guard() -> None:
    import importlib
    import pkgutil

    import portopt
    from portopt.outputs import OUTPUT_NAMES

    inputs = {"FUEL_FILE", "REGIONS_FILE"}  # the catalog's package data, never written
    suffixes = ("_FILE", "_CSV", "_JSON", "_HTML", "_DIR", "_TABLE")
    written = set()
    for info in pkgutil.walk_packages(portopt.__path__, "portopt."):
        if info.name.endswith("__main__"):  # runs the command line when imported
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # CuPy's engine without CuPy
            continue
        for key, value in vars(module).items():
            if key.endswith(suffixes) and key not in inputs and isinstance(value, str):
                written.add(value)
    assert written, "no output names found"
    assert written <= OUTPUT_NAMES, sorted(written - OUTPUT_NAMES)
