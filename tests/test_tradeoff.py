"""The plan frontier (portopt.tradeoff, portopt.report_frontier): frontier.csv from
``portopt plan``, the same whatever the number of processes, and the report's first chart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _runs import default_run  # noqa: F401  (the session's default plan)
from test_report import browser  # noqa: F401  (headless Chromium, skipped without it)

from portopt import tradeoff
from portopt.config import load_config
from portopt.plan.frontier import frontier_floors
from portopt.planning import run_plan
from portopt.report_frontier import next_step, read_frontier
from portopt.tradeoff import FLOOR_KEY, FRONTIER_FILE, dominate, highest_floor

ROOT = Path(__file__).resolve().parents[1]
GAP = 0.01

SMALL = [
    "scenarios.optimisation=60",
    "scenarios.evaluation=40",
    "plan.rounds_per_project=3",
    f"solver.mip_gap={GAP}",
    "solver.time_limit_s=60",
    "output.scenarios_parquet=false",
    "plan.frontier.lowest_floor=0.6",
]
"""The bundled catalog on few scenarios: the frontier from 0.95 down to 0.60 (8 points), and
every $50B from the committed tranche up."""


def _plan(out: Path, *sets: str) -> Any:
    return run_plan(load_config(ROOT / "configs" / "default.yaml", [*SMALL, *sets]), out_dir=out)


@pytest.fixture(scope="module")
def small_plan(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The small plan, its frontier solved in two processes."""
    return _plan(tmp_path_factory.mktemp("tradeoff") / "out", "plan.frontier.workers=2")


def _frontier(out: Path) -> pd.DataFrame:
    table = read_frontier(out)
    assert table is not None, f"no {FRONTIER_FILE} in {out}"
    return table


def _check_frontier(
    table: pd.DataFrame, top: float, step: float, gap: float, committed: float
) -> None:
    levels = table[table["kind"] == "level"]
    table = table[table["kind"] == "floor"]
    assert len(table) >= 8
    assert table["floor"].tolist() == pytest.approx([top - k * step for k in range(len(table))])
    assert table["configured"].tolist() == [True] + [False] * (len(table) - 1)
    assert set(table["status"]) == {"optimal"}
    assert (table["mip_gap"].astype(float) <= gap + 1e-9).all()
    # capital non-increasing as the floor rises (rows are by floor, highest first)
    capital = table["committed_expected_usd"].to_numpy()
    assert all(capital[i] <= capital[i + 1] * (1 + 1e-9) for i in range(len(capital) - 1))
    # each point's recovery meets its floor; the configured point's floor binds
    assert (table["expected_recovery"] >= table["floor"] - 1e-6).all()
    # adds and drops are the difference of the neighbours' project sets
    sets = [set(filter(None, str(p).split(";"))) for p in table["projects"]]
    for i in range(1, len(sets)):
        adds = set(filter(None, str(table["adds"].iloc[i]).split(";")))
        drops = set(filter(None, str(table["drops"].iloc[i]).split(";")))
        assert sets[i] == (sets[i - 1] | adds) - drops
        assert adds == sets[i] - sets[i - 1] and drops == sets[i - 1] - sets[i]
    # each deployment level: every $50B (the default step) of expected committed capital from the
    # committed tranche up to the most a plan reaches; the higher the level, the lower its floor
    assert len(levels) >= 1
    step = 5e10
    first = levels["level_usd"].iloc[0]
    assert first == pytest.approx(step * (committed // step + 1))
    assert levels["level_usd"].tolist() == pytest.approx(
        [first + k * step for k in range(len(levels))]
    )
    assert levels["level_usd"].max() >= capital.max() - step
    assert set(levels["status"]) <= {"optimal"}
    assert (levels["committed_expected_usd"] >= levels["level_usd"] * (1 - 1e-6)).all()
    assert (levels["expected_recovery"] >= levels["floor"] - 1e-6).all()
    assert levels["floor"].is_monotonic_decreasing


def _committed(out: Path) -> float:
    plan = pd.read_csv(out / "plan.csv")
    return float(plan.loc[plan["status"] == "committed", "expected_committed_usd"].sum())


def test_plan_writes_its_frontier(small_plan: Any) -> None:
    import multiprocessing

    assert multiprocessing.active_children() == []  # the plan's worker process has stopped
    table = _frontier(small_plan.out_dir)
    _check_frontier(table, 0.95, 0.05, GAP, _committed(small_plan.out_dir))
    assert (table["kind"] == "floor").sum() == 8
    first = table.iloc[0]
    plan = small_plan.metrics["plan"]
    assert first["committed_expected_usd"] == pytest.approx(plan["committed_expected_usd"])
    assert first["proposals"] == small_plan.metrics["projects"]["selected"]
    assert "frontier" in small_plan.metrics["timings_s"]


def test_a_levels_floor_is_the_highest_that_admits_it(small_plan: Any, tmp_path: Path) -> None:
    """A level below the configured plan's capital sits above the configured floor (what
    deploying less buys in recovery); its floor admits it (a hard-target plan there is
    feasible) and the next point up (0.01) does not."""
    from portopt.errors import InfeasibleError

    table = _frontier(small_plan.out_dir)
    capital = float(table.loc[table["configured"], "committed_expected_usd"].iloc[0])
    levels = table.query("kind == 'level'")
    below = levels[levels["level_usd"] < capital]
    assert len(below) >= 2 and (below["floor"] > 0.95).all()
    level = below.iloc[len(below) // 2]
    hard = [
        "plan.target=hard",
        f"plan.target_usd={level['level_usd']}",
        "plan.frontier.enabled=false",
        "output.report=false",
    ]
    floor = float(level["floor"])
    met = _plan(tmp_path / "at", *hard, f"{FLOOR_KEY}={floor}")
    assert met.metrics["plan"]["committed_expected_usd"] >= level["level_usd"] * (1 - 1e-6)
    with pytest.raises(InfeasibleError):
        _plan(tmp_path / "above", *hard, f"{FLOOR_KEY}={round(floor + 0.01, 2)}")


@pytest.mark.slow
def test_frontier_is_the_same_in_one_process(small_plan: Any, tmp_path: Path) -> None:
    again = _plan(tmp_path / "one", "plan.frontier.workers=1", "output.report=false")
    a = (small_plan.out_dir / FRONTIER_FILE).read_bytes()
    assert (again.out_dir / FRONTIER_FILE).read_bytes() == a


def test_a_point_does_not_depend_on_the_models_held_before_it() -> None:
    """A process re-targets the cut models an earlier task compiled (:func:`held`) instead of
    compiling its own: every point, after others in the same process, equals the point
    solved in a process that held nothing."""
    from portopt import tradeoff
    from portopt.pipeline import choose
    from portopt.planning import Plan

    job = Plan()
    config = job.prepare(load_config(ROOT / "configs" / "default.yaml", SMALL))
    chosen = choose(job, config)
    columns = chosen.columns
    _, mask = columns.declines(chosen.scenarios, columns.decline_prob, config)
    project = [str(p) for p in columns.project]
    state = tradeoff.frontier_state(
        chosen.model, chosen.allocation, mask, columns.unfunded_prob, project
    )
    items = [("level", 150e9), ("floor", 0.6), ("level", 100e9)]
    tradeoff.release_held()
    together = tradeoff.frontier_points(state, items)
    assert tradeoff.held(state, "points") is not None
    assert tradeoff.held(state, "level_tests") is not None
    alone = []
    for item in items:
        tradeoff.release_held()
        alone += tradeoff.frontier_points(state, [item])
    tradeoff.release_held()
    assert pd.DataFrame(together).equals(pd.DataFrame(alone))
    assert [r["status"] for r in together] == ["optimal"] * 3


@pytest.mark.slow
def test_frontier_is_the_same_on_a_dask_cluster(small_plan: Any, tmp_path: Path) -> None:
    """``portopt plan --scheduler``: the frontier's points as Dask tasks (dealt into two, each
    carrying the state) give the same frontier.csv as two local processes."""
    from portopt.cli.plan import dask_mapper
    from portopt.sweeps import cluster

    config = load_config(ROOT / "configs" / "default.yaml", [*SMALL, "output.report=false"])
    config.plan.frontier.workers = 2
    with cluster(None, n_workers=2) as client, dask_mapper(client.scheduler.address) as mapper:
        again = run_plan(config, out_dir=tmp_path / "dask", mapper=mapper)
    a = (small_plan.out_dir / FRONTIER_FILE).read_bytes()
    assert (again.out_dir / FRONTIER_FILE).read_bytes() == a


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda t: t.drop(columns="coverage"), "column 'coverage': missing column"),
        (lambda t: t.assign(coverage=["lots"] * len(t)), "row 2, column 'coverage': 'lots' is"),
        (lambda t: t.assign(mip_gap=["?"] * len(t)), "row 3, column 'mip_gap': '?' is not"),
    ],
)
def test_a_malformed_frontier_names_file_row_and_column(
    small_plan: Any, tmp_path: Path, edit: Any, where: str
) -> None:
    """The report reads frontier.csv as it reads plan.csv: a cell that is not a number is named
    by file, row and column (it was read as a blank before); a blank figure, a point without
    a plan, is read as missing."""
    from portopt.errors import EXIT_BAD_INPUT, InputError

    table = pd.read_csv(small_plan.out_dir / FRONTIER_FILE, keep_default_na=False, dtype=str)
    path = tmp_path / FRONTIER_FILE
    table.assign(coverage=["", *list(table["coverage"][1:])]).to_csv(path, index=False)
    assert pd.isna(read_frontier(tmp_path)["coverage"].iloc[0])
    edit(table).to_csv(path, index=False)
    with pytest.raises(InputError) as caught:
        read_frontier(tmp_path)
    assert f"{path}" in str(caught.value) and where in str(caught.value)
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_report_leads_with_the_frontier(small_plan: Any) -> None:
    page = (small_plan.out_dir / "report.html").read_text()
    charts = re.findall(r'<div class="chart" id="([^"]+)"', page)
    assert charts[0] == "chart-frontier"
    assert any(s in page for s in ("The next $50B", "Its last $50B", "does not reach $50B"))


def test_an_infeasible_plan_stops_its_worker_processes(tmp_path: Path) -> None:
    """The frontier's worker starts as the plan's solve begins; a plan that stops there (no
    portfolio meets a hard target) stops it too, and writes nothing."""
    import multiprocessing

    from portopt.errors import InfeasibleError

    with pytest.raises(InfeasibleError):
        _plan(tmp_path / "out", "plan.frontier.workers=2", "plan.target=hard",
              "plan.target_usd=5e11")  # fmt: skip
    assert multiprocessing.active_children() == []
    assert not (tmp_path / "out").exists()


def test_no_frontier_when_off(tmp_path: Path) -> None:
    config = load_config(ROOT / "configs" / "default.yaml", ["plan.frontier.enabled=false"])
    assert frontier_floors(config) == []
    config = load_config(ROOT / "configs" / "default.yaml", ["plan.frontier.lowest_floor=0.8"])
    assert frontier_floors(config) == pytest.approx([0.95, 0.9, 0.85, 0.8])


def test_a_worse_lower_floor_takes_the_plan_above() -> None:
    row = {
        "kind": "floor",
        "configured": False,
        "status": "optimal",
        "expected_recovery": 0.7,
        "binding": "recoupment: expected;review_capacity: round 2027Q1",
        "projects": "a;b",
        "note": None,
    }
    above = {**row, "point": 0, "floor": 0.7, "objective": 0.50, "mip_gap": 0.0}
    below = {**row, "point": 1, "floor": 0.65, "objective": 0.49, "mip_gap": 0.03}
    below["projects"] = "a"
    out = dominate([above, below])
    assert out[1]["projects"] == "a;b" and out[1]["floor"] == 0.65
    assert out[1]["objective"] == 0.50
    assert out[1]["mip_gap"] == pytest.approx(0.49 * 1.03 / 0.50 - 1)
    assert out[1]["binding"] == "review_capacity: round 2027Q1"  # the floor no longer binds
    assert "floor 0.70" in out[1]["note"]
    better = {**below, "objective": 0.51}
    assert dominate([above, better])[1] == better


def test_the_lowest_floors_plan_draws_every_floor_it_meets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the floors above the lowest floor's plan's expected recovery are solved; the others
    take that plan, its gap against the lower floor's bound (at least theirs)."""
    import portopt.tradeoff as tradeoff

    solved: list[list[float]] = []

    def points(state: Any, floors: list[float]) -> list[dict[str, Any]]:
        solved.append(list(floors))
        return [
            {
                "floor": f,
                "kind": "floor",
                "configured": False,
                "status": "optimal",
                "objective": 0.6 - f / 10,
                "mip_gap": 1e-4,
                "expected_recovery": max(f, 0.78),
                "binding": "recoupment: expected;capital",
                "projects": "a",
                "note": None,
            }
            for f in floors
        ]

    monkeypatch.setattr(tradeoff, "solve_points", points)
    floors = [0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6]
    rows = tradeoff.solve_floors(None, floors, workers=1)  # type: ignore[arg-type]
    assert solved == [[0.6], [0.9, 0.85, 0.8]]  # the lowest, then those above 0.78
    assert [r["floor"] for r in rows] == floors
    bottom = rows[-1]
    for r in rows[3:6]:  # 0.75, 0.7, 0.65: the plan solved at 0.60
        assert r["objective"] == bottom["objective"] and r["mip_gap"] == bottom["mip_gap"]
        assert "floor 0.60" in r["note"]
        assert r["binding"] == "capital"  # its recovery 0.78 is above these floors
    assert rows[2]["note"] is None and rows[2]["objective"] == pytest.approx(0.52)
    # a lowest floor not solved to its gap draws no other point
    solved.clear()
    monkeypatch.setattr(
        tradeoff,
        "solve_points",
        lambda state, fs: (
            [{**points(state, fs)[0], "status": "time_limit"}] if fs == [0.6] else points(state, fs)
        ),
    )
    tradeoff.solve_floors(None, floors, workers=1)  # type: ignore[arg-type]
    assert solved == [[0.6], floors[:-1]]


def _echo(state: Any, items: list[Any]) -> list[dict[str, Any]]:
    """A task that says what it was given (picklable, for the worker processes)."""
    import os

    return [
        {"state": state, "item": item, "task": len(items), "pid": os.getpid()} for item in items
    ]


def test_run_items_one_task_per_item_rows_in_order() -> None:
    """Whichever way the items run (this process; this process and a worker process reading
    the state from a file, one item a task, the first item the worker's; a mapper that runs its
    tasks in another order, the items dealt into one task per worker), the rows come back in
    the items' order."""
    import os

    items = [3.0, 1.0, 2.0, 5.0]

    def mapper(fn: Any, args: list[tuple[Any, ...]]) -> list[Any]:
        return [fn(*a) for a in reversed(args)][::-1]

    here = tradeoff.run_items(_echo, "state", items, 1, None)
    assert [r["item"] for r in here] == items and {r["pid"] for r in here} == {os.getpid()}
    mapped = tradeoff.run_items(_echo, "state", items, 2, mapper)  # two tasks, dealt
    assert [r["item"] for r in mapped] == items and {r["task"] for r in mapped} == {2}
    pool = tradeoff.run_items(_echo, "state", items, 2, None)
    assert [(r["state"], r["item"], r["task"]) for r in pool] == [("state", i, 1) for i in items]
    assert pool[0]["pid"] != os.getpid()
    with tradeoff.Helpers(1) as helpers:  # started ahead, used twice
        for _ in range(2):
            rows = tradeoff.run_items(_echo, "state", items, 2, None, helpers=helpers)
            assert [r["item"] for r in rows] == items and rows[0]["pid"] != os.getpid()
    assert tradeoff.run_items(_echo, "state", [], 2, None) == []
    # dealt: round-robin into one task per process (the re-plans), rows still in order
    for mapped in (None, mapper):
        dealt = tradeoff.run_items(_echo, "state", [*items, 4.0], 2, mapped, dealt=True)
        assert [r["item"] for r in dealt] == [*items, 4.0]
        assert [r["task"] for r in dealt] == [3, 2, 3, 2, 3]


class _Oracle:
    """Feasibility tests of a level as :func:`highest_floor` asks them: the LP admits floors up
    to ``lp``, the MILP up to ``milp`` (at most the LP's); counts the MILP tests."""

    def __init__(self, lp: float | None, milp: float | None) -> None:
        self.top_lp, self.top_milp, self.milps = lp, milp, 0

    def lp(self, floor: float) -> bool:
        return self.top_lp is not None and floor <= self.top_lp + 1e-9

    def milp(self, floor: float) -> bool:
        self.milps += 1
        return self.top_milp is not None and floor <= self.top_milp + 1e-9


@pytest.mark.parametrize(
    ("lp", "milp"),
    [(1.13, 1.13), (1.13, 1.12), (1.13, 0.71), (0.95, 0.0), (2.0, 2.0), (0.5, None), (None, None)],
)
def test_highest_floor_finds_the_highest_admitted_floor(lp: Any, milp: Any) -> None:
    oracle = _Oracle(lp, milp)
    assert highest_floor(oracle, 2.0) == (None if milp is None else pytest.approx(milp))
    if lp is not None and milp is not None and lp - milp < 0.015:
        assert oracle.milps <= 2  # the LP's answer, then one step


def test_next_step_reads_the_frontier_between_points() -> None:
    table = pd.DataFrame(
        {
            "floor": [0.95, 0.9, 0.85],
            "configured": [True, False, False],
            "status": ["optimal"] * 3,
            "committed_expected_usd": [80e9, 120e9, 200e9],
            "expected_recovery": [0.95, 0.9, 0.85],
            "coverage": [0.40, 0.44, 0.48],
        }
    )
    step = next_step(table)
    assert step is not None
    assert step["recovery_next"] == pytest.approx(0.9 - 0.05 * 10 / 80)
    assert step["coverage_next"] == pytest.approx(0.44 + 0.04 * 10 / 80)
    assert next_step(table, step=200e9) is None


# ---------------------------------------------------------------- make run's plan


@pytest.mark.slow
def test_default_plan_writes_its_frontier(default_run: Any) -> None:  # noqa: F811
    table = _frontier(default_run.out_dir)
    config = load_config(ROOT / "configs" / "default.yaml")
    assert set(table["status"]) == {"optimal"}
    levels = table[table["kind"] == "level"]
    table = table[table["kind"] == "floor"]
    assert len(table) == len(frontier_floors(config)) >= 8
    capital = table["committed_expected_usd"].to_numpy()
    assert all(capital[i] <= capital[i + 1] * (1 + 1e-9) for i in range(len(capital) - 1))
    # the deployment levels: every $50B from the committed tranche, the lower ones above the
    # configured floor (what deploying less buys in recovery)
    assert levels["level_usd"].iloc[0] == pytest.approx(5e10)
    assert levels["level_usd"].max() >= capital.max() - 5e10
    assert levels["floor"].is_monotonic_decreasing and levels["floor"].iloc[0] > 0.95
    assert (levels["committed_expected_usd"] >= levels["level_usd"] * (1 - 1e-6)).all()


@pytest.mark.browser
def test_default_report_first_chart_is_the_frontier(
    browser: Any,  # noqa: F811
    default_run: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    browser.get((default_run.out_dir / "report.html").resolve().as_uri())
    browser.execute_script("return document.readyState")
    charts = browser.find_elements(By.CSS_SELECTOR, "div.chart")
    assert charts and charts[0].get_attribute("id") == "chart-frontier"
    assert charts[0].find_elements(By.CSS_SELECTOR, ".main-svg")
    # the plans plotted, as the page states them (data-points), and the plot drawn
    assert int(charts[0].get_attribute("data-points")) == len(_frontier(default_run.out_dir))
    assert charts[0].find_elements(By.CSS_SELECTOR, ".scatterlayer .trace")
