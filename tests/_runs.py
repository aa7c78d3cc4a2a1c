"""Runs shared by tests/test_run.py and tests/test_report.py.

``default_run``: the default job (the plan of ``configs/default.yaml``), run once per test
session however many modules ask for it (the fixture is imported into each module, so the
result is cached here, not by pytest). ``synthetic_folder``: a hand-made output folder, for the
report's fast tests that need no pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from portopt.model.groups import Capital
from portopt.outputs import (
    ALLOCATION_FILE,
    COVERAGE_FILE,
    bands,
    histogram,
    write_json,
    write_table,
)
from portopt.vocabulary import SECTORS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"

_cache: dict[str, Any] = {}


def default_writes() -> list[str]:
    """What ``portopt.plan()`` left in its (empty) working folder while ``default_run`` ran."""
    return _cache["default_writes"]


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The :class:`portopt.pipeline.PlanResult` of the default job, ``make run``'s: the plan of
    the default configuration (once per session), by the Python API (``portopt.plan``) in an
    empty working folder, then written to a temporary folder (``out_dir``)."""
    if "default" not in _cache:
        import portopt

        out = tmp_path_factory.mktemp("default_run") / "out"
        cwd = tmp_path_factory.mktemp("default_cwd")
        here = Path.cwd()
        try:
            os.chdir(cwd)  # the Python API writes nothing without out_dir: seen in DEFAULT_WRITES
            result = portopt.plan(DEFAULT_CONFIG)
            _cache["default_writes"] = sorted(p.name for p in cwd.iterdir())
            result.write(out)
            _cache["default"] = result
        except Exception as exc:  # fail every dependent test with it, without re-running
            _cache["default"] = exc
        finally:
            os.chdir(here)
    if isinstance(_cache["default"], Exception):
        raise _cache["default"]
    return _cache["default"]


def synthetic_folder(folder: Path, n: int = 24, chokepoints: int = 8, seed: int = 0) -> Path:
    """Write allocation.csv, coverage.csv and metrics.json with made-up, plausible numbers."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    selected = np.arange(n) % 3 != 0
    allocation = pd.DataFrame(
        {
            "id": [f"p{i:02d}" for i in range(n)],
            "name": [f"Project {i}, phase <{i % 2}>" for i in range(n)],
            "sector": [SECTORS[i % len(SECTORS)] for i in range(n)],
            "selected": selected,
            "fund_usd": np.where(selected, rng.uniform(1e9, 3e10, n), 0.0),
            "fund_share": np.where(selected, rng.uniform(0.2, 1.0, n), 0.0),
            "expected_recovery_ratio": rng.uniform(0.6, 1.6, n),
            "p_recoup": rng.uniform(0.0, 1.0, n),
            "expected_online_share": rng.uniform(0.0, 1.0, n),
        }
    )
    write_table(allocation, folder, ALLOCATION_FILE)
    mean = rng.uniform(0.0, 1.0, chokepoints)
    coverage = pd.DataFrame(
        {
            "id": [f"c{k}" for k in range(chokepoints)],
            "name": [f"Chokepoint {k}" for k in range(chokepoints)],
            "weight": rng.uniform(1.0, 3.0, chokepoints),
            "expected_coverage": mean,
            "p10": 0.6 * mean,
            "p50": 0.95 * mean,
            "p90": np.minimum(1.0, 1.3 * mean),
        }
    )
    write_table(coverage, folder, COVERAGE_FILE)
    cash = rng.lognormal(0.0, 1.0, (500, 40)) * 1e9
    figures = {
        "coverage": {"mean": 0.6, "p10": 0.4, "p50": 0.6, "p90": 0.8},
        "recovery_ratio": {"mean": 1.08, "p10": 0.7, "p50": 1.05, "p90": 1.5},
        "p_recoup": 0.68,
        "shortfall_cvar_0.95_share": 0.32,
    }
    metrics = {
        "version": "test",
        "config_hash": "0123456789abcdef",
        "seed": seed,
        "catalog": "<synthetic>",
        "status": "optimal",
        "solver": "HIGHS",
        "objective": 0.5,
        "mip_gap": 0.004,
        "mip_gap_target": 0.01,
        "budget_usd": 5.5e11,
        "capital_committed_usd": float(allocation["fund_usd"].sum()),
        "capital_committed_share": float(allocation["fund_usd"].sum()) / 5.5e11,
        "projects": {"selected": int(selected.sum()), "candidates": n},
        "recoupment_alpha": 0.95,
        "in_sample": {**figures, "p_recoup": 0.7},
        "out_of_sample": figures,
        "sector_shares": {s: {"usd": 5e10, "share": 0.1, "min": 0.0, "max": 0.7} for s in SECTORS},
        "binding_constraints": [
            {
                "group": "capital",
                "row": "budget",
                "binding": True,
                "coverage_per_unit": 0.01,
                "unit": "per extra $10B of budget",
                "meaning": Capital.meanings["budget"].meaning,
            }
        ],
        "timings_s": {"catalog": 0.1, "optimise": 10.0, "total": 12.0},
        "backend": "numpy",
        "device": "cpu",
        "scenarios": {
            "optimisation": {"first": 0, "count": 500},
            "evaluation": {"first": 500, "count": 500},
            "start": "2026Q1",
            "max_delay_quarters": 80,
        },
        "distributions": {
            "recovery_ratio": histogram(rng.lognormal(0.0, 0.3, 500)),
            "cash_per_quarter": {
                "quarter": [f"q{t}" for t in range(40)],
                "cash_japan": bands(cash),
                "cash_us": bands(1.5 * cash),
                "cash_draw": bands(0.7 * cash),
            },
        },
    }
    write_json(metrics, folder / "metrics.json")
    return folder


def read_allocation(folder: Path) -> pd.DataFrame:
    """allocation.csv as written, ``selected`` as bool."""
    table = pd.read_csv(folder / ALLOCATION_FILE, keep_default_na=False, dtype={"project_id": str})
    table["selected"] = table["selected"].astype(str).str.lower() == "true"
    return table
