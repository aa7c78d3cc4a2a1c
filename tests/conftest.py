"""Shared fixtures: a small typed catalog (6 projects × 4 chokepoints) built in memory.

The catalog's numbers are illustrative; they exercise every branch of the scenario model
(nuclear fat tail, a price floor, no price factor, backlog sectors, federal permitting, a project
starting before the horizon, one after the window).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from portopt.catalog import Catalog
from portopt.config import RunConfig

_PROJECT_ROWS = [
    # id, sector, cost, build_q, start, life, revenue/yr, opex, factor, beta, offtake, floor,
    # med, p90, delay_q, permitting, fail_p, workers/yr, spread
    (
        "gas_ohio",
        "energy",
        3.33e10,
        16,
        "2026Q3",
        30,
        7.0e9,
        0.55,
        "gas",
        -0.4,
        0.6,
        0.9,
        0.15,
        0.50,
        2.0,
        "state",
        0.05,
        8000.0,
        0.015,
    ),
    (
        "ap1000_pair",
        "energy",
        2.0e10,
        32,
        "2027Q1",
        60,
        3.2e9,
        0.35,
        "power",
        0.8,
        0.8,
        0.9,
        0.60,
        1.50,
        6.0,
        "federal",
        0.15,
        7000.0,
        0.02,
    ),
    (
        "diamond_grit",
        "critical_minerals",
        6.0e8,
        8,
        "2025Q4",
        20,
        2.4e8,
        0.6,
        "none",
        0.0,
        0.0,
        0.0,
        0.10,
        0.35,
        1.0,
        "state",
        0.05,
        300.0,
        0.01,
    ),
    (
        "ndpr_magnets",
        "critical_minerals",
        1.5e9,
        12,
        "2026Q2",
        20,
        6.0e8,
        0.5,
        "ndpr",
        1.0,
        0.5,
        1.2,
        0.20,
        0.60,
        3.0,
        "mixed",
        0.10,
        900.0,
        0.025,
    ),
    (
        "fab_chips",
        "semiconductors",
        1.2e10,
        20,
        "2026Q4",
        25,
        4.0e9,
        0.65,
        "chip_demand",
        1.0,
        0.3,
        0.8,
        0.10,
        0.35,
        2.0,
        "mixed",
        0.08,
        4000.0,
        0.02,
    ),
    (
        "dc_campus",
        "ai_infrastructure",
        5.0e9,
        10,
        "2036Q1",
        15,
        1.6e9,
        0.5,
        "power",
        -0.3,
        0.7,
        1.0,
        0.10,
        0.35,
        1.0,
        "state",
        0.04,
        2500.0,
        0.018,
    ),
]
_PROJECT_COLUMNS = [
    "sector",
    "base_cost_usd",
    "build_quarters",
    "earliest_start",
    "life_years",
    "revenue_usd_per_year",
    "opex_share",
    "price_factor",
    "price_beta",
    "offtake_share",
    "offtake_floor",
    "overrun_median",
    "overrun_p90",
    "delay_median_quarters",
    "permitting",
    "failure_prob",
    "workers_per_year",
    "spread",
]

_CHOKEPOINTS = [
    # id, unit, us_gap, weight, china_exposed
    ("firm_power", "GW", 40.0, 3.0, False),
    ("rare_earth_magnets", "kt/yr", 30.0, 2.0, True),
    ("synthetic_diamond", "share", 1.0, 1.0, True),
    ("leading_edge_chips", "wafers/month", 100000.0, 2.5, False),
]

_CAPACITY = {
    ("gas_ohio", "firm_power"): 9.2,
    ("ap1000_pair", "firm_power"): 2.2,
    ("diamond_grit", "synthetic_diamond"): 1.0,
    ("ndpr_magnets", "rare_earth_magnets"): 10.0,
    ("fab_chips", "leading_edge_chips"): 40000.0,
    ("dc_campus", "firm_power"): 0.3,
}


def project_row(pid: str, **values: object) -> dict[str, object]:
    """A full projects.csv row (typed) for ``pid``: illustrative defaults, then ``values``."""
    row: dict[str, object] = {
        "id": pid,
        "name": pid.replace("_", " ").title(),
        "sector": "energy",
        "sponsor": f"sponsor_{pid}",
        "japanese_partners": "",
        "state": "US",
        "grid_region": "PJM",
        "status": "candidate",
        "base_cost_usd": 1e9,
        "build_quarters": 8,
        "earliest_start": "2026Q1",
        "life_years": 20,
        "revenue_usd_per_year": 2e8,
        "opex_share": 0.5,
        "price_factor": "none",
        "price_beta": 0.0,
        "offtake_share": 0.0,
        "offtake_floor": 0.0,
        "overrun_median": 0.1,
        "overrun_p90": 0.35,
        "delay_median_quarters": 1.0,
        "permitting": "state",
        "failure_prob": 0.05,
        "workers_per_year": 500.0,
        "japan_content": 0.3,
        "min_fund_share": 0.1,
        "max_fund_share": 0.9,
        "spread": 0.02,
        "dc_load_mw": 0.0,
        "firm_gen_mw": 0.0,
        "depends_on": (),
        "excludes": (),
        "source": "test fixture",
        "basis": "illustrative",
        "notes": "",
    }
    row.update(values)
    return row


_FLOAT_COLUMNS = (
    "base_cost_usd",
    "revenue_usd_per_year",
    "opex_share",
    "price_beta",
    "offtake_share",
    "offtake_floor",
    "overrun_median",
    "overrun_p90",
    "delay_median_quarters",
    "failure_prob",
    "workers_per_year",
    "japan_content",
    "min_fund_share",
    "max_fund_share",
    "spread",
    "dc_load_mw",
    "firm_gen_mw",
)


def make_catalog(
    rows: list[dict[str, object]],
    chokepoints: list[tuple[str, str, float, float, bool]] | None = None,
    capacity: dict[tuple[str, str], float] | None = None,
) -> Catalog:
    """A typed Catalog from project rows (see :func:`project_row`) and chokepoint tuples
    ``(id, unit, us_gap, weight, china_exposed)``."""
    projects = pd.DataFrame(rows).set_index("id")
    for col in _FLOAT_COLUMNS:
        projects[col] = projects[col].astype("float64")
    for col in ("build_quarters", "life_years"):
        projects[col] = projects[col].astype("int64")
    chokepoints = _CHOKEPOINTS if chokepoints is None else chokepoints
    table = pd.DataFrame(
        [
            {
                "id": cid,
                "name": cid.replace("_", " "),
                "unit": unit,
                "us_gap": gap,
                "weight": w,
                "china_exposed": exposed,
                "source": "test fixture",
                "basis": "illustrative",
                "notes": "",
            }
            for cid, unit, gap, w, exposed in chokepoints
        ]
    ).set_index("id")
    cap = pd.DataFrame(0.0, index=projects.index, columns=table.index)
    for (pid, cid), value in (capacity or {}).items():
        cap.loc[pid, cid] = value
    return Catalog(projects, table, cap, "<test catalog>")


def build_small_catalog() -> Catalog:
    """A typed 6-project × 4-chokepoint catalog per docs/catalog-columns.md."""
    rows = []
    for r in _PROJECT_ROWS:
        pid, values = r[0], dict(zip(_PROJECT_COLUMNS, r[1:], strict=True))
        rows.append(
            project_row(
                pid,
                **values,
                dc_load_mw=300.0 if pid == "dc_campus" else 0.0,
                firm_gen_mw=9200.0 if pid == "gas_ohio" else 0.0,
            )
        )
    return make_catalog(rows, _CHOKEPOINTS, _CAPACITY)


def write_catalog_csv(catalog: Catalog, folder: Path) -> Path:
    """Write ``catalog`` as the three CSV files of docs/catalog-columns.md into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    pr = catalog.projects.reset_index()
    for col in ("depends_on", "excludes"):
        pr[col] = [";".join(v) for v in pr[col]]
    pr.to_csv(folder / "projects.csv", index=False)
    ch = catalog.chokepoints.reset_index()
    ch["china_exposed"] = ["true" if bool(v) else "false" for v in ch["china_exposed"]]
    ch.to_csv(folder / "chokepoints.csv", index=False)
    cap = catalog.capacity.stack()
    cap = cap[cap > 0]
    pd.DataFrame(
        {
            "project_id": [p for p, _ in cap.index],
            "chokepoint_id": [c for _, c in cap.index],
            "capacity": cap.to_numpy(),
            "source": "test fixture",
            "basis": "illustrative",
        }
    ).to_csv(folder / "capacity.csv", index=False)
    return folder


@pytest.fixture
def small_catalog() -> Catalog:
    """Six typed projects and four chokepoints (see the module docstring)."""
    return build_small_catalog()


@pytest.fixture
def economics_catalog(small_catalog: Catalog) -> Catalog:
    """The small catalog with every economics column of docs/catalog-columns.md set somewhere:
    senior debt (annuity and level), ITC and PTC, floors with a term, straight-line and MACRS
    schedules, every JBIC funding source and yen shares (blank cells keep their defaults)."""
    nan = float("nan")
    projects = small_catalog.projects.copy()
    projects["senior_debt_share"] = [0.5, 0.0, 0.3, 0.6, 0.0, 0.2]
    projects["senior_amortisation"] = ["annuity", "", "level", "annuity", "", "level"]
    projects["senior_tenor_years"] = [2.0, nan, 10.0, nan, nan, 3.0]
    projects["credit"] = ["ptc", "itc", "", "none", "itc", "ptc"]
    projects["credit_rate"] = [25.0, 0.3, nan, nan, 0.35, 10.0]
    projects["credit_units_per_year"] = [6e7, nan, nan, nan, nan, 1e6]
    projects["credit_years"] = [10.0, nan, nan, nan, nan, 2.0]
    projects["offtake_years"] = [3.0, nan, 10.0, 2.0, nan, nan]
    projects["depreciation"] = ["straight_line", "", "macrs", "", "straight_line", ""]
    projects["tax_life_years"] = [3.0, nan, 15.0, nan, 39.0, nan]
    projects["jbic_funding"] = ["yen_loans", "reserves", "", "usd_bonds", "", "yen_loans"]
    projects["yen_share"] = [nan, 0.4, nan, 1.0, nan, 0.5]
    return dataclasses.replace(small_catalog, projects=projects)


@pytest.fixture
def economics_config() -> RunConfig:
    """Deal terms away from the defaults: quarterly compounding, a 60/10 split, carried interest
    that earns none and the Korea-style re-allocation after 6 years."""
    return RunConfig.model_validate(
        {
            "deal": {
                "compounding": "quarterly",
                "shortfall_accrues": False,
                "japan_share_until_recovered": 0.6,
                "reallocation": {"enabled": True, "after_years": 6, "japan_share": 0.9},
            }
        }
    )


@pytest.fixture
def small_config() -> RunConfig:
    """Schema defaults with a small scenario count (fast tests)."""
    return RunConfig.model_validate({"scenarios": {"optimisation": 64, "evaluation": 64}})
