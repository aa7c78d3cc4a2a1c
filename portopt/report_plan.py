"""The deployment plan in the decision report: the sections the page leads with.

A run with a plan writes ``plan.csv`` (one row per proposal: the quarter the US proposes a
project, the quarter Japan funds it after its review window, construction start and expected
completion, the fund's money and the chance Japan declines) and ``metrics.json["plan"]`` (the
deployment figures: capital expected committed by the deadline against the target, per review
round, per funding year and per sector). From them this module draws

- the **calendar**: a Gantt chart, one row per proposal, Japan's review (proposal to funding)
  and construction (start to expected completion) as two segments on a quarter axis;
- the **deployment curve**: cumulative expected committed capital per quarter, and cumulative
  proposed capital, against the target and the deadline, with the P10–P90 of what is committed
  by the deadline;
- the **deployment gap** when the expected committed capital falls short of the target: by how
  much, why, and in which sectors the pipeline is short;
- the **rounds** and **funding years** tables, and a headline sentence.

Expected committed capital is the fund's money net of Japan's declines:
:math:`E[C] = \\sum_i f_i (1 - p_i)`, with :math:`f_i` the fund amount of proposal :math:`i` and
:math:`p_i` the chance that Japan declines it; the pipeline reserve is
:math:`\\sum_i f_i p_i`, the capital proposed to cover the expected declines.

The page's own pieces (sections, charts, tables, $B formatting) are portopt.report's: its
``render()`` hands them in as a :class:`Kit`, since this module importing portopt.report, which
calls it, would close an import cycle.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from portopt.config import quarter_index
from portopt.errors import Problem
from portopt.outputs import read_output_csv
from portopt.schema import PLAN_FILE
from portopt.vocabulary import SECTORS

TEXT_COLUMNS = (
    "project_id",
    "name",
    "sector",
    "basis",
    "status",
    "proposal_quarter",
    "funding_quarter",
    "construction_start",
    "expected_completion",
)
NUMBER_COLUMNS = (
    "build_quarters",
    "fund_usd",
    "decline_prob",
    "expected_recovery_ratio",
    "p_recoup",
)
QUARTER_COLUMNS = ("proposal_quarter", "funding_quarter", "construction_start")
MAY_BE_BLANK = ("expected_recovery_ratio", "p_recoup")
"""The columns of ``plan.csv`` the report reads. ``expected_completion`` is a quarter too, or
blank when the project fails in over half the scenarios; a recovery figure is blank where it is
undefined (portopt writes NaN as an empty cell)."""

DAYS_PER_QUARTER = 365.25 / 4
CALENDAR_DAYS_PER_BUSINESS_DAY = 7 / 5
_ORIGIN = "2000Q1"
"""Quarters are drawn on a numeric axis counted from this quarter, labelled ``2027Q1``."""

SECTOR_COLOURS = dict(zip(SECTORS, plotly.colors.qualitative.Plotly, strict=False))
DEADLINE, TARGET, PROPOSED = "#bc002d", "#1f2a44", "#9aa3ad"


@dataclass(frozen=True)
class Kit:
    """portopt.report's page pieces: ``section(key, title, intro, *body)``, ``chart(key,
    figure)``, ``table(id, headers, rows, sortable)``, ``usd_b(x)`` ($B), ``pct(x, digits)``
    ``sector_label(sector)`` and ``fold(summary, body)`` (folded detail)."""

    section: Callable[..., str]
    chart: Callable[[str, go.Figure], str]
    table: Callable[..., str]
    usd_b: Callable[[float | None], str]
    pct: Callable[..., str]
    sector_label: Callable[[str], str]
    fold: Callable[[str, str], str]


# ---------------------------------------------------------------- reading plan.csv


def read_plan(out_dir: str | Path) -> pd.DataFrame | None:
    """``out_dir/plan.csv`` as a table, or ``None`` when the run wrote no plan.

    Raises :class:`InputError` naming the file, row and column of every missing column,
    unreadable number or malformed quarter label (rows are CSV lines, the header being line 1).
    """
    path = Path(out_dir) / PLAN_FILE
    if not path.exists():
        return None

    def quarters(plan: pd.DataFrame) -> list[Problem]:
        problems = []
        for column in (*QUARTER_COLUMNS, "expected_completion"):
            for i, label in enumerate(plan[column]):
                if label == "" and column == "expected_completion":
                    continue
                try:
                    quarter_index(label, _ORIGIN)
                except ValueError as exc:
                    problems.append(Problem(str(path), i + 2, column, str(exc)))
        return problems

    return read_output_csv(path, "a plan", TEXT_COLUMNS, NUMBER_COLUMNS, MAY_BE_BLANK, (), quarters)


# ---------------------------------------------------------------- the sections


def lead_sections(plan: pd.DataFrame, metrics: dict[str, Any], kit: Kit) -> list[str]:
    """The plan's sections, in the order the page leads with them."""
    info = metrics["plan"]
    return [
        _gap_section(info, metrics.get("binding_constraints", []), kit),
        kit.section(
            "plan-calendar",
            "The deployment plan: what to propose, and when",
            "One row per proposal, in the order proposed. The light segment is Japan's review"
            f" ({info.get('review_business_days', 45)} business days from the US proposal to"
            " funding), the solid one construction from its start to the expected completion;"
            " a hatched segment is a project that fails in over half the scenarios (its"
            " planned build is shown). Projects already committed are marked. The red line is"
            " the deadline. Hover over a bar for its fund money, Japan's expected recovery and"
            " the chance Japan declines it; the table below (click to open) lists the same"
            " proposals, as plan.csv does.",
            kit.chart("plan-calendar", calendar_figure(plan, info, kit)),
            kit.fold(f"The {len(plan)} proposals, one row each", _proposals_table(plan, kit)),
        ),
        kit.section(
            "plan-deployment",
            "Capital committed by the deadline",
            "Capital proposed and capital expected to be committed once Japan's declines are"
            " taken out, added up quarter by quarter, against the target (horizontal line) and"
            " the deadline (vertical line). The whisker at the deadline runs from the"
            " pessimistic (P10) to the optimistic (P90) case of the capital committed.",
            kit.chart("plan-deployment", deployment_figure(info)),
        ),
        kit.section(
            "plan-rounds",
            "Review rounds and Japanese fiscal years",
            "Each round's proposals against Japan's review capacity, and the capital they"
            " bring; then the plan's expected disbursements in each Japanese fiscal year"
            " (April to March) against JBIC's funding capacity.",
            _rounds_table(info, kit),
            _funding_years_table(info, kit),
        ),
        *_support_section(metrics, kit),
    ]


def _support_section(metrics: dict[str, Any], kit: Kit) -> list[str]:
    """What the plan's cash counts on beyond market prices: its offtake floors by payer, and
    the US support of the run (``support.projects``) with its expected cost; none when
    neither."""
    floors = metrics.get("offtake_floors") or {}
    support = metrics.get("support") or {}
    if not floors.get("projects") and not support.get("projects"):
        return []
    body = []
    if floors.get("projects"):
        count: dict[str, list[str]] = {}
        for r in floors["projects"]:  # the largest first
            count.setdefault(r["guarantor"], []).append(r["project_id"])
        rows = [
            (
                who,
                (kit.usd_b(cost), cost),
                (str(len(count.get(who, []))), len(count.get(who, []))),
                (count.get(who) or [""])[0],
            )
            for who, cost in sorted(floors["by_guarantor"].items(), key=lambda kv: -kv[1])
        ]
        headers = [("Who pays the floor", "text"), ("Expected cost (PV)", "num")]
        headers += [("Projects", "num"), ("The largest", "text")]
        body.append(
            f"<p>The offtake floors of the plan's projects are expected to pay"
            f" {kit.usd_b(floors['total_usd'])} above market prices.</p>"
            + kit.fold(
                f"By payer ({len(rows)})",
                kit.table("plan-offtake-floors", headers, rows, sortable=True),
            )
        )
    if support.get("projects"):
        items = []
        for r in support["projects"]:
            levers = []
            if r.get("capex_reduction"):
                levers.append(f"{kit.pct(r['capex_reduction'])} of the cost")
            if r.get("price_floor") is not None:
                term = r.get("price_floor_years")
                levers.append(
                    f"a price floor of {r['price_floor']:g} on {kit.pct(r['price_floor_share'])}"
                    f" of the output for {'the life' if term is None else f'{term:g} years'}"
                )
            if r.get("delay_reduction_quarters"):
                levers.append(f"{r['delay_reduction_quarters']:g} quarters of permitting")
            cost = (r.get("capex_cost_expected_usd") or 0.0) + (
                r.get("floor_cost_expected_usd") or 0.0
            )
            state = "proposed" if r.get("proposed") else "not proposed"
            items.append(
                f"<li>{html.escape(str(r['project']))} ({state}): {html.escape(', '.join(levers))};"
                f" expected cost {kit.usd_b(cost)}</li>"
            )
        body.append(
            f"<p>US support given to this run (support.projects): expected cost"
            f" {kit.usd_b(support.get('cost_expected_usd'))}.</p>"
            f'<ul id="plan-us-support">{"".join(items)}</ul>'
        )
    return [
        kit.section(
            "plan-support",
            "What the plan counts on beyond market prices",
            "An offtake floor pays the contracted share's price up to the floor, for its term;"
            " what it is expected to pay is its payer's cost, a present value over the"
            " evaluation scenarios with Japan's declines (metrics.json's offtake_floors and"
            " support).",
            *body,
        )
    ]


def open_rounds(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The rounds in which new proposals may be made (``first_quarter`` to
    ``last_proposal_quarter``); quarter labels sort as the quarters do."""
    first, last = info.get("first_quarter", ""), info.get("last_proposal_quarter", "9999Q4")
    return [r for r in info.get("rounds", []) if first <= r["proposal_quarter"] <= last]


def headline_sentence(plan: pd.DataFrame, metrics: dict[str, Any], kit: Kit) -> str:
    """One paragraph for the top of the page: committed by the deadline against the target,
    proposals and rounds, the reserve for declines, coverage and what declines cost in it."""
    info = metrics["plan"]
    usd, pct = kit.usd_b, kit.pct
    committed, target = info["committed_expected_usd"], info["target_usd"]
    window = open_rounds(info)
    rounds = [r["proposal_quarter"] for r in window if r.get("proposals")]
    n_committed = int((plan["status"] == "committed").sum())
    reach = (
        f"{usd(info['deployment_gap_usd'])} short of the {usd(target)} target"
        if info["deployment_gap_usd"] > 0
        else f"reaching the {usd(target)} target"
    )
    declines = info.get("declines") or {}
    reserve = (
        f"A pipeline reserve of {usd(info['pipeline_reserve_usd'])} covers the capital Japan is"
        f" expected to decline ({declines.get('basis', 'illustrative')} decline chances)."
        if declines.get("enabled")
        else "Japan's declines are not modelled in this run."
    )
    lost = info.get("coverage_lost_to_declines") or 0.0
    text = (
        f"The plan: {usd(committed)} expected committed by the deadline"
        f" ({_long_date(info['deadline'])}), {reach} ({pct(_share(committed, target))};"
        f" P10–P90 {usd(info['committed_p10_usd'])}–{usd(info['committed_p90_usd'])}), from"
        f" {len(plan)} proposals: {n_committed} already committed and"
        f" {len(plan) - n_committed} new ones in {len(rounds)} of the {len(window)} open"
        f" review rounds{_span(rounds)}. {reserve} Coverage score {pct(info['coverage'], 1)}"
        f" ({pct(info['coverage_without_declines'], 1)} if Japan declined nothing:"
        f" {100 * lost:.1f} points lost to declines)."
    )
    return f'<p class="intro" id="plan-headline"><strong>{html.escape(text)}</strong></p>'


def into_headline(headline: str, sentence: str) -> str:
    """``headline`` (the page's headline section) with ``sentence`` right under its title."""
    at = headline.find("</h2>")
    if at < 0:
        return sentence + headline
    at += len("</h2>")
    return headline[:at] + sentence + headline[at:]


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _span(rounds: Sequence[str]) -> str:
    if not rounds:
        return ""
    return f" ({rounds[0]})" if len(rounds) == 1 else f" ({rounds[0]} to {rounds[-1]})"


def _long_date(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.day} {d:%B %Y}"


# ---------------------------------------------------------------- the calendar


def row_labels(plan: pd.DataFrame) -> list[str]:
    """The calendar's row per proposal: the project's name and id, marked when committed."""
    return [
        f"{r.name} [{r.project_id}]" + (" · committed" if r.status == "committed" else "")
        for r in plan.itertuples(index=False)
    ]


def calendar_figure(plan: pd.DataFrame, info: dict[str, Any], kit: Kit) -> go.Figure:
    """The Gantt chart of the plan: per proposal, the review and the construction segments.

    Review runs from the start of the proposal quarter to the start of the funding quarter, at
    least the review window long; construction from the start of its quarter to the start of
    the expected-completion quarter, or for ``build_quarters`` when there is none.
    """
    labels = np.array(row_labels(plan), dtype=object)
    window = info.get("review_business_days", 45) * CALENDAR_DAYS_PER_BUSINESS_DAY
    proposed = _quarters(plan["proposal_quarter"])
    funded = _quarters(plan["funding_quarter"])
    review_end = np.maximum(funded, proposed + window / DAYS_PER_QUARTER)
    start = _quarters(plan["construction_start"])
    done = (plan["expected_completion"] != "").to_numpy()
    end = np.where(
        done,
        _quarters(plan["expected_completion"].where(done, plan["construction_start"])),
        start + plan["build_quarters"].to_numpy(float),
    )
    committed = (plan["status"] == "committed").to_numpy()
    hover = pd.DataFrame(
        {
            "proposed": plan["proposal_quarter"],
            "funded": plan["funding_quarter"],
            "start": plan["construction_start"],
            "end": plan["expected_completion"].where(done, "fails in over half the scenarios"),
            "fund": plan["fund_usd"] / 1e9,
            "recovery": plan["expected_recovery_ratio"],
            "p_recoup": plan["p_recoup"],
            "decline": plan["decline_prob"],
            "status": plan["status"],
            "basis": plan["basis"],
        }
    ).to_numpy(dtype=object)
    money = (
        "<br>fund $%{customdata[4]:.1f}B · Japan's expected recovery %{customdata[5]:.2f}×"
        " · recoups in %{customdata[6]:.0%} of scenarios<br>chance Japan declines"
        " %{customdata[7]:.0%} · %{customdata[8]} · basis %{customdata[9]}"
    )
    fig = go.Figure()
    for sector in _sectors_in(plan):
        part = (plan["sector"] == sector).to_numpy()
        colour = SECTOR_COLOURS.get(sector, PROPOSED)
        fig.add_bar(
            y=labels[part],
            base=proposed[part],
            x=(review_end - proposed)[part],
            orientation="h",
            name=kit.sector_label(sector),
            legendgroup=sector,
            showlegend=False,
            marker={"color": colour, "opacity": 0.35},
            customdata=hover[part],
            hovertemplate="%{y}<br>Japan's review: proposed %{customdata[0]}, funded"
            " %{customdata[1]}" + money + "<extra></extra>",
        )
        fig.add_bar(
            y=labels[part],
            base=start[part],
            x=(end - start)[part],
            orientation="h",
            name=kit.sector_label(sector),
            legendgroup=sector,
            marker={
                "color": colour,
                "pattern": {"shape": np.where(done[part], "", "x"), "solidity": 0.4},
            },
            customdata=hover[part],
            hovertemplate="%{y}<br>construction %{customdata[2]} to %{customdata[3]}"
            + money
            + "<extra></extra>",
        )
    if committed.any():
        fig.add_scatter(
            y=labels[committed],
            x=proposed[committed] - 0.15,
            mode="markers",
            name="already committed",
            marker={"symbol": "star", "size": 12, "color": "#111"},
            hovertemplate="%{y}: fixed by the commitments file<extra></extra>",
        )
    low, high = float(proposed.min(initial=np.inf)), float(end.max(initial=-np.inf))
    deadline = deadline_position(info["deadline"])
    _deadline_line(fig, deadline)
    fig.update_layout(
        title="The plan's calendar (light: Japan's review; solid: construction)",
        barmode="overlay",
        height=max(360, 17 * len(plan) + 160),
        xaxis=_quarter_axis(min(low, deadline), max(high, deadline)),
        yaxis={"categoryorder": "array", "categoryarray": list(labels), "autorange": "reversed"},
        legend={"orientation": "h", "y": -0.12},
    )
    return fig


def _sectors_in(plan: pd.DataFrame) -> list[str]:
    present = set(plan["sector"])
    return [s for s in SECTORS if s in present] + sorted(present - set(SECTORS))


# ---------------------------------------------------------------- the deployment curve


def deployment_figure(info: dict[str, Any]) -> go.Figure:
    """Cumulative proposed and expected committed capital per quarter ($B), the target and the
    deadline, and the P10–P90 of the capital committed by the deadline."""
    rounds = info.get("rounds", [])
    x = [quarter_index(r["proposal_quarter"], _ORIGIN) for r in rounds]
    labels = [r["proposal_quarter"] for r in rounds]
    proposed = np.cumsum([r["proposed_usd"] for r in rounds]) / 1e9
    committed = np.array([r["cumulative_committed_usd"] for r in rounds]) / 1e9
    deadline = deadline_position(info["deadline"])
    fig = go.Figure()
    fig.add_scatter(
        x=x,
        y=proposed,
        mode="lines",
        name="proposed, cumulative",
        line={"color": PROPOSED, "dash": "dash", "width": 2, "shape": "hv"},
        customdata=labels,
        hovertemplate="%{customdata}: $%{y:.1f}B proposed<extra></extra>",
    )
    fig.add_scatter(
        x=x,
        y=committed,
        mode="lines+markers",
        name="expected committed, cumulative",
        line={"color": "#1f4e9c", "width": 3, "shape": "hv"},
        customdata=labels,
        hovertemplate="%{customdata}: $%{y:.1f}B expected committed<extra></extra>",
    )
    mid = info["committed_expected_usd"] / 1e9
    fig.add_scatter(
        x=[deadline],
        y=[mid],
        mode="markers",
        name="committed by the deadline (P10–P90)",
        marker={"color": DEADLINE, "size": 11, "symbol": "diamond"},
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [info["committed_p90_usd"] / 1e9 - mid],
            "arrayminus": [mid - info["committed_p10_usd"] / 1e9],
            "color": DEADLINE,
            "thickness": 2,
            "width": 8,
        },
        customdata=[[info["committed_p10_usd"] / 1e9, info["committed_p90_usd"] / 1e9]],
        hovertemplate="by the deadline: $%{y:.1f}B expected (P10 $%{customdata[0]:.1f}B,"
        " P90 $%{customdata[1]:.1f}B)<extra></extra>",
    )
    target = info["target_usd"] / 1e9
    fig.add_shape(
        type="line",
        name="target",
        xref="paper",
        x0=0,
        x1=1,
        y0=target,
        y1=target,
        line={"color": TARGET, "width": 2, "dash": "dot"},
    )
    fig.add_annotation(
        xref="paper",
        x=0.01,
        y=target,
        text=f"target ${target:,.0f}B ({info.get('target_kind', 'soft')})",
        showarrow=False,
        yanchor="bottom",
        xanchor="left",
    )
    _deadline_line(fig, deadline)
    top = max(target, float(proposed.max(initial=0.0)), info["committed_p90_usd"] / 1e9)
    fig.update_layout(
        title="Capital proposed and expected committed, cumulative ($B)",
        xaxis=_quarter_axis(
            min(x, default=deadline), max(max(x, default=deadline), deadline), "quarter"
        ),
        yaxis={"title": "$B", "range": [0, 1.1 * top]},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


# ---------------------------------------------------------------- the quarter axis


def deadline_position(deadline: str) -> float:
    """The deadline (ISO date) on the quarter axis: its quarter plus the share of it elapsed."""
    d = date.fromisoformat(deadline)
    q = (d.month - 1) // 3
    first = date(d.year, 3 * q + 1, 1)
    after = date(d.year + 1, 1, 1) if q == 3 else date(d.year, 3 * q + 4, 1)
    return quarter_index(f"{d.year}Q{q + 1}", _ORIGIN) + (d - first).days / (after - first).days


def _quarters(labels: pd.Series) -> np.ndarray:
    return np.array([quarter_index(q, _ORIGIN) for q in labels], dtype=float)


def _quarter_label(index: int) -> str:
    year, q = divmod(index, 4)
    return f"{int(_ORIGIN[:4]) + year}Q{q + 1}"


def _quarter_axis(low: float, high: float, title: str = "") -> dict[str, Any]:
    """A numeric axis labelled by quarter: every quarter over four years or less, else every
    first quarter."""
    first, last = int(np.floor(low)), int(np.ceil(high))
    step = 1 if last - first <= 16 else 4
    ticks = [i for i in range(first, last + 1) if step == 1 or i % 4 == 0]
    return {
        "tickvals": ticks,
        "ticktext": [_quarter_label(i) for i in ticks],
        "range": [first - 0.5, last + 0.5],
        "title": title,
        "showgrid": True,
    }


def _deadline_line(fig: go.Figure, x: float) -> None:
    fig.add_shape(
        type="line",
        name="deadline",
        yref="paper",
        x0=x,
        x1=x,
        y0=0,
        y1=1,
        line={"color": DEADLINE, "width": 2, "dash": "dash"},
    )
    fig.add_annotation(x=x, yref="paper", y=1, text="deadline", showarrow=False, yanchor="bottom")


# ---------------------------------------------------------------- the gap and the tables


def _gap_section(info: dict[str, Any], binding: list[dict[str, Any]], kit: Kit) -> str:
    usd = kit.usd_b
    gap, target = info["deployment_gap_usd"], info["target_usd"]
    committed = info["committed_expected_usd"]
    sectors = info.get("sectors", [])
    if gap > 0:
        short = [kit.sector_label(s["sector"]) for s in sectors if s.get("short")]
        lines = [
            f"The plan is expected to commit {usd(committed)} by the deadline:"
            f" {usd(gap)} ({kit.pct(_share(gap, target))}) short of the {usd(target)} target."
        ]
        if short:
            lines.append("The pipeline is short in: " + ", ".join(short) + ".")
        priced = [_priced_rule(b) for b in binding if b.get("binding")]
        others = [r for r in info.get("gap_reasons", []) if " binds: " not in r]
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in [*priced, *others])
        body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
        if reasons:
            body += (
                "<p>What holds deployment below the target: the rules that bind, each with its"
                " price (the coverage score one step of it would buy: the LP dual, in points"
                " of the 0–100 score), then the rest.</p>"
                f'<ul id="plan-gap-reasons">{reasons}</ul>'
            )
        title = "The deployment gap"
    else:
        body = (
            f"<p>The target is met: {usd(committed)} expected committed by the deadline"
            f" against the {usd(target)} target.</p>"
        )
        title = "The target is met"
    kind = info.get("target_kind", "soft")
    intro = (
        f"The target is {kind}: "
        + (
            "the plan must reach it."
            if kind == "hard"
            else "a shortfall is allowed, at a price in the objective."
        )
        + " Per sector, the capital the plan commits against its pipeline: what every"
        " candidate of the sector could take at its maximum share."
    )
    return kit.section(
        "plan-gap",
        title,
        intro,
        body,
        kit.fold("Each sector's plan against its pipeline", _sectors_table(sectors, kit)),
    )


def _priced_rule(b: dict[str, Any]) -> str:
    """A binding rule with its price, e.g. "recoupment (expected): +2.75 coverage points per
    point (0.01) lower recovery floor"."""
    price = 100 * float(b.get("coverage_per_unit") or 0.0)
    where = f" ({b['row']})" if b.get("row") else ""
    return (
        f"{str(b.get('group', '')).replace('_', ' ')}{where}: {price:+.2f} coverage points"
        f" {b.get('unit', '')}".rstrip()
    )


def _sectors_table(sectors: list[dict[str, Any]], kit: Kit) -> str:
    rows = [
        (
            kit.sector_label(s["sector"]),
            (kit.usd_b(s["planned_usd"]), s["planned_usd"]),
            (kit.usd_b(s["pipeline_usd"]), s["pipeline_usd"]),
            (kit.usd_b(s["pipeline_usd"] - s["planned_usd"]), s["pipeline_usd"] - s["planned_usd"]),
            "short" if s.get("short") else "room left",
        )
        for s in sectors
    ]
    headers = [
        ("Sector", "text"),
        ("Planned", "num"),
        ("Pipeline", "num"),
        ("Pipeline left", "num"),
        ("Pipeline short", "text"),
    ]
    return kit.table("plan-sectors", headers, rows)


def _proposals_table(plan: pd.DataFrame, kit: Kit) -> str:
    """plan.csv as the committee reads it: one row per proposal, sortable."""
    rows = [
        (
            r.proposal_quarter,
            r.project_id,
            r.name,
            kit.sector_label(r.sector),
            r.status,
            r.funding_quarter,
            r.construction_start,
            r.expected_completion or "fails in most scenarios",
            (kit.usd_b(r.fund_usd), r.fund_usd),
            (kit.pct(r.decline_prob), r.decline_prob),
            (kit.usd_b(r.fund_usd * (1 - r.decline_prob)), r.fund_usd * (1 - r.decline_prob)),
            (
                "–" if np.isnan(r.expected_recovery_ratio) else f"{r.expected_recovery_ratio:.2f}",
                0.0 if np.isnan(r.expected_recovery_ratio) else r.expected_recovery_ratio,
            ),
        )
        for r in plan.itertuples(index=False)
    ]
    headers = [
        ("Proposed", "text"),
        ("Id", "text"),
        ("Project", "text"),
        ("Sector", "text"),
        ("Status", "text"),
        ("Funded", "text"),
        ("Construction", "text"),
        ("Expected completion", "text"),
        ("Fund money", "num"),
        ("Chance Japan declines", "num"),
        ("Expected committed", "num"),
        ("Japan's expected recovery", "num"),
    ]
    return kit.table("plan-proposals", headers, rows)


def _rounds_table(info: dict[str, Any], kit: Kit) -> str:
    """The rounds with proposals and the open ones (a committed round before them, an empty
    quarter after the last decision are left out)."""
    window = open_rounds(info)
    rows = [
        (
            r["proposal_quarter"],
            (
                f"{r['proposals']} of {r['capacity']}"
                if r.get("capacity") is not None
                else f"{r['proposals']} (no limit)"
                if r in window
                else f"{r['proposals']} committed",
                r["proposals"],
            ),
            (kit.usd_b(r["proposed_usd"]), r["proposed_usd"]),
            (kit.usd_b(r["committed_expected_usd"]), r["committed_expected_usd"]),
            (kit.usd_b(r["cumulative_committed_usd"]), r["cumulative_committed_usd"]),
        )
        for r in info.get("rounds", [])
        if r.get("proposals") or r in window
    ]
    headers = [
        ("Proposal round", "text"),
        ("Proposals / review capacity", "num"),
        ("Proposed in the round", "num"),
        ("Expected committed from the round", "num"),
        ("Expected committed, cumulative", "num"),
    ]
    return kit.table("plan-rounds", headers, rows, sortable=False)


def _funding_years_table(info: dict[str, Any], kit: Kit) -> str:
    years = info.get("funding_years", [])
    if not years:
        return ""
    rows = []
    for y in years:
        capacity = y.get("capacity_usd")
        used = None if not capacity else y["disbursed_expected_usd"] / capacity
        rows.append(
            (
                f"JFY{y['fiscal_year']}",
                (kit.usd_b(y["disbursed_expected_usd"]), y["disbursed_expected_usd"]),
                ("no limit" if capacity is None else kit.usd_b(capacity), capacity or 0.0),
                (kit.pct(used), used or 0.0),
            )
        )
    headers = [
        ("Japanese fiscal year (April to March)", "text"),
        ("Expected disbursements", "num"),
        ("JBIC's funding capacity", "num"),
        ("Capacity used", "num"),
    ]
    return kit.table("plan-funding-years", headers, rows, sortable=False)
