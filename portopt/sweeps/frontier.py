"""Efficient frontiers and sensitivity grids: many allocation solves as Dask tasks.

A grid is the cartesian product of ``--vary KEY=v1,v2,...`` lists over any config key. Points
that differ only in keys the compiled model takes as CVXPY Parameters (budget, recoupment
tolerance ε, sector bounds, ...; :data:`PARAMETER_KEYS`) share a task: the task generates its
optimisation scenarios ``[0, S_opt)`` once, builds one :class:`~portopt.model.AllocationModel`
and re-solves it per point with new Parameter values (DPP: CVXPY's canonicalisation is reused,
only the parameter values are re-applied; with ``solver.name: highs_direct`` a
:class:`~portopt.model.direct.DirectSweep` instead, whose pool of cutting planes carries over
from point to point). Points that differ in any other key (a scenario
parameter such as ``scenarios.coercion.rate_per_year``, the seed, a group switched on or off)
fall in different tasks, each generating its own scenarios. Scenarios come from counter-based
Philox streams, so every worker builds identical scenarios from the seed and no scenario data
moves between machines.

A large Parameter group is cut into tasks of at most :data:`POINTS_PER_TASK` points, so a
frontier over one key still runs in parallel; each task pays one build and first solve.

Output (:func:`write_frontier`): ``frontier.csv``, one row per point, and ``frontier.html``,
coverage against recoupment risk and against budget, in one folder written atomically.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import yaml

from portopt.catalog import Catalog
from portopt.config import (
    Override,
    RunConfig,
    load_config,
    parse_overrides,
    parse_yaml,
    split_assignment,
)
from portopt.engine.generate import generate_scenarios
from portopt.errors import ConfigError, InfeasibleError, Problem, SolverError
from portopt.evaluate import portfolio_figures
from portopt.model import (
    AllocationModel,
    DirectSweep,
    StructuralChange,
    build_model,
    formulation,
    optimize,
)
from portopt.model import is_parameter as model_is_parameter
from portopt.model.groups import GROUPS
from portopt.model.objective import Coverage
from portopt.outputs import staged_output, write_csv
from portopt.sweeps.cluster import gather_as_completed, submit_all
from portopt.sweeps.html import page, pct, usd_b

POINTS_PER_TASK = 4
"""Points per task: one first solve pays for three re-solves, and 8 points keep 2 workers busy."""
FRONTIER_CSV = "frontier.csv"
FRONTIER_HTML = "frontier.html"
BUDGET_KEY = "model.budget_usd"
TOLERANCE_KEY = "model.groups.recoupment.max_shortfall_share"

PARAMETER_KEYS: tuple[str, ...] = tuple(
    sorted({*Coverage.parameter_keys, *(k for g in GROUPS for k in g.parameter_keys)})
)
"""Config keys (or key prefixes) the compiled model takes as Parameters: a re-solve, no rebuild.
A key of a group that is switched off is not a Parameter of its model; a point that changes one
is detected by :meth:`AllocationModel.update` and gets its own build (``resolve`` false)."""

FIGURES = (
    "status",
    "solver",
    "objective",
    "mip_gap",
    "coverage",
    "capital_usd",
    "budget_usd",
    "recoupment_tolerance",
    "cvar_shortfall_share",
    "expected_recovery_ratio",
    "p_recoup",
    "n_selected",
    "selected",
    "note",
)
"""The columns of frontier.csv after the point number and the varied keys; then come ``task``,
``resolve`` (false for the first solve of a model, true for a Parameter re-solve),
``solve_s`` (canonicalisation and solver) and ``point_s`` (the whole point)."""


@dataclass(frozen=True)
class Point:
    """One grid point: its position, the value of each varied key, and its full config."""

    index: int
    values: dict[str, Any]
    config: RunConfig


# ---------------------------------------------------------------------------------- the grid


def parse_vary(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["model.budget_usd=3e11,5.5e11", ...]`` to ``{key: [values]}``, in the given order.

    Values are separated by commas outside brackets (so a sector's bounds vary as
    ``model.groups.sector_shares.bounds.energy=[0,0.5],[0,0.7]``) and read as numbers, else
    as YAML. Raises :class:`ConfigError` naming each malformed item.
    """
    grid: dict[str, list[Any]] = {}
    problems = []
    for item in items:
        key, raw = split_assignment(item) or ("", "")
        parts = _split_top(raw)
        if not key:
            problems.append(_vary_problem(item, "is not KEY=v1,v2,... with a dotted key"))
        elif not parts or any(not p.strip() for p in parts):
            problems.append(_vary_problem(item, "needs comma-separated values, none empty"))
        elif key in grid:
            problems.append(_vary_problem(item, f"varies '{key}' twice; give it one list"))
        else:
            grid[key] = [_yaml_value(p) for p in parts]
    if not items:
        problems.append(Problem("--vary", None, None, "give at least one --vary KEY=v1,v2,..."))
    if problems:
        raise ConfigError(problems, "bad --vary")
    return grid


def frontier_points(
    config_path: str | Path | None, vary: Sequence[str], overrides: Sequence[str] | None = None
) -> list[Point]:
    """Every point of the grid, each config loaded and validated before any work.

    A key the schema does not know, or a value it rejects, raises :class:`ConfigError`
    naming the ``--vary`` key and value.
    """
    grid = parse_vary(vary)
    base = parse_overrides(list(overrides or []))
    load_config(config_path, base)  # the base config's own problems, reported as such
    for key, values in grid.items():  # each key alone first, so the message names it
        for value in values:
            _point_config(config_path, base, {key: value})
    return [
        Point(i, values, _point_config(config_path, base, values))
        for i, values in enumerate(
            dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())
        )
    ]


def is_parameter(key: str) -> bool:
    """Whether varying ``key`` is a Parameter re-solve (or touches no part of the model)."""
    return model_is_parameter(key, PARAMETER_KEYS)


def plan_tasks(
    points: Sequence[Point], points_per_task: int = POINTS_PER_TASK
) -> list[list[Point]]:
    """Group points that share a compiled model, then cut each group into tasks.

    Two points share a model when they agree on every varied key that is not a Parameter.
    Each task holds at most ``points_per_task`` consecutive points of one group. The plan
    depends on the grid only, not on the cluster: a point is re-solved after the same points
    (and warm-started from the same selection) on a laptop, on a cluster, and in a task rerun
    after a worker died, so the numbers are the same everywhere.
    """
    groups: dict[str, list[Point]] = {}
    for p in points:
        structural = {k: v for k, v in p.values.items() if not is_parameter(k)}
        groups.setdefault(json.dumps(structural, sort_keys=True, default=str), []).append(p)
    size = max(1, points_per_task)
    return [
        members[a : a + size] for members in groups.values() for a in range(0, len(members), size)
    ]


# ---------------------------------------------------------------------------------- the tasks


def solve_points(
    catalog: Catalog, configs: Sequence[RunConfig], sweep: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """A Dask task: scenarios once, one model, a solve per config (re-solves after the first).

    ``configs`` differ only in Parameter keys (:func:`plan_tasks`); ``sweep`` names the varied
    keys so that terms a zero value would leave out are compiled anyway. The model is an
    :class:`AllocationModel`, or with ``solver.name: highs_direct`` a
    :class:`~portopt.model.direct.DirectSweep` (the cut model, whose cut pool carries over from
    point to point). An infeasible point is a row with status ``infeasible`` (not a failed
    task, which would be retried).
    """
    first = configs[0]
    scenarios = generate_scenarios(
        catalog,
        first,
        backend=first.backend,
        scenarios=range(first.scenarios.optimisation),
    )
    model: AllocationModel | DirectSweep | None = None
    rows = []
    for cfg in configs:
        t0 = time.perf_counter()
        direct = formulation(cfg) == "cuts"
        if model is not None and isinstance(model, DirectSweep) != direct:
            model = None  # solver.name varied between the direct path and the CVXPY model
        resolve = model is not None
        if model is not None:
            try:
                model.update(cfg)
            except StructuralChange:
                model, resolve = None, False
        if model is None:
            model = build_model(catalog, scenarios, cfg, sweep=sweep)
        row = _solve_point(catalog, cfg, scenarios, model)
        row["resolve"] = resolve
        row["point_s"] = time.perf_counter() - t0
        rows.append(row)
    return rows


def _solve_point(
    catalog: Catalog, cfg: RunConfig, scenarios: Any, model: AllocationModel | DirectSweep
) -> dict[str, Any]:
    m = cfg.model
    row: dict[str, Any] = dict.fromkeys(FIGURES)
    row.update(
        budget_usd=m.budget_usd, recoupment_tolerance=m.groups.recoupment.max_shortfall_share
    )
    try:
        alloc = optimize(catalog, cfg, scenarios, model=model)
    except (InfeasibleError, SolverError) as exc:
        status = "infeasible" if isinstance(exc, InfeasibleError) else "error"
        return {**row, "status": status, "n_selected": 0, "selected": "", "note": str(exc)}
    ins = portfolio_figures(catalog, cfg, scenarios, alloc.y, alloc.fund_usd)
    alpha = m.groups.recoupment.alpha
    row.update(
        status=alloc.status,
        solver=alloc.solver,
        objective=alloc.objective,
        mip_gap=alloc.mip_gap,
        coverage=ins.get("coverage", {}).get("mean"),
        capital_usd=alloc.capital_usd,
        cvar_shortfall_share=ins.get(f"shortfall_cvar_{alpha:g}_share"),
        expected_recovery_ratio=ins.get("recovery_ratio", {}).get("mean"),
        p_recoup=ins.get("p_recoup"),
        n_selected=len(alloc.selected),
        selected=";".join(alloc.selected),
        note="; ".join(alloc.notes),
        solve_s=alloc.timings.get("compile_s", 0.0) + alloc.timings.get("solve_s", 0.0),
    )
    return row


def run_frontier(
    catalog: Catalog,
    points: Sequence[Point],
    client: Any,
    points_per_task: int = POINTS_PER_TASK,
    on_result: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Solve every point on the cluster behind ``client``; one row per point, in grid order.

    ``on_result(done, total)`` is called as each task's results arrive (progress, tests).
    """
    tasks = plan_tasks(points, points_per_task)
    keys = list(points[0].values) if points else []
    futures = submit_all(
        client,
        solve_points,
        [(catalog, [p.config for p in task], keys) for task in tasks],
        "frontier",
    )
    results = gather_as_completed(client, futures, on_result)
    rows = []
    for t, (task, task_rows) in enumerate(zip(tasks, results, strict=True)):
        for point, row in zip(task, task_rows, strict=True):
            rows.append({"point": point.index, **_cells(point.values), **row, "task": t})
    columns = ["point", *keys, *FIGURES, "task", "resolve", "solve_s", "point_s"]
    table = pd.DataFrame(rows)
    return table.reindex(columns=columns).sort_values("point", ignore_index=True)


# ---------------------------------------------------------------------------------- outputs


def write_frontier(
    table: pd.DataFrame,
    keys: Sequence[str],
    out: Path,
    ident: dict[str, str] | None = None,
) -> Path:
    """``frontier.csv`` and ``frontier.html`` into ``out``, all or nothing (temp + rename);
    ``ident``: the sweep's identity for the page (:func:`portopt.sweeps.html.identity`)."""
    with staged_output(Path(out)) as tmp:
        write_csv(table, tmp / FRONTIER_CSV)
        (tmp / FRONTIER_HTML).write_text(frontier_html(table, keys, ident), encoding="utf-8")
    return Path(out)


def frontier_html(
    table: pd.DataFrame, keys: Sequence[str], ident: dict[str, str] | None = None
) -> str:
    """The frontier page: coverage against recoupment risk, coverage against budget (when the
    budget varies), and every point in words and units ($B, percentages, seconds)."""
    ok = table[table["status"].isin(["optimal", "time_limit", "node_limit", "greedy"])]
    risk = _figure(
        ok,
        [k for k in keys if k != TOLERANCE_KEY],
        "cvar_shortfall_share",
        "Coverage against Japan's recoupment risk",
        "CVaR of Japan's shortfall, share of capital (in sample)",
        x_format=".0%",
    )
    budget = _figure(
        ok.assign(budget_b=ok["budget_usd"] / 1e9),
        [k for k in keys if k != BUDGET_KEY],
        "budget_b",
        "Coverage against budget",
        "Budget ($B)",
        x_format="$,.0f",
    )
    varied_budget = ok["budget_usd"].nunique() > 1  # a chart of one budget says nothing
    return page(
        "portopt frontier",
        f"{len(table)} points over {', '.join(keys)}. Coverage is the stress-weighted share of"
        " the US chokepoint gaps the portfolio closes in the strategic window, averaged over"
        " the optimisation scenarios; recoupment risk is the CVaR of Japan's present-value"
        " shortfall as a share of the capital committed. Infeasible points are listed in the"
        " table, not plotted.",
        [risk, budget] if varied_budget else [risk],
        _shown(table, keys),
        ident,
    )


def _shown(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The page's table: one row per point, each figure in its unit."""
    out = {"Point": table["point"].astype(int)}
    for key in keys:
        usd = key.endswith("_usd")
        out[key] = [usd_b(v) if usd else str(v) for v in table[key]]
    out["Status"] = table["status"].astype(str)
    out["Coverage score"] = [pct(v) for v in table["coverage"]]
    out["Capital"] = [usd_b(v) for v in table["capital_usd"]]
    out["Japan's CVaR95 shortfall (share of capital)"] = [
        pct(v) for v in table["cvar_shortfall_share"]
    ]
    out["Japan's expected recovery"] = [
        "–" if v != v else f"{v:.2f}×" for v in table["expected_recovery_ratio"].astype(float)
    ]
    out["Projects"] = ["–" if v != v else f"{int(v)}" for v in table["n_selected"].astype(float)]
    out["Solve"] = [
        f"{'re-solve' if r is True or str(r).lower() == 'true' else 'first solve'}, {s:.2f} s"
        for r, s in zip(table["resolve"], table["solve_s"].astype(float), strict=True)
    ]
    return pd.DataFrame(out)


def _figure(
    table: pd.DataFrame, by: list[str], x: str, title: str, x_title: str, x_format: str = ""
) -> go.Figure:
    fig = go.Figure()
    groups = table.groupby(by, sort=False) if by else [((), table)]
    for values, part in groups:
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(
            f"{k.rsplit('.', 1)[-1]}={usd_b(v) if k.endswith('_usd') else v}"
            for k, v in zip(by, values, strict=True)
        )
        part = part.sort_values(x)
        fig.add_scatter(
            x=part[x],
            y=part["coverage"],
            mode="lines+markers",
            name=label or "all points",
            text=[
                f"point {p}: {n} projects, capital {usd_b(c)}"
                for p, n, c in zip(
                    part["point"], part["n_selected"], part["capital_usd"], strict=True
                )
            ],
            hovertemplate="%{text}<br>coverage %{y:.1%}<extra></extra>",
        )
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title="Coverage score",
        yaxis_tickformat=".0%",
        xaxis_tickformat=x_format,
        height=420,
    )
    return fig


# ---------------------------------------------------------------------------------- helpers


def _point_config(
    config_path: str | Path | None, base: list[Override], values: dict[str, Any]
) -> RunConfig:
    varied = [Override(k, v, f"--vary {k}={json.dumps(v)}") for k, v in values.items()]
    return load_config(config_path, [*base, *varied])


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets or braces."""
    parts, depth, current = [], 0, []
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts] if text.strip() else []


def _yaml_value(text: str) -> Any:
    """A number as a number (YAML 1.1 reads ``3e11``, without a dot, as a string), else YAML."""
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    try:
        return parse_yaml(text)
    except yaml.YAMLError:
        return text


def _vary_problem(item: str, message: str) -> Problem:
    return Problem("--vary", None, None, f"'{item}' {message}")


def _cells(values: dict[str, Any]) -> dict[str, Any]:
    """Varied values as CSV cells: lists and mappings as JSON text."""
    return {
        k: json.dumps(v) if isinstance(v, list | dict | tuple) else v for k, v in values.items()
    }
