"""The report's first chart: the plan frontier (``frontier.csv``, :mod:`portopt.tradeoff`).

Capital expected committed by the deadline (with its P10–P90) against Japan's expected
recovery, each point coloured by its coverage score, the configured plan and the fund's $550B
marked; a sentence names what the next $50B costs in recovery and in coverage; a table lists
every point with what its plan adds and drops against the point above it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from portopt.outputs import read_output_csv

FRONTIER_FILE = "frontier.csv"
NEXT_STEP_USD = 5e10
"""The step the headline sentence prices: the next $50B committed."""
NUMBER_COLUMNS = (
    "floor",
    "committed_expected_usd",
    "committed_p10_usd",
    "committed_p90_usd",
    "coverage",
    "expected_recovery",
)
OPTIONAL_NUMBERS = ("level_usd", "mip_gap", "objective", "p_recoup", "cvar_shortfall_share")
"""Columns read as numbers when present (blank: missing)."""
TEXT_COLUMNS = ("status", "configured", "adds", "drops", "binding")
SOLVED = ("optimal", "time_limit", "greedy")


def read_frontier(out_dir: str | Path) -> pd.DataFrame | None:
    """``out_dir/frontier.csv``, or None when the run wrote none. Raises :class:`InputError`
    naming the file and each missing column, or the row and column of each cell that is not a
    number (a point without a plan, infeasible, has its figures blank)."""
    path = Path(out_dir) / FRONTIER_FILE
    if not path.exists():
        return None
    table = read_output_csv(
        path, "a frontier", TEXT_COLUMNS, NUMBER_COLUMNS, NUMBER_COLUMNS, OPTIONAL_NUMBERS
    )
    table["configured"] = table["configured"].str.lower() == "true"
    return table


def solved(frontier: pd.DataFrame) -> pd.DataFrame:
    """The points with a plan, by capital."""
    ok = frontier[frontier["status"].isin(SOLVED)]
    return ok.sort_values(["committed_expected_usd", "floor"]).reset_index(drop=True)


def price_curve(frontier: pd.DataFrame) -> pd.DataFrame:
    """The points the price of capital is read from, by capital: the deployment levels (each
    the highest floor that admits it) and the configured plan; every solved point when the
    frontier has no level."""
    ok = solved(frontier)
    if "kind" in ok:
        levels = ok[(ok["kind"].astype(str) == "level") | ok["configured"]]
        if (levels["kind"].astype(str) == "level").any():
            ok = levels
    return ok.sort_values(["committed_expected_usd", "floor"], kind="stable")


def next_step(frontier: pd.DataFrame, step: float = NEXT_STEP_USD) -> dict[str, Any] | None:
    """What ``step`` more expected committed capital than the configured plan costs, read off
    :func:`price_curve` by linear interpolation between its points: ``capital``, ``recovery``
    and ``coverage`` at the configured point and at ``capital_next``. ``direction`` ``next``:
    at ``capital + step``; ``last`` when the frontier does not reach that far: at ``capital -
    step`` (the recovery deploying ``step`` less would buy). None when neither is on the
    frontier or it has no configured point."""
    ok = solved(frontier)
    conf = ok[ok["configured"]]
    if conf.empty or len(ok) < 2:
        return None
    c0 = float(conf["committed_expected_usd"].iloc[0])
    curve = price_curve(frontier)
    x = curve["committed_expected_usd"].to_numpy(float)
    if c0 + step <= x.max() + 1e-6:
        direction, at = "next", c0 + step
    elif c0 - step >= x.min() - 1e-6:
        direction, at = "last", c0 - step
    else:
        return None
    return {
        "direction": direction,
        "capital": c0,
        "recovery": float(conf["expected_recovery"].iloc[0]),
        "coverage": float(conf["coverage"].iloc[0]),
        "capital_next": at,
        "recovery_next": float(np.interp(at, x, curve["expected_recovery"].to_numpy(float))),
        "coverage_next": float(np.interp(at, x, curve["coverage"].to_numpy(float))),
        "most": float(ok["committed_expected_usd"].max()),
    }


def sentence(frontier: pd.DataFrame, usd_b: Any) -> str:
    """The headline's sentence on the trade-off: the price of the next $50B (or, where the
    frontier ends within $50B of the configured plan, of its last $50B) in Japan's expected
    recovery and in coverage."""
    ok = solved(frontier)
    if ok.empty:
        return "No point of the frontier has a plan."
    top = ok.iloc[-1]
    step = next_step(frontier)
    lowest = float(frontier["floor"].min())
    head = (
        f"Lowering Japan's expected-recovery floor to {lowest:.2f} lets the plan commit up to"
        f" {usd_b(top['committed_expected_usd'])} expected"
        f" (Japan's expected recovery {top['expected_recovery']:.2f})."
    )
    if step is None:
        return head + " The frontier does not reach $50B beyond the configured plan."
    d_rec = step["recovery_next"] - step["recovery"]
    d_cov = step["coverage_next"] - step["coverage"]
    if step["direction"] == "next":
        return head + (
            f" The next $50B beyond the configured plan's {usd_b(step['capital'])} costs"
            f" {abs(d_rec):.2f} of Japan's expected recovery ({step['recovery']:.2f} to"
            f" {step['recovery_next']:.2f}) and {'adds' if d_cov >= 0 else 'takes'}"
            f" {abs(100 * d_cov):.1f} points {'to' if d_cov >= 0 else 'from'} the coverage"
            " score (read off the frontier between its points)."
        )
    return head + (
        f" No plan, at any floor down to {lowest:.2f}, commits $50B more than the configured"
        f" plan's {usd_b(step['capital'])} (the most any point commits is"
        f" {usd_b(step['most'])}). Its last $50B costs"
        f" {abs(d_rec):.2f} of Japan's expected recovery (the highest a plan of"
        f" {usd_b(step['capital_next'])} reaches is {step['recovery_next']:.2f}, against"
        f" {step['recovery']:.2f}) and {'buys' if d_cov <= 0 else 'costs'}"
        f" {abs(100 * d_cov):.1f} points of the coverage score (read off the deployment"
        " levels between their points)."
    )


def _label(row: dict[str, Any]) -> str:
    if str(row.get("kind", "floor")) == "level":
        return f"${float(row['level_usd']) / 1e9:,.0f}B at {float(row['floor']):.2f}"
    return f"floor {float(row['floor']):.2f}"


def frontier_figure(frontier: pd.DataFrame, budget_usd: float | None) -> go.Figure:
    """Capital expected committed (P10–P90 whiskers) against Japan's expected recovery, the
    colour the coverage score; the configured plan circled, the budget a dashed line."""
    ok = solved(frontier)
    x = ok["committed_expected_usd"] / 1e9
    fig = go.Figure()
    fig.add_scatter(
        x=x,
        y=ok["expected_recovery"],
        mode="lines+markers+text",
        text=[_label(r) for r in ok.to_dict("records")],
        textposition="top right",
        textfont={"size": 10},
        line={"color": "#9aa3ad", "width": 1},
        marker={
            "size": 13,
            "color": ok["coverage"],
            "colorscale": "Viridis",
            "cmin": float(ok["coverage"].min()) if len(ok) else 0.0,
            "cmax": float(ok["coverage"].max()) if len(ok) else 1.0,
            "colorbar": {"title": {"text": "Coverage"}, "tickformat": ".0%"},
            "line": {"color": "#333", "width": 1},
        },
        error_x={
            "type": "data",
            "symmetric": False,
            "array": (ok["committed_p90_usd"] - ok["committed_expected_usd"]) / 1e9,
            "arrayminus": (ok["committed_expected_usd"] - ok["committed_p10_usd"]) / 1e9,
            "color": "#9aa3ad",
            "thickness": 1,
        },
        customdata=np.c_[
            ok["coverage"], ok["committed_p10_usd"] / 1e9, ok["committed_p90_usd"] / 1e9
        ],
        hovertemplate="$%{x:,.0f}B expected (P10–P90 $%{customdata[1]:,.0f}–"
        "%{customdata[2]:,.0f}B)<br>Japan's expected recovery %{y:.2f}"
        "<br>coverage %{customdata[0]:.1%}<extra>%{text}</extra>",
        name="plans",
        showlegend=False,
    )
    conf = ok[ok["configured"]]
    if not conf.empty:
        fig.add_scatter(
            x=conf["committed_expected_usd"] / 1e9,
            y=conf["expected_recovery"],
            mode="markers",
            marker={"size": 24, "color": "rgba(0,0,0,0)", "line": {"color": "#bc002d", "width": 3}},
            name="the configured plan",
            hoverinfo="skip",
        )
    if budget_usd:
        fig.add_vline(
            x=budget_usd / 1e9,
            line={"color": "#bc002d", "dash": "dash", "width": 1},
            annotation_text=f"${budget_usd / 1e9:,.0f}B fund",
            annotation_position="top left",
        )
    fig.update_layout(
        xaxis_title="Capital expected committed by the deadline ($B, P10–P90 whiskers)",
        yaxis_title="Japan's expected recovery (PV receipts / PV draws)",
        xaxis={"rangemode": "tozero", "tickprefix": "$", "ticksuffix": "B"},
        height=460,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def frontier_section(frontier: pd.DataFrame, metrics: dict[str, Any], kit: Any) -> str:
    """The report's frontier section (``kit``: :class:`portopt.report_plan.Kit`)."""
    budget = metrics.get("budget_usd")
    rows = []
    for r in frontier.itertuples(index=False):
        ok = r.status in SOLVED
        level = str(getattr(r, "kind", "floor")) == "level"
        what = f" (the highest for ≥ {kit.usd_b(float(r.level_usd))})" if level else ""
        rows.append(
            [
                (f"{r.floor:.2f}" + (" (configured)" if r.configured else "") + what, r.floor),
                r.status,
                (kit.usd_b(r.committed_expected_usd) if ok else "–", r.committed_expected_usd),
                (
                    f"{kit.usd_b(r.committed_p10_usd)}–{kit.usd_b(r.committed_p90_usd)}"
                    if ok
                    else "–",
                    r.committed_p10_usd,
                ),
                (f"{r.expected_recovery:.2f}" if ok else "–", r.expected_recovery),
                (kit.pct(r.coverage, 1) if ok else "–", r.coverage),
                str(r.adds).replace(";", ", "),
                str(r.drops).replace(";", ", "),
            ]
        )
    table = kit.table(
        "frontier",
        [
            ("Recovery floor", "num"),
            ("Solve", "text"),
            ("Capital expected", "num"),
            ("P10–P90", "num"),
            ("Japan's expected recovery", "num"),
            ("Coverage", "num"),
            ("Adds", "text"),
            ("Drops", "text"),
        ],
        rows,
    )
    return kit.section(
        "frontier",
        "The trade-off: capital committed against Japan's recovery",
        sentence(frontier, kit.usd_b)
        + " Each point is the plan of highest coverage at one expected-recovery floor (the"
        " configured plan circled), on the optimisation scenarios with Japan's declines; the"
        " colour is its coverage score, the whiskers the P10–P90 of the capital committed."
        " Adds and drops are against the plan of the next higher floor; below them, each"
        " deployment level (every $50B of expected committed capital from the committed"
        " tranche to the most any plan reaches) at the highest floor (0.01 steps) that admits"
        " it, its plan the one of highest coverage there, adds and drops against the level"
        " below.",
        with_points(
            kit.chart("frontier", frontier_figure(frontier, budget)), len(solved(frontier))
        ),
        # folded: the page a committee reads stays short (the chart above carries the points)
        kit.fold(f"The {len(rows)} points, each with what it adds and drops", table),
    )


def with_points(chart: str, points: int) -> str:
    """The chart's container (``<div class="chart" ...>``) with ``data-points``: how many plans
    the chart plots (a stable count for the page's readers and tests, beside Plotly's own)."""
    at = chart.index(">")  # the end of the container's opening tag
    return f'{chart[:at]} data-points="{points}"{chart[at:]}'


__all__ = [
    "FRONTIER_FILE",
    "frontier_figure",
    "frontier_section",
    "next_step",
    "read_frontier",
    "sentence",
]
