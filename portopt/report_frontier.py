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

from portopt.errors import InputError, Problem

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
TEXT_COLUMNS = ("status", "configured", "adds", "drops", "binding")
SOLVED = ("optimal", "time_limit", "greedy")


def read_frontier(out_dir: str | Path) -> pd.DataFrame | None:
    """``out_dir/frontier.csv``, or None when the run wrote none. Raises :class:`InputError`
    naming the file and each missing column."""
    path = Path(out_dir) / FRONTIER_FILE
    if not path.exists():
        return None
    table = pd.read_csv(path, keep_default_na=False, dtype=dict.fromkeys(TEXT_COLUMNS, str))
    missing = [c for c in (*NUMBER_COLUMNS, *TEXT_COLUMNS) if c not in table.columns]
    if missing:
        raise InputError(
            [Problem(str(path), None, c, "missing column") for c in missing],
            f"{path} is not a frontier written by portopt",
        )
    for column in NUMBER_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["configured"] = table["configured"].str.lower() == "true"
    return table


def solved(frontier: pd.DataFrame) -> pd.DataFrame:
    """The points with a plan, by capital."""
    ok = frontier[frontier["status"].isin(SOLVED)]
    return ok.sort_values(["committed_expected_usd", "floor"]).reset_index(drop=True)


def next_step(frontier: pd.DataFrame, step: float = NEXT_STEP_USD) -> dict[str, float] | None:
    """What the next ``step`` of expected committed capital beyond the configured plan costs,
    read off the frontier by linear interpolation between its points (ordered by capital):
    ``capital``, ``recovery`` and ``coverage`` at the configured point and at ``capital +
    step``; None when the frontier does not reach that far or has no configured point."""
    ok = solved(frontier)
    conf = ok[ok["configured"]]
    if conf.empty or len(ok) < 2:
        return None
    c0 = float(conf["committed_expected_usd"].iloc[0])
    x = ok["committed_expected_usd"].to_numpy(float)
    if c0 + step > x.max() + 1e-6:
        return None
    # the frontier's upper envelope: at each capital the highest recovery any point offers
    order = np.argsort(x, kind="stable")
    x = x[order]
    rec = ok["expected_recovery"].to_numpy(float)[order]
    cov = ok["coverage"].to_numpy(float)[order]
    r0, v0 = float(conf["expected_recovery"].iloc[0]), float(conf["coverage"].iloc[0])
    return {
        "capital": c0,
        "recovery": r0,
        "coverage": v0,
        "capital_next": c0 + step,
        "recovery_next": float(np.interp(c0 + step, x, rec)),
        "coverage_next": float(np.interp(c0 + step, x, cov)),
    }


def sentence(frontier: pd.DataFrame, usd_b: Any) -> str:
    """The headline's sentence on the trade-off."""
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
    return head + (
        f" The next $50B beyond the configured plan's {usd_b(step['capital'])} costs"
        f" {abs(d_rec):.2f} of Japan's expected recovery ({step['recovery']:.2f} to"
        f" {step['recovery_next']:.2f}) and {'adds' if d_cov >= 0 else 'takes'}"
        f" {abs(100 * d_cov):.1f} points {'to' if d_cov >= 0 else 'from'} the coverage score"
        " (read off the frontier between its points)."
    )


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
        text=[f"floor {f:.2f}" for f in ok["floor"]],
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
    for r in frontier.sort_values("floor", ascending=False).itertuples(index=False):
        ok = r.status in SOLVED
        rows.append(
            [
                (f"{r.floor:.2f}" + (" (configured)" if r.configured else ""), r.floor),
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
        " Adds and drops are against the plan of the next higher floor.",
        kit.chart("frontier", frontier_figure(frontier, budget)),
        table,
    )


__all__ = [
    "FRONTIER_FILE",
    "frontier_figure",
    "frontier_section",
    "next_step",
    "read_frontier",
    "sentence",
]
