"""Self-contained HTML pages for the sweeps: plotly's JavaScript inlined once, no network."""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

_CONFIG = {"displaylogo": False, "responsive": True}


def page(title: str, intro: str, figures: Sequence[go.Figure], table: pd.DataFrame) -> str:
    """One page: a heading, a paragraph, the charts (``div.chart``) and a table of the rows."""
    charts = "\n".join(
        '<div class="chart">'
        + fig.to_html(full_html=False, include_plotlyjs=False, config=_CONFIG)
        + "</div>"
        for fig in figures
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }}
.chart {{ margin: 1.5em 0; }}
.rows {{ overflow-x: auto; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(intro)}</p>
{charts}
<div class="rows">{table_html(table)}</div>
</body>
</html>
"""


def table_html(table: pd.DataFrame) -> str:
    """``table`` as an escaped HTML table (floats with four significant digits)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return str(value)
