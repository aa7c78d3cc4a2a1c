"""Self-contained HTML pages for the sweeps, in the decision report's style.

Plotly's JavaScript is inlined once and nothing is fetched from the network. Each page carries
the sweep's identity the way the report does (portopt version, configuration hash, seed,
catalog, :func:`identity`; no date, so a page depends on its inputs only), and its tables show
amounts in $B, shares in percent and seconds with their unit (:func:`usd_b`, :func:`pct`),
never raw floats.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from portopt._version import __version__
from portopt.config import RunConfig

_CONFIG = {"displaylogo": False, "responsive": True}


def identity(config: RunConfig, catalog: str) -> dict[str, str]:
    """What identifies a sweep: the portopt version, the base configuration's hash (before the
    varied keys), its seed and the catalog folder. No date: the same inputs and seed give the
    same page whenever it is written."""
    return {
        "version": __version__,
        "config_hash": config.digest(),
        "seed": str(config.seed),
        "catalog": str(catalog),
    }


def usd_b(x: Any) -> str:
    """Dollars as ``$69.9B`` ('–' when missing)."""
    return "–" if _missing(x) else f"${float(x) / 1e9:,.1f}B"


def pct(x: Any, digits: int = 1) -> str:
    """A share as a percentage ('–' when missing)."""
    return "–" if _missing(x) else f"{100 * float(x):.{digits}f}%"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and x != x) or x == ""


def page(
    title: str,
    intro: str,
    figures: Sequence[go.Figure],
    table: pd.DataFrame,
    ident: dict[str, str] | None = None,
) -> str:
    """One page: a header with the sweep's identity, a paragraph, the charts (``div.chart``)
    and a table of the rows (``table``'s cells as given, already in words and units)."""
    from portopt.report import CSS  # the report's style sheet, said once

    charts = "\n".join(_chart(fig) for fig in figures)
    sub = ""
    if ident:
        sub = (
            f'<p class="sub" id="identity">portopt {_e(ident["version"])} · configuration'
            f" {_e(ident['config_hash'])} · seed {_e(ident['seed'])} · catalog"
            f" {_e(ident['catalog'])}</p>"
        )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
<style>{CSS}
.rows {{ overflow-x: auto; }}</style>
</head>
<body>
<header><h1>{_e(title)}</h1>{sub}</header>
<main><section><p class="intro">{_e(intro)}</p>
{charts}
<div class="rows">{table_html(table)}</div></section></main>
</body>
</html>
"""


def _chart(fig: go.Figure) -> str:
    fig.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 30, "t": 40, "b": 50},
        font={"family": "system-ui, -apple-system, 'Segoe UI', sans-serif"},
    )
    inner = fig.to_html(full_html=False, include_plotlyjs=False, config=_CONFIG)
    return f'<div class="chart">{inner}</div>'


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table_html(table: pd.DataFrame) -> str:
    """``table`` as an escaped HTML table (a float left as a number shows four digits)."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in table.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f'<table class="plain"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return str(value)
