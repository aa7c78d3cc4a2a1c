"""The decision report: a self-contained page, and the real page in headless Chromium.

The browser tests open the report of the default run (shared with tests/test_run.py, run once
per session). They skip only when Chromium is missing and ``CI`` is unset: in CI a missing
browser is a failure (`.ci/run` installs Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _runs import default_run, read_allocation, synthetic_folder

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.evaluate import Aggregates, committed_mask, portfolio_figures, tranche_alone
from portopt.outputs import write_json
from portopt.report import BASIS_MARKS, TRANCHE_MARK, write_report

__all__ = ["default_run"]  # a fixture, imported so pytest finds it here

CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
MIN_CHARTS = 5
MIN_COLOURS = 16
"""A rendered chart has axes, text, bars and lines in many shades; a blank one has one or two."""


# ---------------------------------------------------------------- the page itself (no browser)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return synthetic_folder(tmp_path / "run")


def test_page_is_self_contained(folder: Path) -> None:
    page = write_report(folder).read_text()
    assert page.count("plotly.js v") >= 1
    assert len(re.findall(r"<script[^>]*>\s*/\*\*\s*\n?\s*\*\s*plotly\.js", page)) == 1
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert "@import" not in page and "fonts.googleapis" not in page


def test_page_has_the_sections_and_charts(folder: Path) -> None:
    page = write_report(folder).read_text()
    for section in (
        "headline",
        "portfolio",
        "sectors",
        "coverage",
        "recovery",
        "cash",
        "binding",
        "details",
    ):
        assert f'<section id="{section}">' in page
    assert page.count('<div class="chart"') >= MIN_CHARTS
    assert 'id="robustness"' not in page
    assert "Project 1, phase &lt;1&gt;" in page  # names are escaped
    assert "The budget is fully used" in page  # a binding row says its own meaning


def test_core_indices_render_when_given(folder: Path) -> None:
    allocation = read_allocation(folder)
    core = pd.DataFrame({"id": allocation["id"], "core_index": 0.5, "ci_low": 0.4, "ci_high": 0.6})
    page = write_report(folder, core_indices=core).read_text()
    assert '<section id="robustness">' in page
    assert 'id="chart-robustness"' in page
    table = page[page.index('id="core-indices"') :]
    assert table[: table.index("</table>")].count("<tr>") == len(core) + 1


def test_selected_projects_table_lists_exactly_the_selected(folder: Path) -> None:
    allocation = read_allocation(folder)
    page = write_report(folder).read_text()
    table = page[page.index('<table id="projects"') :]
    table = table[: table.index("</table>")]
    ids = re.findall(r'<tr><td data-sort="([^"]+)">', table)
    assert sorted(ids) == sorted(allocation.loc[allocation["selected"], "id"])


def _explained(folder: Path) -> Path:
    """The synthetic folder with the metrics of a catalog that has a basis column, a committed
    tranche and two low-coverage chokepoints (one no candidate serves, one whose candidate
    was left out)."""
    allocation = read_allocation(folder)
    chosen = allocation.loc[allocation["selected"], "id"].tolist()
    metrics = json.loads((folder / "metrics.json").read_text())
    funded = allocation.set_index("id")["fund_usd"]
    parts = {"fact": chosen[:2], "estimate": chosen[2:5], "illustrative": chosen[5:]}
    total = float(funded[chosen].sum())
    metrics["capital_by_basis"] = {
        b: {
            "usd": float(funded[ids].sum()),
            "share": float(funded[ids].sum()) / total,
            "projects": ids,
        }
        for b, ids in parts.items()
    }
    figures = {
        "capital_usd": 3.6e10,
        "coverage": {"mean": 0.05, "p10": 0.03, "p50": 0.05, "p90": 0.07},
        "recovery_ratio": {"mean": 0.94, "p10": 0.7, "p50": 0.95, "p90": 1.1},
        "p_recoup": 0.46,
        "shortfall_cvar_0.95_share": 0.61,
    }
    metrics["tranche_alone"] = {
        "projects": chosen[:2],
        **figures,
        "plan_minus_tranche": {
            "capital_usd": metrics["capital_committed_usd"] - 3.6e10,
            "coverage": 0.55,
            "recovery_ratio": 0.14,
            "p_recoup": 0.22,
            "shortfall_cvar_0.95_share": -0.29,
        },
    }
    out = allocation.loc[~allocation["selected"], "id"].iloc[0]
    metrics["chokepoint_explanations"] = [
        {
            "id": "c0",
            "name": "Chokepoint 0",
            "weight": 2.0,
            "expected_coverage": 0.0,
            "verdict": "no_capacity",
            "selected": [],
            "rejected": [],
        },
        {
            "id": "c1",
            "name": "Chokepoint 1",
            "weight": 1.0,
            "expected_coverage": 0.02,
            "verdict": "rejected",
            "selected": [],
            "rejected": [
                {
                    "id": out,
                    "name": "Left <out>",
                    "reason": "forced in, no portfolio"
                    " satisfies sector_shares: that rule alone keeps it out",
                }
            ],
        },
    ]
    metrics["low_coverage_threshold"] = 0.1
    write_json(metrics, folder / "metrics.json")
    return folder


def test_projects_carry_their_basis_and_tranche_marks(folder: Path) -> None:
    page = write_report(_explained(folder)).read_text()
    metrics = json.loads((folder / "metrics.json").read_text())
    table = page[page.index('<table id="projects"') :]
    table = table[: table.index("</table>")]
    for basis, part in metrics["capital_by_basis"].items():
        for pid in part["projects"]:
            row = table[table.index(f'<tr><td data-sort="{pid}">') :]
            row = row[: row.index("</tr>")]
            assert BASIS_MARKS[basis] in row
            assert (TRANCHE_MARK in row) == (pid in metrics["tranche_alone"]["projects"])
    share = metrics["capital_by_basis"]["illustrative"]["share"]
    note = page[page.index('id="basis-note"') :]
    assert f"Of the capital committed, {100 * share:.0f}%" in note[: note.index("</p>")]


def test_plan_is_compared_with_the_tranche_alone(folder: Path) -> None:
    page = write_report(_explained(folder)).read_text()
    table = page[page.index('<table id="tranche-vs-plan"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 6  # the header and five figures
    assert "$36.0B" in table and "5.0%" in table and "+55.0 points" in table
    assert "0.94" in table and "+0.14" in table and "61.0%" in table


def test_low_coverage_chokepoints_are_explained(folder: Path) -> None:
    page = write_report(_explained(folder)).read_text()
    table = page[page.index('<table id="chokepoint-explanations"') :]
    table = table[: table.index("</table>")]
    assert 'data-verdict="no_capacity"' in table and "No candidate" in table
    assert 'data-verdict="rejected"' in table
    assert "Left &lt;out&gt;" in table and "sector_shares" in table


@pytest.mark.slow
def test_the_tranche_alone_is_its_own_sub_portfolio() -> None:
    """The tranche's figures, folded in beside the plan's, equal an evaluation of the
    committed projects alone on the same scenarios."""
    catalog = load_catalog(None)
    config = load_config(None, {"scenarios": {"optimisation": 10}})
    scenarios = generate_scenarios(catalog, config, "numpy", scenarios=range(10, 110))
    committed = committed_mask(catalog)
    assert committed.sum() == 3
    cost = catalog.projects["base_cost_usd"].to_numpy(dtype=float)
    y = committed | (np.arange(len(committed)) % 5 == 0)
    f = np.where(y, 0.5 * cost, 0.0)
    f[committed] = cost[committed]
    agg = Aggregates(catalog, y.astype(float), f, scenarios.n)
    agg.add(scenarios)
    plan = portfolio_figures(catalog, config, scenarios, y.astype(float), f)
    got = tranche_alone(config, agg, plan)
    want = portfolio_figures(catalog, config, scenarios, committed.astype(float), f * committed)
    assert got["projects"] == [i for i, c in zip(catalog.project_ids, committed, strict=True) if c]
    assert got["capital_usd"] == pytest.approx(want["capital_usd"])
    for key in ("coverage", "recovery_ratio"):
        assert got[key]["mean"] == pytest.approx(want[key]["mean"], rel=1e-9)
    assert got["p_recoup"] == want["p_recoup"]
    cvar = "shortfall_cvar_0.95_share"
    assert got[cvar] == pytest.approx(want[cvar], rel=1e-9)
    assert got["plan_minus_tranche"]["coverage"] == pytest.approx(
        plan["coverage"]["mean"] - want["coverage"]["mean"]
    )


# ---------------------------------------------------------------- the real page in Chromium


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    found = _chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI is set but chromium/chromedriver are missing: apt-get install -y"
                " chromium chromium-driver"
            )
        pytest.skip("chromium and chromedriver not installed (CI unset)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="portopt-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def opened(browser: Any, default_run: Any) -> tuple[Any, Path, list[dict[str, Any]]]:
    """The default run's report loaded in the browser, with the console log of the load."""
    report = default_run.out_dir / "report.html"
    browser.get(report.resolve().as_uri())
    browser.execute_script("return document.readyState")
    return browser, default_run.out_dir, browser.get_log("browser")


@pytest.mark.browser
def test_no_console_errors(opened: tuple[Any, Path, list[dict[str, Any]]]) -> None:
    driver, _, log = opened
    severe = [entry for entry in log + driver.get_log("browser") if entry.get("level") == "SEVERE"]
    assert severe == []


@pytest.mark.browser
def test_nothing_is_fetched_from_the_network(opened: tuple[Any, Path, Any]) -> None:
    driver, _, _ = opened
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
    )
    assert [n for n in names if not n.startswith(("file:", "data:", "blob:"))] == []


@pytest.mark.browser
def test_every_chart_rendered(opened: tuple[Any, Path, Any]) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By

    driver, _, _ = opened
    charts = driver.find_elements(By.CSS_SELECTOR, "div.chart")
    assert len(charts) >= MIN_CHARTS
    for chart in charts:
        name = chart.get_attribute("id")
        assert chart.find_elements(By.CSS_SELECTOR, ".main-svg"), f"{name} has no plot"
        driver.execute_script("arguments[0].scrollIntoView();", chart)
        image = Image.open(io.BytesIO(chart.screenshot_as_png)).convert("RGB")
        colours = image.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > MIN_COLOURS, f"{name} looks blank"
        assert image.size[0] > 200 and image.size[1] > 200, f"{name} is too small"


@pytest.mark.browser
def test_table_holds_every_selected_project(opened: tuple[Any, Path, Any]) -> None:
    from selenium.webdriver.common.by import By

    driver, out_dir, _ = opened
    allocation = read_allocation(out_dir)
    rows = driver.find_elements(By.CSS_SELECTOR, "table#projects tbody tr")
    shown = {r.find_elements(By.TAG_NAME, "td")[0].text for r in rows}
    assert shown == set(allocation.loc[allocation["selected"], "id"])
    assert len(rows) == int(allocation["selected"].sum())


@pytest.mark.browser
def test_table_sorts_on_header_click(opened: tuple[Any, Path, Any]) -> None:
    from selenium.webdriver.common.by import By

    driver, _, _ = opened

    def column(j: int) -> list[float]:
        return [
            float(r.find_elements(By.TAG_NAME, "td")[j].get_attribute("data-sort"))
            for r in driver.find_elements(By.CSS_SELECTOR, "table#projects tbody tr")
        ]

    header = driver.find_elements(By.CSS_SELECTOR, "table#projects th")[3]  # fund money
    driver.execute_script("arguments[0].scrollIntoView();", header)
    header.click()
    assert column(3) == sorted(column(3))
    header.click()
    assert column(3) == sorted(column(3), reverse=True)


@pytest.mark.browser
def test_basis_marks_tranche_and_chokepoints_in_the_browser(
    opened: tuple[Any, Path, Any],
) -> None:
    """The default run's page shows each selected project's basis mark, the committed tranche
    marked and compared with the plan, and why each low-coverage chokepoint is so."""
    from selenium.webdriver.common.by import By

    driver, out_dir, _ = opened
    metrics = json.loads((out_dir / "metrics.json").read_text())
    basis = {pid: b for b, part in metrics["capital_by_basis"].items() for pid in part["projects"]}
    tranche = set(metrics["tranche_alone"]["projects"])
    assert tranche
    rows = driver.find_elements(By.CSS_SELECTOR, "table#projects tbody tr")
    for row in rows:
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        assert " ".join(cells[-2].split()) == BASIS_MARKS[basis[cells[0]]]
        assert (cells[-1].split() == TRANCHE_MARK.split()) == (cells[0] in tranche)
    note = driver.find_element(By.ID, "basis-note").text
    share = metrics["capital_by_basis"].get("illustrative", {"share": 0.0})["share"]
    assert f"{100 * share:.0f}%" in note
    comparison = driver.find_elements(By.CSS_SELECTOR, "table#tranche-vs-plan tbody tr")
    assert len(comparison) == 5
    capital = comparison[0].find_elements(By.TAG_NAME, "td")
    assert capital[2].text == f"${metrics['tranche_alone']['capital_usd'] / 1e9:,.1f}B"
    explained = driver.find_elements(By.CSS_SELECTOR, "table#chokepoint-explanations tbody tr")
    items = metrics["chokepoint_explanations"]
    assert len(explained) == len(items) and items  # the default plan leaves gaps open
    for row, item in zip(explained, items, strict=True):
        assert row.get_attribute("data-verdict") == item["verdict"]
        text = row.text
        assert item["name"] in text
        for rejected in item["rejected"]:
            assert rejected["id"] in text


def test_each_low_coverage_chokepoint_gets_its_verdict() -> None:
    """run.py's chokepoint explanations: no capacity, candidates all left out (each with its
    reason), or chosen projects that fill little; well-covered chokepoints are not listed."""
    import dataclasses
    from types import SimpleNamespace

    from portopt.pipeline import LOW_COVERAGE, explanations

    catalog = load_catalog(None)
    capacity = catalog.capacity.copy()
    empty, rejected, chosen_k, covered = capacity.columns[:4]
    capacity[empty] = 0.0
    catalog = dataclasses.replace(catalog, capacity=capacity)
    has = {k: capacity.index[capacity[k] > 0].tolist() for k in capacity.columns}
    chosen = set(has[chosen_k][:1]) | {i for i in has[covered]}
    chosen -= set(has[rejected])
    assert has[rejected] and chosen & set(has[chosen_k])
    ids = catalog.project_ids
    allocation = pd.DataFrame({"id": ids, "name": ids, "selected": [i in chosen for i in ids]})
    coverage = pd.DataFrame(
        {
            "id": catalog.chokepoint_ids,
            "name": catalog.chokepoint_ids,
            "weight": 1.0,
            "expected_coverage": [
                0.5 if k == covered else 0.0 if k in (empty, rejected) else LOW_COVERAGE / 2
                for k in catalog.chokepoint_ids
            ],
        }
    )
    marginal = {"marginal_values": [{"project_id": i, "reason": f"why {i}"} for i in ids]}
    evaluation = SimpleNamespace(allocation=allocation, coverage=coverage)
    explained = explanations(catalog, evaluation, marginal)["chokepoint_explanations"]
    got = {c["id"]: c for c in explained}
    assert covered not in got
    assert got[empty]["verdict"] == "no_capacity" and got[empty]["rejected"] == []
    assert got[rejected]["verdict"] == "rejected"
    assert [r["id"] for r in got[rejected]["rejected"]] == has[rejected]
    assert all(r["reason"] == f"why {r['id']}" for r in got[rejected]["rejected"])
    assert got[chosen_k]["verdict"] == "selected_fill_little"
    assert set(got[chosen_k]["selected"]) == chosen & set(has[chosen_k])
