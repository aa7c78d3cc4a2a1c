"""Benchmarks of the frontier (run with ``pytest bench/test_bench_frontier.py -m bench``).

* a point's Parameter re-solve against the first solve, on the direct path
  (``solver.name: highs_direct``), on the bundled catalog with the default config's scenario
  count (``bench/bench_frontier.py``); target: the re-solve at most half the first solve;
* ``portopt frontier`` over 8 points (budget × recoupment tolerance) on a 2-worker
  ``LocalCluster``, end to end, on the bundled catalog.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_frontier import DEFAULT_CONFIG, TARGET_RATIO, measure

pytestmark = pytest.mark.bench


def test_resolve_vs_first_solve(benchmark) -> None:
    # the direct path carries its cut pools from point to point; the CVXPY path's re-solve is
    # dominated by branch-and-bound (bench/RESULTS.md has both)
    result = benchmark.pedantic(measure, kwargs={"solver": "highs_direct"}, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["ratio"] <= TARGET_RATIO, result


def test_frontier_8_points_on_a_local_cluster(benchmark, tmp_path: Path) -> None:
    from portopt.cli.main import app

    out = tmp_path / "frontier"
    args = [
        "frontier",
        str(DEFAULT_CONFIG),
        "--vary",
        "model.budget_usd=2e11,3e11,4e11,5.5e11",
        "--vary",
        "model.groups.recoupment.max_shortfall_share=0.8,1.0",
        "--out",
        str(out),
        "--workers",
        "2",
    ]

    def run() -> object:
        return CliRunner().invoke(app, args)

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "frontier.csv", keep_default_na=False)
    assert len(table) == 8
    benchmark.extra_info.update(
        {
            "statuses": table["status"].tolist(),
            "first_point_s": table.loc[~table["resolve"], "point_s"].tolist(),
            "resolve_point_s": table.loc[table["resolve"], "point_s"].tolist(),
        }
    )
