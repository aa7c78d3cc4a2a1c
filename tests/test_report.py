"""The decision report: a self-contained page, and the real page in headless Chromium.

The browser tests open the report of the default run (shared with tests/test_run.py, run once
per session). They skip only when Chromium is missing and ``CI`` is unset: in CI a missing
browser is a failure (`.ci/run` installs Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _runs import default_run, read_allocation, synthetic_folder

from portopt.report import write_report

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
