"""Sweeps on Dask: --vary parsing, frontier (CLI), robustness core indices, sharded scenario
generation, a sweep that survives a killed worker, atomic output.

Scenario counts are tiny and the catalog is the 6-project test fixture, so every solve takes a
fraction of a second; the cluster of 2 worker processes is started once for the module.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.offline
import pytest
import yaml
from _runs import synthetic_folder
from conftest import build_small_catalog, write_catalog_csv
from typer.testing import CliRunner

from portopt.cli.main import app
from portopt.config import RunConfig, load_config
from portopt.engine.generate import generate_scenarios
from portopt.errors import ConfigError
from portopt.sweeps import (
    classify,
    cluster,
    dashboard_link,
    frontier_points,
    generate_sharded,
    parse_vary,
    plan_tasks,
    run_frontier,
    run_robustness,
    solve_points,
    status_counts,
    wilson,
    write_frontier,
)

CATALOG = build_small_catalog()
BASE = {
    "backend": "numpy",
    "scenarios": {"optimisation": 24, "evaluation": 24},
    # the fixture's projects lose money for Japan: loosen recoupment so portfolios exist
    "model": {
        "groups": {"recoupment": {"max_shortfall_share": 1.0, "min_expected_recovery": None}}
    },
}
BUDGETS = "model.budget_usd=3e10,4e9,2e9,1e9"
TOLERANCES = "model.groups.recoupment.max_shortfall_share=1.0,0.8"
TIMINGS = ["solve_s", "point_s"]


@pytest.fixture(scope="module")
def client():
    with cluster(None, n_workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sweeps")
    catalog = write_catalog_csv(CATALOG, folder / "catalog")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "catalog": str(catalog)}))
    return path


def _config(**scenarios: int) -> RunConfig:
    return RunConfig.model_validate({**BASE, "scenarios": {**BASE["scenarios"], **scenarios}})


def _values(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=TIMINGS)


# ------------------------------------------------------------------------------ the grid


def test_parse_vary_splits_outside_brackets_and_reads_yaml() -> None:
    grid = parse_vary(
        [
            "model.budget_usd=3e11, 5.5e11",
            "model.groups.sector_shares.bounds.energy=[0, 0.5],[0.1,0.7]",
            "model.groups.recoupment.min_expected_recovery=null,0.9",
        ]
    )
    assert grid == {
        "model.budget_usd": [3e11, 5.5e11],
        "model.groups.sector_shares.bounds.energy": [[0, 0.5], [0.1, 0.7]],
        "model.groups.recoupment.min_expected_recovery": [None, 0.9],
    }


@pytest.mark.parametrize(
    ("items", "needle"),
    [
        (["model.budget_usd"], "'model.budget_usd' is not KEY=v1,v2"),
        (["=1,2"], "is not KEY=v1,v2"),
        (["model..budget_usd=1"], "dotted key"),
        (["model.budget_usd=1,,2"], "none empty"),
        (["model.budget_usd=1", "model.budget_usd=2"], "varies 'model.budget_usd' twice"),
        ([], "at least one --vary"),
    ],
)
def test_parse_vary_names_the_bad_item(items: list[str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_vary(items)
    assert needle in str(err.value)


def test_unknown_key_and_bad_value_name_the_vary_key(config_file: Path) -> None:
    with pytest.raises(ConfigError) as err:
        frontier_points(config_file, ["model.budjet_usd=1e11,2e11"])
    assert "--vary" in str(err.value) and "model.budjet_usd" in str(err.value)
    with pytest.raises(ConfigError) as err:
        frontier_points(config_file, [BUDGETS, "model.groups.recoupment.alpha=0.9,1.5"])
    assert "model.groups.recoupment.alpha" in str(err.value) and "1.5" in str(err.value)


def test_cli_bad_vary_exits_2_without_traceback(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "f"
    result = CliRunner().invoke(
        app,
        ["frontier", str(config_file), "--one-shot", "--vary", "model.nope=1,2", "--out", str(out)],
    )
    assert result.exit_code == 2, result.output
    assert "model.nope" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_plan_groups_parameter_points_and_splits_scenario_points(config_file: Path) -> None:
    points = frontier_points(config_file, [BUDGETS, "scenarios.coercion.rate_per_year=0.1,0.5"])
    tasks = plan_tasks(points)
    # one model per coercion rate (a scenario key); budgets re-solve it
    assert len(tasks) == 2
    for task in tasks:
        assert len({p.values["scenarios.coercion.rate_per_year"] for p in task}) == 1
        assert len(task) == 4
    one_key = frontier_points(config_file, [BUDGETS, TOLERANCES])
    assert [len(t) for t in plan_tasks(one_key)] == [4, 4]
    assert [len(t) for t in plan_tasks(one_key, points_per_task=1)] == [1] * 8
    assert sorted(p.index for t in plan_tasks(one_key, 3) for p in t) == list(range(8))


# ------------------------------------------------------------------------------ frontier


@pytest.mark.slow
def test_frontier_cli_8_points_on_a_local_cluster(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "frontier"
    result = CliRunner().invoke(
        app,
        [
            "frontier",
            str(config_file),
            "--one-shot",
            "--vary",
            BUDGETS,
            "--vary",
            TOLERANCES,
            "--out",
            str(out),
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "frontier.csv", keep_default_na=False)
    assert len(table) == 8 and list(table["point"]) == list(range(8))
    assert set(table["status"]) == {"optimal"}
    for column in (
        "coverage",
        "capital_usd",
        "cvar_shortfall_share",
        "expected_recovery_ratio",
        "n_selected",
        "selected",
        "solve_s",
        "resolve",
    ):
        assert column in table.columns
    # each task solves once from scratch and re-solves the rest of its points
    flags = table.groupby("task")["resolve"].apply(list)
    assert all(r[0] is False and all(r[1:]) for r in flags) and len(flags) == 2
    # the budget never binds below what it allows
    assert (table["capital_usd"] <= table["model.budget_usd"] * (1 + 1e-9)).all()
    by_budget = table[table[TOLERANCES.split("=")[0]] == 1.0].set_index("model.budget_usd")
    assert by_budget.loc[3e10, "coverage"] >= by_budget.loc[1e9, "coverage"]
    page = (out / "frontier.html").read_text()
    assert page.count(plotly.offline.get_plotlyjs()[:500]) == 1  # JS embedded once
    assert "<script src=" not in page and page.count('class="chart"') == 2
    # in the report's style: the sweep's identity, amounts in $B and shares in percent
    base = load_config(config_file)
    assert f"configuration {base.digest()} · seed {base.seed}" in page
    assert 'id="identity"' in page and "written 20" not in page  # no wall-clock date
    rows = page[page.rindex("<table") :]
    assert "$30.0B" in rows and "$1.0B" in rows  # the varied budgets
    assert not re.search(r"\d\.\d+e[+-]\d", rows)  # no 6.992e+10
    assert re.search(r"<td>\d+\.\d%</td>", rows)  # coverage, as a percentage
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_frontier_regenerates_scenarios_for_a_scenario_key(client, config_file: Path) -> None:
    points = frontier_points(
        config_file, ["model.budget_usd=3e10,2e9", "scenarios.coercion.rate_per_year=0.0,3.0"]
    )
    table = run_frontier(CATALOG, points, client)
    assert table["task"].nunique() == 2
    assert table.groupby("task")["resolve"].apply(list).tolist() == [[False, True]] * 2
    assert set(table["status"]) == {"optimal"}


# ------------------------------------------------------------------------------ robustness


def test_wilson_interval_and_classes() -> None:
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert [classify(x) for x in (1.0, 0.9, 0.5, 0.1, 0.0)] == [
        "core",
        "core",
        "borderline",
        "exterior",
        "exterior",
    ]


@pytest.mark.slow
def test_robustness_core_indices_with_intervals(client) -> None:
    config = _config(optimisation=16)
    core, batches = run_robustness(CATALOG, config, 6, client)
    assert sorted(core["project_id"]) == sorted(CATALOG.project_ids)
    assert list(batches["first_scenario"]) == [16 * (b + 1) for b in range(6)]
    n = core["batches"].iloc[0]
    assert n == (batches["status"] == "optimal").sum() > 0
    assert np.allclose(core["core_index"], core["selected_in"] / n)
    assert (core["ci_low"] <= core["core_index"]).all()
    assert (core["core_index"] <= core["ci_high"]).all()
    assert set(core["class"]) <= {"core", "borderline", "exterior"}
    counts = {
        pid: sum(pid in s.split(";") for s in batches["selected"]) for pid in CATALOG.project_ids
    }
    assert dict(zip(core["project_id"], core["selected_in"], strict=True)) == counts
    again, _ = run_robustness(CATALOG, config, 6, client)
    pd.testing.assert_frame_equal(core, again)  # reproducible batch by batch


def test_status_counts_say_how_each_batch_ended() -> None:
    batches = pd.DataFrame({"status": ["optimal"] * 17 + ["time_limit"] * 3})
    assert status_counts(batches) == (
        "20 batches: 17 optimal, 3 stopped at the time limit (feasible, not proven optimal)"
    )
    mixed = pd.DataFrame({"status": ["infeasible", "optimal", "error"]})
    assert status_counts(mixed) == "3 batches: 1 optimal, 1 infeasible, 1 solver error"


def test_dashboard_link_when_there_is_one(client) -> None:
    class Served:
        dashboard_link = "http://10.0.0.5:8787/status"

        def scheduler_info(self) -> dict:
            return {"services": {"dashboard": 8787}}

    class Bare(Served):
        def scheduler_info(self) -> dict:
            return {"services": {}}

    assert dashboard_link(Served()) == "http://10.0.0.5:8787/status"
    assert dashboard_link(Bare()) is None
    assert dashboard_link(client) == client.dashboard_link


def test_robustness_cli_on_a_running_scheduler_updates_the_report(
    client, config_file: Path, tmp_path: Path
) -> None:
    run_dir = synthetic_folder(tmp_path / "run")
    out = tmp_path / "robust"
    result = CliRunner().invoke(
        app,
        [
            "robustness",
            str(config_file),
            "--one-shot",
            "--batches",
            "4",
            "--scheduler",
            client.scheduler.address,
            "--out",
            str(out),
            "--report",
            str(run_dir),
            "--set",
            "scenarios.optimisation=16",
        ],
    )
    assert result.exit_code == 0, result.output
    statuses = pd.read_csv(out / "batches.csv")["status"]
    assert status_counts(pd.DataFrame({"status": statuses})) in result.output
    assert "4/4" in result.output  # the progress bar counts batches
    core = pd.read_csv(out / "robustness.csv", keep_default_na=False)
    assert {"project_id", "core_index", "ci_low", "ci_high", "class"} <= set(core.columns)
    page = (out / "robustness.html").read_text()
    assert page.count('class="chart"') == 1
    cfg = load_config(config_file, {"scenarios": {"optimisation": 16}})
    assert f"configuration {cfg.digest()} · seed {cfg.seed}" in page
    rows = page[page.rindex("<table") :]
    assert re.search(r"<td>\d+%–\d+%</td>", rows) and " of 4</td>" in rows
    assert not re.search(r"\d\.\d+e[+-]\d", rows)
    assert 'id="robustness"' in (run_dir / "report.html").read_text()
    assert client.status == "running"  # an existing cluster is left running


# ------------------------------------------------------------------------------ shards


def test_sharded_generation_equals_single_process_bitwise(client) -> None:
    config = _config()
    scenarios = range(7, 7 + 61)
    weights = np.linspace(1e8, 2e9, len(CATALOG.project_ids))
    single = generate_scenarios(
        CATALOG, config, backend="numpy", scenarios=scenarios, weights=weights
    )
    sharded = generate_sharded(CATALOG, config, scenarios, 16, client, weights=weights)
    assert sharded.first == single.first and sharded.n == single.n
    assert sharded.metadata["shards"] == 4
    for name in single.project:
        assert np.array_equal(sharded.project[name], single.project[name]), name
    for name in single.scenario:
        assert np.array_equal(sharded.scenario[name], single.scenario[name]), name
    for name in single.cash:
        assert np.array_equal(sharded.cash[name], single.cash[name]), name
    assert np.array_equal(sharded.stress, single.stress)


# ------------------------------------------------------------------------------ faults


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sweep_survives_a_killed_worker(client, config_file: Path) -> None:
    points = frontier_points(config_file, [BUDGETS, TOLERANCES])
    clean = run_frontier(CATALOG, points, client, points_per_task=2)
    killed: list[tuple[int, bool, int]] = []  # pid, busy, tasks still to come

    with cluster(None, n_workers=2) as fresh:

        def kill_a_busy_worker(done: int, total: int) -> None:
            if killed:
                return
            pids = fresh.run(os.getpid)
            busy = [a for a, keys in fresh.processing().items() if keys and a in pids]
            victim = busy[0] if busy else next(iter(pids))
            os.kill(pids[victim], signal.SIGKILL)
            killed.append((pids[victim], bool(busy), total - done))

        faulty = run_frontier(
            CATALOG, points, fresh, points_per_task=2, on_result=kill_a_busy_worker
        )
        pid, was_busy, remaining = killed[0]
        assert pid not in fresh.run(os.getpid).values()
    assert was_busy and remaining > 0, "a worker must die holding a task, mid-sweep"
    assert list(faulty["point"]) == list(range(8))
    pd.testing.assert_frame_equal(_values(faulty), _values(clean), check_exact=False, rtol=1e-9)


# ------------------------------------------------------------------------------ atomic output


def test_failed_write_leaves_no_partial_folder(tmp_path: Path, monkeypatch) -> None:
    from portopt.sweeps import frontier

    table = pd.DataFrame(
        {
            "point": [0],
            "model.budget_usd": [1e9],
            "status": ["optimal"],
            "coverage": [0.2],
            "capital_usd": [1e9],
            "budget_usd": [1e9],
            "cvar_shortfall_share": [0.3],
            "expected_recovery_ratio": [0.9],
            "n_selected": [2],
            "resolve": [False],
            "solve_s": [0.1],
        }
    )

    def broken(*args: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(frontier, "frontier_html", broken)
    out = tmp_path / "runs" / "frontier"
    with pytest.raises(RuntimeError):
        write_frontier(table, ["model.budget_usd"], out)
    assert not (tmp_path / "runs").exists()  # nor the parent made for it
    out.mkdir(parents=True)
    (out / "frontier.csv").write_text("old\n")
    with pytest.raises(RuntimeError):
        write_frontier(table, ["model.budget_usd"], out)
    assert (out / "frontier.csv").read_text() == "old\n"  # the previous result is intact
    assert [p.name for p in out.parent.iterdir()] == ["frontier"]


def test_one_budget_draws_no_budget_chart() -> None:
    """A frontier that does not vary the budget has one x value to plot against it: the page
    leaves that chart out and keeps the recoupment-risk one."""
    from portopt.sweeps.frontier import TOLERANCE_KEY, frontier_html

    table = pd.DataFrame(
        {
            "point": [0, 1],
            TOLERANCE_KEY: [0.3, 0.5],
            "status": ["optimal", "optimal"],
            "solver": ["highs_direct"] * 2,
            "mip_gap": [0.0, 0.0],
            "coverage": [0.2, 0.3],
            "capital_usd": [1e9, 2e9],
            "budget_usd": [5.5e11, 5.5e11],
            "recoupment_tolerance": [0.3, 0.5],
            "cvar_shortfall_share": [0.25, 0.45],
            "expected_recovery_ratio": [0.95, 0.9],
            "p_recoup": [0.4, 0.3],
            "n_selected": [2, 3],
            "selected": ["a;b", "a;b;c"],
            "note": ["", ""],
            "resolve": [False, True],
            "solve_s": [0.1, 0.05],
        }
    )
    page = frontier_html(table, [TOLERANCE_KEY])
    assert page.count('class="chart"') == 1
    assert "Coverage against budget" not in page


def test_an_infeasible_point_is_a_row_not_a_failed_task() -> None:
    config = _config()
    tight = config.model_copy(deep=True)
    tight.model.min_deployment_usd = 5e11  # the six projects cost $72B in all
    rows = solve_points(CATALOG, [config, tight, config])
    assert [r["status"] for r in rows] == ["optimal", "infeasible", "optimal"]
    assert rows[1]["note"] and rows[1]["n_selected"] == 0
    assert [r["resolve"] for r in rows] == [False, True, True]
    assert rows[2]["selected"] == rows[0]["selected"]
