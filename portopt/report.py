"""The decision report: one self-contained ``report.html`` for a committee member.

The page is a pure function of a run's output folder (``allocation.csv``, ``coverage.csv``,
``metrics.json``), so it can be re-rendered later, e.g. with the robustness core indices.
Plotly's JavaScript is inlined once in the page head; every chart is a ``div.chart`` holding a
plotly div and nothing is fetched from the network (no CDN, no web fonts), so the file opens
offline.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from portopt.compare import compare_section, read_compare
from portopt.outputs import (
    ALLOCATION_FILE,
    COVERAGE_FILE,
    METRICS_FILE,
    REPORT_FILE,
    format_float,
    headline,
)
from portopt.priorities import vary_of
from portopt.report_frontier import frontier_section, read_frontier
from portopt.report_plan import Kit, headline_sentence, into_headline, lead_sections, read_plan

JAPAN, US, DRAW, GREY = "#bc002d", "#1f4e9c", "#6b6b6b", "#9aa3ad"
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def write_report(
    out_dir: str | Path,
    core_indices: pd.DataFrame | None = None,
    path: str | Path | None = None,
) -> Path:
    """Render ``report.html`` from the output folder ``out_dir``; return its path.

    ``core_indices`` (optional, from ``portopt robustness``): one row per project with columns
    ``project_id``, ``core_index`` (share of scenario batches that select it), ``ci_low`` and
    ``ci_high``; when given, the page gains a robustness section. ``path`` defaults to
    ``out_dir/report.html``.
    """
    out_dir = Path(out_dir)
    allocation = pd.read_csv(
        out_dir / ALLOCATION_FILE,
        keep_default_na=False,
        dtype={"project_id": str, "name": str, "sector": str},
    )
    allocation["selected"] = allocation["selected"].astype(str).str.lower() == "true"
    coverage = pd.read_csv(
        out_dir / COVERAGE_FILE, keep_default_na=False, dtype={"chokepoint_id": str, "name": str}
    )
    metrics = json.loads((out_dir / METRICS_FILE).read_text())
    target = Path(path) if path is not None else out_dir / REPORT_FILE
    page = render(
        allocation,
        coverage,
        metrics,
        core_indices,
        read_plan(out_dir),
        read_frontier(out_dir),
        read_compare(out_dir),
    )
    target.write_text(page, encoding="utf-8")
    return target


def render(
    allocation: pd.DataFrame,
    coverage: pd.DataFrame,
    metrics: dict[str, Any],
    core_indices: pd.DataFrame | None = None,
    plan: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    compare: pd.DataFrame | None = None,
) -> str:
    """The report page as one HTML string (see :func:`write_report`); with a ``plan`` (``plan.csv``)
    and ``metrics["plan"]``, the page leads with the deployment plan (portopt.report_plan),
    and with its ``frontier`` (``frontier.csv``) first (portopt.report_frontier)."""
    selected = allocation[allocation["selected"]].sort_values("fund_usd", ascending=False)
    is_plan = plan is not None and "plan" in metrics
    marginal = metrics.get("marginal_values", [])
    sections = [
        _headline(metrics),
        _tranche_section(metrics),
        _section(
            "portfolio",
            "The proposed projects" if is_plan else "The selected projects",
            "Every project the fund finances, with the fund's money in it, the basis of its"
            " catalog row and whether it is in the committed first tranche. Click a column"
            " heading to sort.",
            _basis_note(metrics),
            _fold(
                f"The {len(selected)} projects, one row each", _projects_table(selected, metrics)
            ),
            "" if is_plan else _chart("allocation", _allocation_figure(selected)),
        ),
        _section(
            "sectors",
            "Capital by sector",
            "Each sector's share of the capital "
            + ("proposed" if is_plan else "committed")
            + " (bars) against the minimum and maximum share the configuration allows"
            " (markers).",
            _chart("sectors", _sector_figure(metrics)),
        ),
        _section(
            "coverage",
            "Which supply-chain chokepoints the portfolio closes",
            "For each chokepoint, the share of the US gap the selected projects fill during"
            " the strategic window, on scenarios the optimiser never saw. The bar is the"
            " average; the whisker runs from the pessimistic (P10) to the optimistic (P90)"
            " case; the dot is the middle case (P50).",
            _chart("coverage", _coverage_figure(coverage)),
            _chokepoint_explanations(metrics),
        ),
        _section(
            "recovery",
            "Does Japan get its money back?",
            "How much Japan receives per dollar it puts in (present values at its funding"
            " cost), across the evaluation scenarios. Right of the red line at 1.0 Japan"
            " recoups its money with interest; left of it, it loses part of it.",
            '<div class="pair">',
            _chart("recovery", _recovery_figure(metrics)),
            _chart("projects-risk", _project_risk_figure(selected)),
            "</div>",
        ),
        _section(
            "cash",
            "Cash over time",
            "Cash paid to Japan and to the United States each quarter, and the capital"
            " drawn, in billions of dollars (not discounted), to the last quarter with cash."
            " Lines are the middle case; shaded bands run from P10 to P90.",
            _chart("cash", _cash_figure(metrics)),
        ),
        _section(
            "binding",
            "What limits the portfolio",
            "The rules that are tight at the chosen portfolio. The first table is exact:"
            " each rule relaxed one step and the plan re-solved. The second gives the LP"
            " duals of the relaxation with the chosen projects fixed in and the others"
            " divisible: a price at the margin of a continuous model, not what a whole"
            " step buys. Rules that are not listed have room to spare.",
            _relaxation_table(metrics.get("relaxations", []), metrics),
            _fold(
                f"The {len(metrics.get('binding_constraints', []))} rules' LP prices, one row each",
                _binding_table(metrics.get("binding_constraints", [])),
            ),
        ),
        _section(
            "marginal",
            "What each candidate is worth to the plan",
            "Each candidate re-solved forced in (one left out) or forced out (one chosen), with"
            " the rest of the plan held as it is. Its value is the coverage score with it minus"
            " the score without it, in coverage points (0–100); the last column says what the"
            " re-solve gives up or which rule it breaks (– when the re-solve simply scores"
            " lower). Differences within the solves' MIP gaps are marked: they are not proven.",
            _fold(
                f"The {len(marginal)} candidates, one row each, by value",
                _marginal_table(marginal, allocation),
            )
            if marginal
            else _marginal_table(marginal, allocation),
        ),
    ]
    if is_plan:  # the report leads with the plan; per-project detail follows, folded
        kit = Kit(_section, _chart, _table, _usd_b, _pct, _sector_label, _fold)
        sections[0] = into_headline(sections[0], headline_sentence(plan, metrics, kit))
        portfolio = sections.pop(2)
        sections[1:1] = lead_sections(plan, metrics, kit)
        sections.insert(-1, portfolio)
        if compare is not None and "compare" in metrics:  # what changed since the last plan
            sections[1:1] = [compare_section(compare, metrics["compare"], kit)]
        if frontier is not None:  # the trade-off first
            sections[1:1] = [frontier_section(frontier, metrics, kit)]
    if core_indices is not None:
        sections.append(_robustness(core_indices, allocation))
    sections.append(_details(metrics))
    return _page(metrics, sections)


# ---------------------------------------------------------------- page and generic pieces


def _page(metrics: dict[str, Any], sections: list[str]) -> str:
    title = "portopt decision report"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_CSS}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
</head>
<body>
<header><h1>US–Japan strategic investment fund: proposed portfolio</h1>
<p class="sub">portopt {_e(metrics.get("version", ""))} · configuration
{_e(metrics.get("config_hash", ""))} · seed {_e(metrics.get("seed", ""))}</p></header>
<main>
{"".join(sections)}
</main>
<script>{_SORT_JS}</script>
</body>
</html>
"""


def _fold(summary: str, body: str) -> str:
    """``body`` folded under a one-line ``summary`` the reader clicks to open (per-project
    detail: the page a committee reads stays short)."""
    return f'<details class="fold"><summary>{_e(summary)}</summary>{body}</details>'


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _section(key: str, title: str, intro: str, *body: str) -> str:
    return (
        f'<section id="{key}"><h2>{_e(title)}</h2><p class="intro">{_e(intro)}</p>'
        + "".join(body)
        + "</section>"
    )


def _chart(key: str, fig: go.Figure) -> str:
    fig.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 30, "t": 40, "b": 50},
        font={"family": "system-ui, -apple-system, 'Segoe UI', sans-serif"},
    )
    inner = fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=f"plot-{key}", config=_PLOTLY_CONFIG
    )
    return f'<div class="chart" id="chart-{key}">{inner}</div>'


def _table(
    table_id: str,
    headers: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    sortable: bool = True,
) -> str:
    """An HTML table; ``headers`` are (label, kind) with kind ``text`` or ``num``; each cell
    is (shown, sort key) or a plain value."""
    cls = "sortable" if sortable else "plain"
    head = "".join(
        f'<th data-kind="{kind}" scope="col">{_e(label)}</th>' for label, kind in headers
    )
    body = []
    for row in rows:
        cells = []
        for cell in row:
            shown, key = cell if isinstance(cell, tuple) else (cell, cell)
            cells.append(f'<td data-sort="{_e(key)}">{_e(shown)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table id="{table_id}" class="{cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _usd_b(x: float | None) -> str:
    return "–" if x is None else f"${x / 1e9:,.1f}B"


def _pct(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _sector_label(sector: str) -> str:
    return sector.replace("_", " ")


# ---------------------------------------------------------------- headline


def _figures(m: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    alpha = m.get("recoupment_alpha", 0.95)
    return (
        headline(m.get("in_sample") or {}, alpha),
        headline(m.get("out_of_sample") or {}, alpha),
    )


def _headline(m: dict[str, Any]) -> str:
    ins, oos = _figures(m)
    alpha = m.get("recoupment_alpha", 0.95)
    gap = m.get("mip_gap")
    solver = f"{m.get('status', '?')} ({m.get('solver', '?')}"
    solver += f", gap {_pct(gap, 2)})" if gap is not None else ")"
    cards = [
        *_money_cards(m),
        (
            "Strategic coverage score",
            _pct(oos.get("coverage_score"), 1),
            f"weighted share of the US chokepoint gaps closed, fresh scenarios (optimiser's"
            f" own: {_pct(ins.get('coverage_score'), 1)})",
            "out_of_sample/coverage/mean",
        ),
        (
            "Japan's expected recovery",
            f"{_num(oos.get('recovery_ratio'))}×",
            "present value Japan receives per dollar it puts in (1.0 = money back with interest)",
            "out_of_sample/recovery_ratio/mean",
        ),
        (
            "Chance Japan recoups",
            _pct(oos.get("p_recoup")),
            "share of scenarios in which the present value Japan receives, to the end of the"
            " last project's life, covers what it puts in at its funding cost",
            "out_of_sample/p_recoup",
        ),
        (
            f"Japan's loss in the worst {_pct(1 - alpha)}",
            _pct(oos.get("cvar_shortfall_share"), 1),
            f"of capital: average shortfall over the worst {_pct(1 - alpha)} of scenarios"
            f" (CVaR {_pct(alpha)})",
            f"out_of_sample/shortfall_cvar_{alpha:g}_share",
        ),
        ("Solver", solver, f"objective (coverage score) {_pct(m.get('objective'), 1)}"),
    ]
    items = "".join(_card(*card) for card in cards)
    return (
        f'<section id="headline"><h2>At a glance</h2><div class="cards">{items}</div>'
        f"{_in_vs_out(m)}</section>"
    )


def _card(label: str, value: str, note: str, source: str = "") -> str:
    """A headline card; ``source`` is the path (keys joined by ``/``) of the metrics.json
    field its value shows (the browser test compares the two)."""
    data = f' data-metric="{_e(source)}"' if source else ""
    return (
        f'<div class="card"{data}><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="note">{_e(note)}</div></div>'
    )


def _capital(m: dict[str, Any]) -> float | None:
    """The portfolio's money: a plan's proposed capital, a one-shot run's committed one."""
    return m.get("capital_proposed_usd", m.get("capital_committed_usd"))


def _money_cards(m: dict[str, Any]) -> list[tuple[str, ...]]:
    """The headline's money and count cards: for a plan, what it proposes and what Japan is
    expected to commit of it; for a one-shot run, what it commits."""
    n, candidates = m["projects"]["selected"], m["projects"]["candidates"]
    plan = m.get("plan")
    if plan is None:
        return [
            (
                "Capital committed",
                _usd_b(m.get("capital_committed_usd")),
                f"of a {_usd_b(m.get('budget_usd'))} budget"
                f" ({_pct(m.get('capital_committed_share'))})",
                "capital_committed_usd",
            ),
            ("Projects selected", f"{n}", f"of {candidates} candidates", "projects/selected"),
        ]
    committed, target = plan["committed_expected_usd"], plan["target_usd"]
    return [
        (
            "Expected committed by the deadline",
            _usd_b(committed),
            f"{_pct(committed / target if target else None)} of the {_usd_b(target)} target;"
            f" P10–P90 {_usd_b(plan['committed_p10_usd'])}–{_usd_b(plan['committed_p90_usd'])}",
            "plan/committed_expected_usd",
        ),
        (
            "Proposed",
            _usd_b(plan["proposed_usd"]),
            f"in {n} proposals; Japan is expected to decline"
            f" {_usd_b(plan['pipeline_reserve_usd'])} of it",
            "plan/proposed_usd",
        ),
        (
            "Proposals",
            f"{n}",
            f"of {candidates} candidates, committed ones included",
            "projects/selected",
        ),
    ]


def _in_vs_out(m: dict[str, Any]) -> str:
    ins, oos = _figures(m)
    rows = []
    for key, label, fmt in (
        ("coverage_score", "Coverage score", lambda x: _pct(x, 1)),
        ("recovery_ratio", "Japan's expected recovery", _num),
        ("p_recoup", "Chance Japan recoups", _pct),
        ("cvar_shortfall_share", "Japan's tail loss (share of capital)", lambda x: _pct(x, 1)),
    ):
        a, b = ins.get(key), oos.get(key)
        diff = None if a is None or b is None else b - a
        rows.append((label, fmt(a), fmt(b), "–" if diff is None else f"{diff:+.3f}"))
    table = _table(
        "in-vs-out",
        [
            ("Figure", "text"),
            ("Optimiser's scenarios", "text"),
            ("Fresh scenarios", "text"),
            ("Difference", "text"),
        ],
        rows,
        sortable=False,
    )
    return _fold(
        "The figures on the optimiser's own scenarios against fresh ones",
        '<p class="intro">The optimiser chose the portfolio on one set of scenarios; the'
        " figures above are measured on a fresh set it never saw. A large difference"
        " would mean the choice is tuned to luck in its own scenarios.</p>" + table,
    )


# ---------------------------------------------------------------- projects


def _projects_table(selected: pd.DataFrame, metrics: dict[str, Any] | None = None) -> str:
    basis = _basis_of(metrics or {})
    tranche = set((metrics or {}).get("tranche_alone", {}).get("projects", []))
    rows = [
        (
            r.project_id,
            r.name,
            _sector_label(r.sector),
            (_usd_b(r.fund_usd), r.fund_usd),
            (_pct(r.fund_share), r.fund_share),
            (_num(r.expected_recovery_ratio), r.expected_recovery_ratio),
            (_pct(r.p_recoup), r.p_recoup),
            (_pct(r.expected_online_share), r.expected_online_share),
            BASIS_MARKS.get(basis.get(r.project_id, ""), basis.get(r.project_id, "–")),
            TRANCHE_MARK if r.project_id in tranche else "",
        )
        for r in selected.itertuples(index=False)
    ]
    headers = [
        ("Id", "text"),
        ("Project", "text"),
        ("Sector", "text"),
        ("Fund money", "num"),
        ("Fund's share of the project", "num"),
        ("Japan's expected recovery", "num"),
        ("Chance Japan recoups", "num"),
        ("Expected share of window online", "num"),
        ("Basis", "text"),
        ("Committed tranche", "text"),
    ]
    return _table("projects", headers, rows)


# ---------------------------------------------------------------- basis, tranche, chokepoints

BASIS_MARKS = {
    "fact": "● fact",
    "estimate": "◐ estimate",
    "illustrative": "○ illustrative",
}
"""How the projects table marks a row's ``basis`` (the catalog's provenance column): a fact
from a public source, an estimate built from sourced numbers, or an illustrative analogue
where no such project exists yet."""
TRANCHE_MARK = "■ first tranche"
"""How the projects table marks a project of the committed first tranche."""


def _basis_of(metrics: dict[str, Any]) -> dict[str, str]:
    """Each funded project's basis, from metrics.json's ``capital_by_basis``."""
    return {
        pid: basis
        for basis, part in metrics.get("capital_by_basis", {}).items()
        for pid in part.get("projects", [])
    }


def _basis_note(metrics: dict[str, Any]) -> str:
    """The share of capital on each basis, in one paragraph (illustrative first)."""
    by = metrics.get("capital_by_basis")
    if not by:
        return ""
    order = sorted(by, key=lambda b: (b != "illustrative", b))
    parts = [
        f"{_usd_b(by[b]['usd'])} ({_pct(by[b]['share'])}) on {b} rows"
        f" ({len(by[b].get('projects', []))} projects)"
        for b in order
        if by[b].get("usd", 0) > 0
    ]
    illustrative = by.get("illustrative", {"usd": 0.0, "share": 0.0})
    return (
        f'<p class="intro" id="basis-note">Of the capital'
        f" {'proposed' if 'plan' in metrics else 'committed'},"
        f" {_e(_pct(illustrative['share']))} ({_e(_usd_b(illustrative['usd']))}) sits on"
        " illustrative rows: analogues standing in for projects no sponsor has announced,"
        " whose numbers are the catalog's, not a sponsor's. By basis: "
        f"{_e('; '.join(parts))}.</p>"
    )


def _tranche_section(metrics: dict[str, Any]) -> str:
    """The plan against its committed first tranche alone, on the same fresh scenarios."""
    tranche = metrics.get("tranche_alone")
    if not tranche:
        return _section(
            "tranche",
            "The plan against the committed tranche alone",
            "The catalog commits no project, so there is no tranche to compare with.",
        )
    _, plan = _figures(metrics)
    alpha = metrics.get("recoupment_alpha", 0.95)
    alone = headline(tranche, alpha)
    diff = tranche.get("plan_minus_tranche", {})
    cvar_key = f"shortfall_cvar_{alpha:g}_share"
    rows = []
    for key, label, fmt, dfmt, d in (
        (
            "capital_usd",
            "Capital proposed" if "plan" in metrics else "Capital committed",
            _usd_b,
            _usd_b_signed,
            diff.get("capital_usd"),
        ),
        (
            "coverage_score",
            "Coverage score",
            lambda x: _pct(x, 1),
            lambda x: _pts(x),
            diff.get("coverage"),
        ),
        ("recovery_ratio", "Japan's expected recovery", _num, _signed, diff.get("recovery_ratio")),
        ("p_recoup", "Chance Japan recoups", _pct, _pts, diff.get("p_recoup")),
        (
            "cvar_shortfall_share",
            f"Japan's loss in the worst {_pct(1 - alpha)} (share of capital)",
            lambda x: _pct(x, 1),
            _pts,
            diff.get(cvar_key),
        ),
    ):
        a = _capital(metrics) if key == "capital_usd" else plan.get(key)
        b = tranche.get("capital_usd") if key == "capital_usd" else alone.get(key)
        rows.append((label, fmt(a), fmt(b), dfmt(d)))
    table = _table(
        "tranche-vs-plan",
        [
            ("Figure", "text"),
            ("The plan", "text"),
            ("The committed tranche alone", "text"),
            ("Plan minus tranche", "text"),
        ],
        rows,
        sortable=False,
    )
    names = ", ".join(tranche.get("projects", []))
    return _section(
        "tranche",
        "The plan against the committed tranche alone",
        f"The first tranche ({names}) is committed and in every plan. These are its figures"
        " on its own, at the same amounts and on the same fresh scenarios as the plan's: what"
        " the rest of the plan adds to it.",
        table,
    )


def _usd_b_signed(x: float | None) -> str:
    return "–" if x is None else f"{'+' if x >= 0 else '−'}${abs(x) / 1e9:,.1f}B"


def _signed(x: float | None) -> str:
    return "–" if x is None else f"{x:+.2f}"


def _pts(x: float | None) -> str:
    """A difference of two shares, in percentage points."""
    return "–" if x is None else f"{100 * x:+.1f} points"


VERDICTS = {
    "no_capacity": "No candidate in the catalog has capacity in it.",
    "rejected": "Candidates have capacity in it; none was chosen.",
    "selected_fill_little": "Chosen projects have capacity in it but fill little of its gap"
    " in the window (late, at risk of failure or small).",
}
"""What each ``chokepoint_explanations`` verdict of metrics.json means, in words."""


def _chokepoint_explanations(metrics: dict[str, Any]) -> str:
    """Why each chokepoint with low or zero expected coverage is covered as it is."""
    items = metrics.get("chokepoint_explanations")
    if items is None:
        return ""
    low = metrics.get("low_coverage_threshold", 0.1)
    intro = (
        f'<h3 id="why-low">Why some chokepoints get little or no coverage</h3><p class="intro">'
        f"Each chokepoint of which the plan closes less than {_e(_pct(low))} of the gap on"
        " average (fresh scenarios): whether no candidate has capacity in it, or candidates"
        " exist and were left out, each with the reason its forced-in re-solve gives.</p>"
    )
    if not items:
        return intro + '<p class="empty">Every chokepoint is covered above that.</p>'
    rows = []
    for c in items:
        chosen = ", ".join(c.get("selected", []))
        why = VERDICTS.get(c["verdict"], c["verdict"])
        if chosen:
            why += f" Chosen: {chosen}."
        out = "".join(
            f"<li><b>{_e(r['name'])}</b> ({_e(r['project_id'])}):"
            f" {_e(r['reason'] or 'no reason')}</li>"
            for r in c.get("rejected", [])
        )
        rows.append(
            f'<tr data-verdict="{_e(c["verdict"])}"><td>{_e(c["name"])}</td>'
            f"<td>{_e(_num(c['weight'], 1))}</td><td>{_e(_pct(c['expected_coverage'], 1))}</td>"
            f"<td>{_e(why)}</td><td>{'<ul>' + out + '</ul>' if out else '–'}</td></tr>"
        )
    head = "".join(
        f'<th scope="col">{_e(h)}</th>'
        for h in (
            "Chokepoint",
            "Weight",
            "Expected coverage",
            "Why",
            "Candidates left out, and why",
        )
    )
    table = (
        f'<table id="chokepoint-explanations" class="plain"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return intro + _fold(f"The {len(items)} chokepoints, with the candidates left out", table)


def _allocation_figure(selected: pd.DataFrame) -> go.Figure:
    order = selected.sort_values("fund_usd")
    fig = go.Figure()
    for sector, part in order.groupby("sector", sort=True):
        fig.add_bar(
            x=part["fund_usd"] / 1e9,
            y=part["name"],
            orientation="h",
            name=_sector_label(str(sector)),
            hovertemplate="%{y}: $%{x:.1f}B<extra></extra>",
        )
    fig.update_layout(
        title="Fund money per project ($B)",
        barmode="stack",
        height=max(320, 24 * len(order) + 120),
        yaxis={"categoryorder": "array", "categoryarray": list(order["name"])},
    )
    return fig


def _project_risk_figure(selected: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    size = (selected["fund_usd"] / max(selected["fund_usd"].max(), 1.0)) ** 0.5 * 40 + 6
    fig.add_scatter(
        x=selected["expected_recovery_ratio"],
        y=selected["p_recoup"],
        mode="markers",
        text=selected["name"],
        marker={"size": size, "color": JAPAN, "opacity": 0.6},
        hovertemplate="%{text}<br>recovery %{x:.2f}, recoups in %{y:.0%}<extra></extra>",
        name="project",
    )
    fig.add_vline(x=1.0, line={"color": JAPAN, "dash": "dash"})
    fig.update_layout(
        title="Per project (size: fund money)",
        showlegend=False,
        xaxis_title="expected recovery (×)",
        yaxis_title="chance of recouping",
        yaxis_tickformat=".0%",
    )
    return fig


# ---------------------------------------------------------------- sectors


def _sector_figure(m: dict[str, Any]) -> go.Figure:
    shares = m.get("sector_shares", {})
    names = [_sector_label(s) for s in shares]
    share = [v.get("share", 0.0) for v in shares.values()]
    fig = go.Figure()
    fig.add_bar(
        x=names,
        y=share,
        name="share of capital",
        marker_color=US,
        customdata=[v.get("usd", 0.0) / 1e9 for v in shares.values()],
        hovertemplate="%{x}: %{y:.1%} ($%{customdata:.1f}B)<extra></extra>",
    )
    for key, label, symbol in (
        ("min", "minimum allowed", "triangle-up"),
        ("max", "maximum allowed", "triangle-down"),
    ):
        fig.add_scatter(
            x=names,
            y=[v.get(key) for v in shares.values()],
            mode="markers",
            name=label,
            marker={"symbol": symbol, "size": 13, "color": JAPAN},
            hovertemplate="%{x}: " + label + " %{y:.0%}<extra></extra>",
        )
    fig.update_layout(
        title=f"Share of {'proposed' if 'plan' in m else 'committed'} capital by sector",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.02],
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


# ---------------------------------------------------------------- coverage


def _coverage_figure(coverage: pd.DataFrame) -> go.Figure:
    c = coverage.iloc[::-1]
    mean = c["expected_coverage"]
    fig = go.Figure()
    fig.add_bar(
        x=mean,
        y=c["name"],
        orientation="h",
        name="average",
        marker_color=US,
        error_x={
            "type": "data",
            "symmetric": False,
            "array": c["coverage_p90"] - mean,
            "arrayminus": mean - c["coverage_p10"],
            "color": "#333",
        },
        customdata=c[["coverage_p10", "coverage_p90", "weight"]].to_numpy(),
        hovertemplate="%{y}: %{x:.0%} on average (P10 %{customdata[0]:.0%}, P90"
        " %{customdata[1]:.0%}); weight %{customdata[2]}<extra></extra>",
    )
    fig.add_scatter(
        x=c["coverage_p50"],
        y=c["name"],
        mode="markers",
        name="middle case (P50)",
        marker={"color": JAPAN, "size": 8},
    )
    fig.update_layout(
        title="Share of each US gap closed",
        xaxis_tickformat=".0%",
        xaxis_range=[0, 1.05],
        height=max(360, 19 * len(c) + 120),
        legend={"orientation": "h", "y": -0.12},
    )
    return fig


# ---------------------------------------------------------------- recovery and cash


def _recovery_figure(m: dict[str, Any]) -> go.Figure:
    hist = m.get("distributions", {}).get("recovery_ratio", {"edges": [0, 1], "counts": [0]})
    edges, counts = hist["edges"], hist["counts"]
    total = max(sum(counts), 1)
    mids = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    widths = [b - a for a, b in itertools.pairwise(edges)]
    colors = [JAPAN if x < 1.0 else US for x in mids]
    fig = go.Figure()
    fig.add_bar(
        x=mids,
        y=[c / total for c in counts],
        width=widths,
        marker_color=colors,
        name="scenarios",
        hovertemplate="recovery %{x:.2f}×: %{y:.1%} of scenarios<extra></extra>",
    )
    fig.add_vline(
        x=1.0,
        line={"color": JAPAN, "width": 2, "dash": "dash"},
        annotation_text="break-even 1.0",
        annotation_position="top",
    )
    fig.update_layout(
        title="Japan's recovery, all scenarios",
        xaxis_title="present value received per dollar put in (×)",
        yaxis_title="share of scenarios",
        yaxis_tickformat=".1%",
        bargap=0.02,
        showlegend=False,
        xaxis_range=[min(edges[0], 0.9), max(edges[-1], 1.1)],
    )
    return fig


def _cash_figure(m: dict[str, Any]) -> go.Figure:
    """The cash bands per quarter, to the last quarter in which any band has cash, with a
    tick per year."""
    cash = m.get("distributions", {}).get("cash_per_quarter", {})
    last = max(
        (
            t
            for key in CASH_KEYS
            for t, v in enumerate((cash.get(key) or {}).get("p90", []))
            if abs(v) > 0
        ),
        default=len(cash.get("quarter", [])) - 1,
    )
    quarters = cash.get("quarter", [])[: last + 2]
    cash = {
        key: {band: values[: len(quarters)] for band, values in cash[key].items()}
        for key in CASH_KEYS
        if cash.get(key)
    }
    fig = go.Figure()
    for key, label, color in (
        ("cash_japan", "to Japan", JAPAN),
        ("cash_us", "to the US", US),
        ("cash_draw", "capital drawn", DRAW),
    ):
        band = cash.get(key)
        if not band:
            continue
        scale = [v / 1e9 for v in band["p90"]], [v / 1e9 for v in band["p10"]]
        fig.add_scatter(
            x=quarters,
            y=scale[0],
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
            legendgroup=key,
        )
        fig.add_scatter(
            x=quarters,
            y=scale[1],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=_rgba(color, 0.18),
            name=f"{label}: P10–P90",
            legendgroup=key,
            hoverinfo="skip",
        )
        fig.add_scatter(
            x=quarters,
            y=[v / 1e9 for v in band["p50"]],
            mode="lines",
            name=f"{label}: median",
            legendgroup=key,
            line={"color": color, "width": 2, "dash": "dot" if key == "cash_draw" else "solid"},
            hovertemplate="%{x}: $%{y:.2f}B<extra>" + label + "</extra>",
        )
    years = [q for q in quarters if str(q).endswith("Q1")]
    step = max(1, len(years) // 20)
    fig.update_layout(
        title="Cash per quarter ($B, not discounted)",
        yaxis_title="$B per quarter",
        xaxis={
            "type": "category",
            "tickmode": "array",
            "tickvals": years[::step],
            "ticktext": [str(q)[:4] for q in years[::step]],
            "title": "calendar year (quarters)",
        },
        legend={"orientation": "h", "y": -0.2},
        hovermode="x unified",
    )
    return fig


CASH_KEYS = ("cash_japan", "cash_us", "cash_draw")
"""metrics.json's ``distributions.cash_per_quarter`` bands the cash chart draws."""


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# ---------------------------------------------------------------- binding constraints


def _binding_table(binding: list[dict[str, Any]]) -> str:
    if not binding:
        return '<p class="empty">No rule is tight: the portfolio has room on every limit.</p>'
    rows = [
        (
            b.get("group", "").replace("_", " "),
            b.get("row", ""),
            (_shadow(b), b.get("coverage_per_unit") or 0.0),
            b.get("meaning", ""),  # the row's own meaning (portopt.model.terms.RowMeaning)
        )
        for b in binding
    ]
    return _table(
        "binding",
        [("Rule", "text"), ("Where", "text"), ("Shadow price", "num"), ("What it means", "text")],
        rows,
    )


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f} points"


def _relaxation_table(relaxations: list[dict[str, Any]], metrics: dict[str, Any]) -> str:
    if not relaxations:
        if metrics.get("marginal_values"):  # the cut model solved: rules were not re-solved
            return (
                '<p class="empty">No rule was relaxed and re-solved in this run; the LP prices'
                " below are the rules' prices.</p>"
            )
        return '<p class="empty">No re-solve figures (the cut model did not solve this run).</p>'
    rows = [
        (
            r["rule"],
            r["step"],
            (_points(r["coverage_points"]), r["coverage_points"] or 0.0),
            "within the MIP gaps" if r["within_gap"] else (r["note"] or "proven"),
        )
        for r in relaxations
    ]
    return _table(
        "relaxations",
        [("Rule", "text"), ("One step", "text"), ("Re-solved effect", "num"), ("", "text")],
        rows,
    )


HELD_AS_IT_IS = re.compile(
    r"^(?:forced (?:in|out)|cannot be (?:added|taken out)) with the rest of the plan held as"
    r" it is(?::\s*|$)"
)
"""The method's own words at the head of a plan's marginal-value reason: the table's
introduction says them once, and a row shows only what follows them."""


def _why(reason: str | None) -> str:
    """A marginal-value reason without the method's boilerplate; "–" when that is all."""
    return HELD_AS_IT_IS.sub("", reason or "").strip() or "–"


def _marginal_table(values: list[dict[str, Any]], allocation: pd.DataFrame) -> str:
    if not values:
        return '<p class="empty">No marginal values (the cut model did not solve this run).</p>'
    names = dict(zip(allocation["project_id"], allocation["name"], strict=True))
    rows = [
        (
            names.get(v["project_id"], v["project_id"]),
            "in" if v["selected"] else "out",
            (_points(v["marginal_value"]), v["marginal_value"] or 0.0),
            ("within the MIP gaps; " if v["within_gap"] else "") + _why(v["reason"]),
        )
        for v in sorted(values, key=lambda v: -(v["marginal_value"] or 0.0))
    ]
    return _table(
        "marginal-values",
        [
            ("Project", "text"),
            ("In the plan", "text"),
            ("Value (coverage points)", "num"),
            ("What the re-solve gives up or breaks", "text"),
        ],
        rows,
    )


def _shadow(b: dict[str, Any]) -> str:
    price = b.get("coverage_per_unit")
    if price is None:
        return "–"
    # the objective is the coverage score (a share), so a dual reads as percentage points
    return f"LP dual {100 * price:+.3g} points of coverage {b.get('unit', '')}".strip()


# ---------------------------------------------------------------- robustness


def _robustness(core: pd.DataFrame, allocation: pd.DataFrame) -> str:
    names = dict(zip(allocation["project_id"], allocation["name"], strict=True))
    chosen = set(allocation.loc[allocation["selected"], "project_id"])
    c = core.sort_values("core_index", ascending=False)
    rows = [
        (
            r.project_id,
            names.get(r.project_id, r.project_id),
            "yes" if r.project_id in chosen else "no",
            (_pct(r.core_index), r.core_index),
            (_pct(r.ci_low), r.ci_low),
            (_pct(r.ci_high), r.ci_high),
        )
        for r in c.itertuples(index=False)
    ]
    table = _table(
        "core-indices",
        [
            ("Id", "text"),
            ("Project", "text"),
            ("In this portfolio", "text"),
            ("Core index", "num"),
            ("95% interval, low", "num"),
            ("95% interval, high", "num"),
        ],
        rows,
    )
    fig = core_index_figure(c[c["core_index"] > 0], names)
    vary = vary_of(core)
    return _section(
        "robustness",
        "How robust is the choice?",
        f"The portfolio was re-optimised on {vary.drawn}. A project's core index is the share"
        f" of batches that select it: near 100%, it is chosen whatever {vary.whatever};"
        " near 0%, it is marginal.",
        _chart("robustness", fig),
        table,
    )


def core_index_figure(core: pd.DataFrame, names: dict[str, str]) -> go.Figure:
    """Core index per project with its 95% interval, coloured by class when ``core`` has one.

    ``core`` has columns ``project_id``, ``core_index``, ``ci_low``, ``ci_high`` (and ``class``, and
    ``vary``: what the batches drew); ``names`` maps ids to what the bars are labelled with.
    A core bar says what its project is core whatever of, e.g. "core whatever the weights".
    """
    shown = core.iloc[::-1]
    vary = vary_of(core)
    classes = shown["class"] if "class" in shown else [""] * len(shown)
    colours = (
        [{"core": US, "borderline": "#e0a100"}.get(k, "#9aa3ad") for k in shown["class"]]
        if "class" in shown
        else US
    )
    fig = go.Figure()
    fig.add_bar(
        x=shown["core_index"],
        y=[names.get(i, i) for i in shown["project_id"]],
        orientation="h",
        marker_color=colours,
        name="core index",
        text=[f"core whatever {vary.whatever}" if k == "core" else "" for k in classes],
        textposition="inside",
        insidetextanchor="start",
        error_x={
            "type": "data",
            "symmetric": False,
            "array": shown["ci_high"] - shown["core_index"],
            "arrayminus": shown["core_index"] - shown["ci_low"],
        },
    )
    fig.update_layout(
        title=f"Core index: share of the {vary.short} that select each project",
        xaxis_tickformat=".0%",
        xaxis_range=[0, 1.05],
        height=max(320, 24 * len(shown) + 120),
        showlegend=False,
    )
    return fig


# ---------------------------------------------------------------- details


def _details(m: dict[str, Any]) -> str:
    sc = m.get("scenarios", {})
    opt, ev = sc.get("optimisation", {}), sc.get("evaluation", {})
    facts = [
        ("Catalog", m.get("catalog", "")),
        ("Optimisation scenarios", _range(opt)),
        ("Evaluation scenarios", _range(ev)),
        (
            "Start quarter; cap on a delay",
            f"{sc.get('start', '')}; {sc.get('max_delay_quarters', '')} quarters"
            " (each project runs to its own end)",
        ),
        ("Seed", m.get("seed", "")),
        ("Scenario backend and device", f"{m.get('backend', '')} ({_device(m.get('device'))})"),
        ("Solver and status", f"{m.get('solver', '')}: {m.get('status', '')}"),
        (
            "MIP gap reached (target)",
            f"{_pct(m.get('mip_gap'), 3)} ({_pct(m.get('mip_gap_target'), 2)})",
        ),
        ("Objective", format_float(m.get("objective") or 0.0)),
        ("Configuration hash", m.get("config_hash", "")),
        ("portopt version", m.get("version", "")),
    ]
    facts_table = _table("details", [("Item", "text"), ("Value", "text")], facts, sortable=False)
    timings = [(stage, (f"{sec:.2f} s", sec)) for stage, sec in m.get("timings_s", {}).items()]
    timing_table = _table(
        "timings", [("Stage", "text"), ("Wall time", "num")], timings, sortable=False
    )
    return _section(
        "details",
        "Scenarios, solver and timings",
        "How the figures above were produced, for reproduction.",
        _fold("The scenarios, the solver and each stage's wall time", facts_table + timing_table),
    )


def _device(device: Any) -> str:
    if isinstance(device, dict):
        return ", ".join(f"{k} {v}" for k, v in device.items() if k != "backend")
    return str(device or "")


def _range(part: dict[str, Any]) -> str:
    if not part:
        return "–"
    first, count = part.get("first", 0), part.get("count", 0)
    return f"{count:,} (indices {first:,} to {first + count - 1:,})"


_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1d2430; background: #f6f7f9; line-height: 1.45; }
header { background: #1f2a44; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 1.5rem; }
header .sub { margin: 4px 0 0; opacity: .8; font-size: .9rem; }
main { max-width: 1200px; margin: 0 auto; padding: 12px 24px 48px; }
section { background: #fff; border-radius: 8px; padding: 16px 24px; margin: 18px 0;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { font-size: 1.2rem; margin: 4px 0 8px; }
p.intro { color: #4a5568; margin: 0 0 12px; max-width: 80ch; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 12px;
  margin-bottom: 16px; }
.card { border: 1px solid #e2e6ec; border-radius: 6px; padding: 10px 12px; }
.card .label { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em;
  color: #5a6472; }
.card .value { font-size: 1.45rem; font-weight: 600; margin: 2px 0; }
.card .note { font-size: .8rem; color: #5a6472; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; margin: 8px 0 12px; }
th, td { border-bottom: 1px solid #e2e6ec; padding: 4px 6px; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
details.fold { margin: 8px 0; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 12px; }
.pair > .chart { min-width: 0; }
details.fold > summary { cursor: pointer; color: #1f4e99; font-weight: 600; padding: 4px 0; }
th { background: #eef1f5; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
td[data-sort] { font-variant-numeric: tabular-nums; }
.chart { margin: 8px 0; min-height: 300px; }
p.empty { color: #4a5568; font-style: italic; }
"""
CSS = _CSS
"""The report's style sheet (the sweeps' pages use it too)."""


_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var numeric = th.dataset.kind === "num";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        var c = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""
