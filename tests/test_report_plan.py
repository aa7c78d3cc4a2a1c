"""The deployment plan in the report: the calendar, the deployment curve, the gap, the rounds.

The fixture is a hand-made run folder (``synthetic_folder`` plus :func:`write_plan`): a plan
whose figures add up the way the contract says (expected committed = fund x (1 - decline
chance), cumulated over the rounds), with a deployment gap or with the target met.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _runs import synthetic_folder
from test_report import MIN_COLOURS, browser

from portopt.config import quarter_index
from portopt.errors import EXIT_BAD_INPUT, InputError
from portopt.outputs import write_table
from portopt.report import write_report
from portopt.report_plan import PLAN_FILE, deadline_position, read_plan
from portopt.schema import conform_metrics

__all__ = ["browser"]  # a fixture, imported so pytest finds it here

DEADLINE = "2029-01-19"
PROPOSALS = (
    # project, name, sector, status, proposal, funding, start, build, completion, fund $B, decline
    (
        "t1",
        "Ohio gas plant",
        "energy",
        "committed",
        "2026Q1",
        "2026Q1",
        "2026Q2",
        12,
        "2029Q2",
        33.0,
        0.0,
    ),
    (
        "t2",
        "Diamond grit <plant>",
        "critical_minerals",
        "committed",
        "2026Q1",
        "2026Q1",
        "2026Q2",
        6,
        "2027Q4",
        3.0,
        0.0,
    ),
    (
        "c1",
        "Rare-earth magnets",
        "critical_minerals",
        "proposed",
        "2027Q1",
        "2027Q2",
        "2027Q3",
        8,
        "2029Q3",
        12.0,
        0.2,
    ),
    (
        "c2",
        "BWRX-300, Tennessee",
        "energy",
        "proposed",
        "2027Q1",
        "2027Q2",
        "2027Q3",
        20,
        "",
        40.0,
        0.1,
    ),
    (
        "c3",
        "Fab expansion",
        "semiconductors",
        "proposed",
        "2027Q3",
        "2027Q4",
        "2028Q1",
        10,
        "2030Q4",
        25.0,
        0.3,
    ),
    (
        "c4",
        "API plant",
        "pharmaceuticals",
        "proposed",
        "2028Q2",
        "2028Q2",
        "2028Q3",
        6,
        "2030Q2",
        8.0,
        0.05,
    ),
    (
        "c5",
        "Shipyard",
        "shipbuilding",
        "proposed",
        "2028Q4",
        "2029Q1",
        "2029Q1",
        12,
        "2032Q2",
        15.0,
        0.4,
    ),
)
QUARTERS = [f"{y}Q{q}" for y in range(2026, 2030) for q in range(1, 5)][:13]  # 2026Q1-2029Q1


def write_plan(folder: Path, target_usd: float = 5.5e11) -> dict[str, Any]:
    """Write ``plan.csv`` and ``metrics.json["plan"]`` into a synthetic run folder (a test
    fixture: made-up projects whose figures are consistent with each other); return the plan."""
    synthetic_folder(folder)
    rows = pd.DataFrame(
        PROPOSALS,
        columns=[
            "project",
            "name",
            "sector",
            "status",
            "proposal_quarter",
            "funding_quarter",
            "construction_start",
            "build_quarters",
            "expected_completion",
            "fund_b",
            "decline_prob",
        ],
    )
    rows.insert(3, "basis", "illustrative")
    rows["fund_usd"] = rows.pop("fund_b") * 1e9
    rows["expected_committed_usd"] = rows["fund_usd"] * (1 - rows["decline_prob"])
    rows["expected_recovery"] = [0.94, 0.9, 1.05, 0.8, 0.97, 1.2, 0.7]
    rows["p_recoup"] = [0.4, 0.3, 0.6, 0.2, 0.45, 0.8, 0.1]
    rows["marginal_value"] = ""
    rows["reason"] = ""
    order = ["proposal_quarter", "project"]
    cols = [
        "project",
        "name",
        "sector",
        "basis",
        "status",
        "proposal_quarter",
        "funding_quarter",
        "construction_start",
        "build_quarters",
        "expected_completion",
        "fund_usd",
        "decline_prob",
        "expected_committed_usd",
        "expected_recovery",
        "p_recoup",
        "marginal_value",
        "reason",
    ]
    write_table(rows.sort_values(order)[cols], folder, PLAN_FILE)
    rounds, cumulative = [], 0.0
    for quarter in QUARTERS:
        part = rows[rows["proposal_quarter"] == quarter]
        cumulative += float(part["expected_committed_usd"].sum())
        rounds.append(
            {
                "quarter": quarter,
                "proposals": len(part),
                "capacity": None if quarter == "2026Q1" else 8,
                "proposed_usd": float(part["fund_usd"].sum()),
                "committed_expected_usd": float(part["expected_committed_usd"].sum()),
                "cumulative_committed_usd": cumulative,
            }
        )
    committed = float(rows["expected_committed_usd"].sum())
    proposed = float(rows["fund_usd"].sum())
    plan = {
        "first_quarter": "2027Q1",
        "last_proposal_quarter": "2028Q4",
        "deadline": DEADLINE,
        "review_business_days": 45,
        "review_capacity_per_window": 8,
        "target_usd": target_usd,
        "target_kind": "soft",
        "proposed_usd": proposed,
        "committed_expected_usd": committed,
        "committed_p10_usd": 0.9 * committed,
        "committed_p90_usd": 1.05 * committed,
        "pipeline_reserve_usd": proposed - committed,
        "deployment_gap_usd": max(0.0, target_usd - committed),
        "coverage": 0.41,
        "coverage_without_declines": 0.45,
        "coverage_lost_to_declines": 0.04,
        "rounds": rounds,
        "funding_years": [
            {"year": 2026, "committed_expected_usd": 36e9, "capacity_usd": None},
            {"year": 2027, "committed_expected_usd": 45.6e9, "capacity_usd": 1.5e11},
        ],
        "sectors": [
            {"sector": "energy", "planned_usd": 69e9, "pipeline_usd": 80e9, "short": True},
            {
                "sector": "critical_minerals",
                "planned_usd": 15e9,
                "pipeline_usd": 16e9,
                "short": True,
            },
            {"sector": "semiconductors", "planned_usd": 25e9, "pipeline_usd": 90e9, "short": False},
        ],
        "gap_reasons": ["The sector cap holds energy at 70% of the capital."],
        "declines": {
            "enabled": True,
            "basis": "illustrative",
            "expected_declined": proposed - committed,
        },
    }
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["plan"] = plan
    (folder / "metrics.json").write_text(json.dumps(conform_metrics(metrics)))
    return metrics["plan"]


@pytest.fixture
def gap_folder(tmp_path: Path) -> Path:
    write_plan(tmp_path / "gap")
    return tmp_path / "gap"


@pytest.fixture
def met_folder(tmp_path: Path) -> Path:
    write_plan(tmp_path / "met", target_usd=1e11)
    return tmp_path / "met"


def _figure(page: str, key: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The data and layout of chart ``key`` as the page hands them to Plotly.newPlot."""
    decoder = json.JSONDecoder()
    at = page.index(f'"plot-{key}",') + len(f'"plot-{key}",')
    data, at = decoder.raw_decode(page, re.compile(r"\s*").match(page, at).end())
    layout, _ = decoder.raw_decode(page, re.compile(r"\s*,\s*").match(page, at).end())
    return data, layout


def _values(value: Any) -> list[Any]:
    """A trace's array as a list: Plotly writes NumPy arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def _section(page: str, key: str) -> str:
    start = page.index(f'<section id="{key}">')
    return page[start : page.index("</section>", start)]


def test_calendar_has_one_row_per_proposal(gap_folder: Path) -> None:
    page = write_report(gap_folder).read_text()
    data, layout = _figure(page, "plan-calendar")
    rows = layout["yaxis"]["categoryarray"]
    assert len(rows) == len(set(rows)) == len(PROPOSALS)
    bars = [y for trace in data if trace["type"] == "bar" for y in _values(trace["y"])]
    assert sorted(bars) == sorted(rows * 2)  # a review and a construction segment each
    stars = [t for t in data if t["name"] == "already committed"]
    assert _values(stars[0]["y"]) == [r for r in rows if r.endswith("committed")]
    assert [r for r in rows if r.endswith("committed")] == [
        "Ohio gas plant [t1] · committed",
        "Diamond grit <plant> [t2] · committed",
    ]
    table = page[page.index('<table id="plan-proposals"') :]
    table = table[: table.index("</table>")]
    assert re.findall(r'<tr><td data-sort="(\d{4}Q\d)">', table) == [p[4] for p in PROPOSALS]
    assert "Diamond grit &lt;plant&gt;" in table  # names are escaped
    # Rare-earth magnets: construction from 2027Q3 to its expected completion, 2029Q3
    construction = [t for t in data if "construction" in t["hovertemplate"]]
    starts = {
        y: (b, w)
        for t in construction
        for y, b, w in zip(_values(t["y"]), _values(t["base"]), _values(t["x"]), strict=True)
    }
    base, width = starts["Rare-earth magnets [c1]"]
    assert base == quarter_index("2027Q3", "2000Q1") and width == 8
    # the BWRX fails in most scenarios: its planned 20-quarter build is drawn, hatched
    assert starts["BWRX-300, Tennessee [c2]"][1] == 20


def test_deadline_line_on_both_charts(gap_folder: Path) -> None:
    page = write_report(gap_folder).read_text()
    x = deadline_position(DEADLINE)
    assert quarter_index("2029Q1", "2000Q1") < x < quarter_index("2029Q2", "2000Q1")
    for key in ("plan-calendar", "plan-deployment"):
        _, layout = _figure(page, key)
        lines = [s for s in layout["shapes"] if s.get("name") == "deadline"]
        assert len(lines) == 1 and lines[0]["x0"] == lines[0]["x1"] == pytest.approx(x)


def test_curve_ends_at_the_committed_figure(gap_folder: Path) -> None:
    plan = json.loads((gap_folder / "metrics.json").read_text())["plan"]
    data, layout = _figure(write_report(gap_folder).read_text(), "plan-deployment")
    traces = {t["name"]: t for t in data}
    curve = traces["expected committed, cumulative"]
    assert _values(curve["y"])[-1] == pytest.approx(plan["committed_expected_usd"] / 1e9)
    assert _values(traces["proposed, cumulative"]["y"])[-1] == pytest.approx(
        plan["proposed_usd"] / 1e9
    )
    whisker = traces["committed by the deadline (P10–P90)"]
    low = _values(whisker["y"])[0] - _values(whisker["error_y"]["arrayminus"])[0]
    assert low == pytest.approx(plan["committed_p10_usd"] / 1e9)
    target = [s for s in layout["shapes"] if s.get("name") == "target"]
    assert target[0]["y0"] == pytest.approx(550.0)


def test_gap_names_the_short_sectors(gap_folder: Path) -> None:
    plan = json.loads((gap_folder / "metrics.json").read_text())["plan"]
    gap = _section(write_report(gap_folder).read_text(), "plan-gap")
    assert "The deployment gap" in gap
    assert f"${plan['deployment_gap_usd'] / 1e9:,.1f}B" in gap
    assert "The pipeline is short in: energy, critical minerals." in gap
    assert "The sector cap holds energy at 70% of the capital." in gap
    table = gap[gap.index('id="plan-sectors"') :]
    assert table.count("<tr>") == 1 + len(plan["sectors"])
    assert table.count(">short</td>") == 2
    # each binding rule with its price beside it (the LP dual, in coverage points)
    assert "<li>capital (budget): +1.00 coverage points per extra $10B of budget</li>" in gap


def test_gap_says_the_target_is_met(met_folder: Path) -> None:
    page = write_report(met_folder).read_text()
    gap = _section(page, "plan-gap")
    assert "The target is met" in gap
    assert "short in" not in gap and "short of" not in gap
    assert "reaching the $100.0B target" in _section(page, "headline")


def test_the_page_leads_with_the_plan(gap_folder: Path) -> None:
    plan = json.loads((gap_folder / "metrics.json").read_text())["plan"]
    page = write_report(gap_folder).read_text()
    keys = ("headline", "plan-gap", "plan-calendar", "portfolio", "marginal")
    order = [page.index(f'<section id="{k}">') for k in keys]
    assert order == sorted(order)  # the gap and its prices right under the headline
    headline = _section(page, "headline")
    sentence = headline[headline.index('id="plan-headline"') :]
    for figure in (
        f"${plan['committed_expected_usd'] / 1e9:,.1f}B expected committed",
        "19 January 2029",
        f"from {len(PROPOSALS)} proposals: 2 already committed and 5 new ones in 4 of the 8"
        " open review rounds (2027Q1 to 2028Q4)",
        f"pipeline reserve of ${plan['pipeline_reserve_usd'] / 1e9:,.1f}B",
        "4.0 points lost to declines",
    ):
        assert figure in sentence
    assert "<plant>" not in page  # a name never reaches the page as markup
    rounds = _section(page, "plan-rounds")
    # the committed round and the eight open ones; no empty quarter before or after them
    assert rounds.count("<tr>") == 1 + 1 + 8 + 1 + len(plan["funding_years"])
    assert ">2 committed<" in rounds and ">2 of 8<" in rounds and ">2029Q1<" not in rounds
    assert ">JFY2027<" in rounds and "Expected disbursements" in rounds


def test_the_page_stays_self_contained(gap_folder: Path) -> None:
    page = write_report(gap_folder).read_text()
    assert len(re.findall(r"<script[^>]*>\s*/\*\*\s*\n?\s*\*\s*plotly\.js", page)) == 1
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert "@import" not in page and "https://" not in page.split("</head>")[1]


def test_an_undefined_recovery_is_shown_as_a_dash(gap_folder: Path) -> None:
    path = gap_folder / PLAN_FILE
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    table.loc[0, "expected_recovery_ratio"] = ""
    table.to_csv(path, index=False)
    page = write_report(gap_folder).read_text()
    first = page[page.index('<table id="plan-proposals"') :].split("</tr>")[1]
    assert first.endswith('<td data-sort="0.0">–</td>')


def test_without_a_plan_the_page_has_no_plan_sections(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    write_plan(folder)
    (folder / PLAN_FILE).unlink()
    page = write_report(folder).read_text()
    assert '<section id="portfolio">' in page
    assert 'id="plan-' not in page


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda t: t.drop(columns="funding_quarter"), "column 'funding_quarter': missing column"),
        (
            lambda t: t.assign(proposal_quarter=["2027-1"] * len(t)),
            "row 2, column 'proposal_quarter'",
        ),
        (lambda t: t.assign(fund_usd=["lots"] * len(t)), "row 3, column 'fund_usd': 'lots' is not"),
        (lambda t: t.assign(fund_usd=[""] * len(t)), "row 2, column 'fund_usd': '' is not"),
    ],
)
def test_a_malformed_plan_names_file_row_and_column(
    gap_folder: Path, edit: Any, where: str
) -> None:
    path = gap_folder / PLAN_FILE
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    edit(table).to_csv(path, index=False)
    with pytest.raises(InputError) as caught:
        read_plan(gap_folder)
    assert f"{path}" in str(caught.value) and where in str(caught.value)
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_a_malformed_plan_names_every_problem_at_once(gap_folder: Path) -> None:
    """A bad number and a bad quarter label: one error names both."""
    path = gap_folder / PLAN_FILE
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    table.assign(fund_usd=["lots"] * len(table), proposal_quarter=["2027-1"] * len(table)).to_csv(
        path, index=False
    )
    with pytest.raises(InputError) as caught:
        read_plan(gap_folder)
    said = str(caught.value)
    assert "row 2, column 'fund_usd': 'lots' is not" in said
    assert "row 2, column 'proposal_quarter'" in said


@pytest.mark.browser
def test_plan_charts_render_in_chromium(browser: Any, gap_folder: Path) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By

    report = write_report(gap_folder)
    browser.get(report.resolve().as_uri())
    browser.execute_script("return document.readyState")
    severe = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == []
    for key in ("plan-calendar", "plan-deployment"):
        chart = browser.find_element(By.CSS_SELECTOR, f"div.chart#chart-{key}")
        assert chart.find_elements(By.CSS_SELECTOR, ".main-svg"), f"{key} has no plot"
        browser.execute_script("arguments[0].scrollIntoView();", chart)
        image = Image.open(io.BytesIO(chart.screenshot_as_png)).convert("RGB")
        colours = image.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > MIN_COLOURS, f"{key} looks blank"
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-plan-calendar .yaxislayer-above text")
    assert len(bars) == len(PROPOSALS)


def test_the_floors_and_the_us_support_the_plan_counts_on(gap_folder: Path) -> None:
    path = gap_folder / "metrics.json"
    metrics = json.loads(path.read_text())
    assert 'id="plan-support"' not in write_report(gap_folder).read_text()  # neither: none
    metrics["offtake_floors"] = {
        "projects": [
            {"project_id": "a", "guarantor": "DoD", "cost_expected_usd": 1.4e8},
            {"project_id": "b", "guarantor": "utilities", "cost_expected_usd": 2.6e9},
            {"project_id": "c", "guarantor": "DoD", "cost_expected_usd": 1.0e8},
        ],
        "by_guarantor": {"DoD": 2.4e8, "utilities": 2.6e9},
        "total_usd": 2.84e9,
    }
    metrics["support"] = {
        "projects": [
            {
                "project": "a",
                "capex_reduction": 0.0,
                "delay_reduction_quarters": 0.0,
                "price_floor": 1.3,
                "price_floor_share": 1.0,
                "price_floor_years": 10.0,
                "proposed": True,
                "capex_cost_expected_usd": 0.0,
                "floor_cost_expected_usd": 1.4e8,
            }
        ],
        "cost_expected_usd": 1.4e8,
    }
    path.write_text(json.dumps(metrics))
    section = _section(write_report(gap_folder).read_text(), "plan-support")
    assert "expected to pay $2.8B above market prices" in section
    table = section[section.index('id="plan-offtake-floors"') :]
    assert table.index("utilities") < table.index("DoD")  # the largest payer first
    assert '<td data-sort="2">2</td><td data-sort="a">a</td>' in table  # DoD: a and c
    assert (
        "a (proposed): a price floor of 1.3 on 100% of the output for 10 years;"
        " expected cost $0.1B" in section
    )
