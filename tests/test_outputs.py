"""The output folder's habits: spreadsheet-safe CSV cells, stale staging folders removed,
permissions from the umask, tidy scenario tables with nulls for "never", byte-identical for one
seed, and a JSON summary that is the only thing on stdout."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from portopt.cli.main import app
from portopt.engine.generate import generate_scenarios
from portopt.engine.scenario_set import PROJECT_FIELDS, SCENARIO_FIELDS, ScenarioSet
from portopt.outputs import (
    STAGING_MARK,
    atomic_file,
    remove_stale_staging,
    spreadsheet_safe,
    staged_output,
    write_csv,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text, written",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Ohio gas plant", "Ohio gas plant"),
        ("a=b", "a=b"),
    ],
)
def test_text_that_starts_like_a_formula_gets_a_quote(text: str, written: str) -> None:
    assert spreadsheet_safe(text) == written


def test_csv_quotes_formula_text_but_keeps_numbers(tmp_path: Path) -> None:
    table = pd.DataFrame({"name": ["=1+1", "-x", "plain"], "x": [-1.5, -2.0, 3.0], "n": [-1, 0, 1]})
    write_csv(table, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "name,x,n\n'=1+1,-1.5,-1\n'-x,-2,0\nplain,3,1\n"


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def _stale(parent: Path, name: str, pid: int, marked: bool = True) -> Path:
    folder = parent / name
    folder.mkdir()
    (folder / "half.csv").write_text("half")
    if marked:
        (folder / STAGING_MARK).write_text(f"{pid}\n")
    os.utime(folder, (1e9, 1e9))
    return folder


def test_stale_staging_of_a_killed_run_is_removed_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out"
    dead = _dead_pid()
    killed = _stale(tmp_path, ".out.tmp-abc123", dead)
    aside = _stale(tmp_path, ".out.old-def456", dead)
    running = _stale(tmp_path, ".out.tmp-live", os.getppid())
    unmarked = _stale(tmp_path, ".out.tmp-mine", dead, marked=False)
    other = _stale(tmp_path, ".other.tmp-abc", dead)
    with staged_output(target) as tmp:
        (tmp / "x.txt").write_text("1")
    assert not killed.exists() and not aside.exists()
    assert running.exists() and unmarked.exists() and other.exists()
    assert sorted(p.name for p in target.iterdir()) == ["x.txt"]
    assert remove_stale_staging(target) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_permissions_follow_the_umask(umask: int, tmp_path: Path) -> None:
    old = os.umask(umask)
    try:
        with staged_output(tmp_path / "out") as tmp:
            (tmp / "a.csv").write_text("a\n")
        with atomic_file(tmp_path / "out" / "b.html") as tmp_file:
            tmp_file.write_text("<p>")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "out" / "b.html").stat().st_mode) == 0o666 & ~umask


def test_atomic_file_leaves_nothing_on_error(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    path.write_text("old")
    with pytest.raises(KeyError), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise KeyError("stop")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.html"]


@pytest.fixture
def scenario_set(small_catalog, small_config) -> ScenarioSet:
    return generate_scenarios(small_catalog, small_config, backend="numpy", scenarios=range(3, 43))


def test_scenario_tables_are_tidy_with_nulls_for_never(scenario_set, tmp_path: Path) -> None:
    scenario_set.to_parquet(tmp_path / "s")
    projects = pq.read_table(tmp_path / "s" / "projects.parquet").to_pandas()
    chokepoints = pq.read_table(tmp_path / "s" / "chokepoints.parquet").to_pandas()
    scenarios = pq.read_table(tmp_path / "s" / "scenarios.parquet").to_pandas()
    n, p, k = scenario_set.n, len(scenario_set.project_ids), len(scenario_set.chokepoint_ids)
    assert list(projects.columns) == ["scenario", "project", *PROJECT_FIELDS]
    assert list(chokepoints.columns) == ["scenario", "chokepoint", "stress"]
    assert list(scenarios.columns) == ["scenario", *SCENARIO_FIELDS]
    assert (len(projects), len(chokepoints), len(scenarios)) == (n * p, n * k, n)
    assert not projects.duplicated(["scenario", "project"]).any()
    never = scenario_set.project["recoup_q"].ravel() < 0
    assert never.any(), "the small catalog should have a project that never recoups"
    assert projects["recoup_q"].isna().to_numpy().tolist() == never.tolist()
    assert projects["recoup_q"].min() >= 0
    back = ScenarioSet.from_parquet(tmp_path / "s")
    for name in PROJECT_FIELDS:
        np.testing.assert_array_equal(back.project[name], scenario_set.project[name])
    np.testing.assert_array_equal(back.stress, scenario_set.stress)


def test_scenario_tables_are_byte_identical_for_one_seed(
    small_catalog, small_config, scenario_set, tmp_path: Path
) -> None:
    again = generate_scenarios(small_catalog, small_config, backend="numpy", scenarios=range(3, 43))
    assert again.metadata["seconds"] != scenario_set.metadata["seconds"]
    scenario_set.to_parquet(tmp_path / "a")
    again.to_parquet(tmp_path / "b")
    for name in ("projects.parquet", "chokepoints.parquet", "scenarios.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.slow
def test_json_summary_is_all_that_stdout_holds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    small = ["scenarios.optimisation=100", "scenarios.evaluation=50", "output.report=false"]
    exe = Path(sys.executable).with_name("portopt")
    sets = [a for s in small for a in ("--set", s)]
    args = ["run", "default", "--out", str(out), "--json", *sets]
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] in ("optimal", "time_limit")
    assert summary["out_dir"] == str(out)
    assert sorted(summary["files"]) == sorted(str(p) for p in out.iterdir())
    assert set(summary["out_of_sample"]) == {
        "coverage_score",
        "recovery_ratio",
        "p_recoup",
        "cvar_shortfall_share",
    }


def test_init_config_writes_a_bundled_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(app, ["init-config", "stress_coercion"])
    assert first.exit_code == 0, first.output
    shipped = (ROOT / "configs" / "stress_coercion.yaml").read_text()
    assert (tmp_path / "stress_coercion.yaml").read_text() == shipped
    again = CliRunner().invoke(app, ["init-config", "stress_coercion"])
    assert again.exit_code == 2 and "--force" in again.output
    forced = CliRunner().invoke(app, ["init-config", "stress_coercion", "--force"])
    assert forced.exit_code == 0
    valid = CliRunner().invoke(app, ["validate", "--config", "stress_coercion.yaml"])
    assert valid.exit_code == 0, valid.output


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cash_bands_a_block_of_columns_at_a_time_change_no_quantile(monkeypatch, dtype) -> None:
    from portopt import outputs

    paths = np.random.default_rng(3).normal(size=(2000, 41)).astype(dtype)
    whole = outputs.bands(paths)
    monkeypatch.setattr(outputs, "BANDS_BLOCK_BYTES", 2000 * paths.itemsize * 4)  # 4 columns
    blocked = outputs.bands(paths)
    assert whole.keys() == blocked.keys() == {"p10", "p50", "p90", "mean"}
    for key in ("p10", "p50", "p90"):
        assert np.array_equal(whole[key], blocked[key]), key
    np.testing.assert_allclose(blocked["mean"], paths.astype(np.float64).mean(axis=0), rtol=1e-12)
