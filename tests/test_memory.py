"""The memory estimate (portopt.memory, portopt.pipeline.memory_estimate) against the peak
resident memory a ``portopt plan`` subprocess really reaches, at two sizes: within 25% at
each, so a run that would not fit is refused up front and one that fits is not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.bench_memory import tree_peak
from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.errors import ConfigError
from portopt.memory import (
    CUT_MODEL_BYTES,
    CVXPY_MODEL_BYTES,
    TRACKER_BYTES,
    WORKER_BASE_BYTES,
    WORKER_BYTES,
    MemoryEstimate,
    check_fits,
    run_estimate,
)
from portopt.pipeline import memory_estimate
from portopt.plan.columns import Columns
from portopt.plan.frontier import default_workers
from portopt.planning import Plan
from tests.conftest import build_small_catalog

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "configs" / "default.yaml"


def _peak(args: list[str], cwd: Path) -> int:
    """Peak resident bytes of ``portopt args`` with its frontier's worker processes: the
    largest sum over the process tree at one moment, at least the command's own high-water
    mark (:func:`bench.bench_memory.tree_peak`). Not the kernel's ``ru_maxrss`` of the child:
    Linux carries this (pytest) process's high-water mark into it through fork and exec, which
    inside the full suite made a small plan's peak read as 1.2 GiB."""
    with open(cwd / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portopt", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        found = tree_peak(proc)
        proc.wait()
    assert proc.returncode == 0, (cwd / "stderr.txt").read_text()[-3000:]
    if default_workers() > 1:
        assert found.processes > 1  # the frontier's workers were seen
    return found.peak


@pytest.mark.slow
@pytest.mark.parametrize(
    ("optimisation", "evaluation"),
    [(400, 4000), (2000, 20000)],
    ids=["smaller", "larger"],
)
def test_the_plans_estimate_is_within_a_quarter_of_its_peak(
    optimisation: int, evaluation: int, tmp_path: Path
) -> None:
    """The default plan, its frontier on (the points solved in worker processes)."""
    sets = [
        f"scenarios.optimisation={optimisation}",
        f"scenarios.evaluation={evaluation}",
    ]
    estimate = memory_estimate(Plan(), load_config(DEFAULT, sets))
    assert estimate.stages["frontier"] > 0
    args = ["plan", str(DEFAULT), "--out", str(tmp_path / "out")]
    peak = _peak([*args, *(x for s in sets for x in ("--set", s))], tmp_path)
    assert 0.75 <= estimate.total / peak <= 1.25, (str(estimate), peak / 2**20)


def test_the_estimate_follows_the_formulation_and_the_plans_columns() -> None:
    catalog = build_small_catalog()
    config = load_config(DEFAULT, ["scenarios.optimisation=10000", "scenarios.evaluation=10"])
    columns = Columns.one_per_project(catalog)
    cuts = run_estimate(config, columns, "cuts")
    full = run_estimate(config, columns, "full")
    n = 10000 * len(catalog.project_ids)
    # the model is kept from the optimisation on (the engine's stage comes before it)
    difference = full.stages["evaluation"] - cuts.stages["evaluation"]
    assert difference == n * (CVXPY_MODEL_BYTES - CUT_MODEL_BYTES)
    assert full.stages["scenario engine"] == cuts.stages["scenario engine"]
    plan = memory_estimate(Plan(), load_config(DEFAULT, ["scenarios.optimisation=10000"]))
    one_shot = run_estimate(
        load_config(DEFAULT, ["scenarios.optimisation=10000"]),
        Columns.one_per_project(load_catalog(None)),
        "cuts",
    )
    # a plan keeps the engine's (project, start) columns and the model's declined copy
    assert plan.parts["model's columns (declined)"] > 0
    assert one_shot.parts["model's columns (declined)"] == 0
    assert plan.total > one_shot.total


def test_the_frontiers_worker_processes_are_counted_and_named() -> None:
    sets = ["scenarios.optimisation=10000", "scenarios.evaluation=2000"]
    job = Plan()
    config = job.prepare(load_config(DEFAULT, sets))
    columns = job.columns(load_catalog(None), config)
    p_model = len(columns.catalog.project_ids)

    def estimate(*more: str, local: bool = True) -> MemoryEstimate:
        return run_estimate(
            job.prepare(load_config(DEFAULT, [*sets, *more])), columns, "cuts", local
        )

    by = {w: estimate(f"plan.frontier.workers={w}") for w in (1, 2, 4)}
    each = WORKER_BASE_BYTES + 10000 * p_model * WORKER_BYTES
    assert by[4].stage == "frontier"
    assert by[4].total - by[2].total == 2 * each
    # one solver is the plan's own process: two solvers are one worker process
    frontier = {w: e.stages["frontier"] for w, e in by.items()}
    assert frontier[2] - frontier[1] == each + TRACKER_BYTES
    off = estimate("plan.frontier.enabled=false")
    assert "frontier" not in off.stages
    assert off.total <= by[1].total
    # a Dask cluster solves the points elsewhere: only the plan's own share is counted here
    assert estimate("plan.frontier.workers=4", local=False).total == by[1].total
    with pytest.raises(ConfigError) as refused:
        check_fits(by[4], "scenarios.optimisation=10000", limit=by[4].total - 1)
    message = str(refused.value.problems[0])
    assert "in the frontier stage" in message
    assert "frontier's 3 worker processes" in message
    assert "plan.frontier.workers" in message


HOLD = """
import subprocess, sys, time
import numpy as np
held = np.ones({mib} * 2**20 // 8)
if {child!r}:
    child = subprocess.Popen([sys.executable, "-c", {child!r}])
    child.wait()
else:
    time.sleep(1.5)
"""


def test_the_peak_is_the_process_trees_and_not_inherited_from_its_starter() -> None:
    """A process holding 150 MiB whose child holds 250 MiB at the same time peaks at 400 MiB
    or more; started from this process while it holds 600 MiB, which ``ru_maxrss`` would
    report as the child's own."""
    big = np.ones(600 * 2**20 // 8)  # this (the starting) process's high-water mark
    grandchild = HOLD.format(mib=250, child="")
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(mib=150, child=grandchild)])
    found = tree_peak(proc)
    proc.wait()
    assert proc.returncode == 0
    assert found.processes == 2
    assert 400 * 2**20 <= found.peak < 600 * 2**20, found.peak / 2**20
    assert big.sum() > 0
