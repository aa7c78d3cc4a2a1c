"""Robustness of the choice: core indices over independent scenario batches (Dask tasks).

Robust Portfolio Modeling (Liesiö, Mild and Salo, 2007) calls a project's *core index* the share
of plausible problem instances whose optimal portfolio contains it. Here the instances are B
independent batches of optimisation scenarios: batch b re-optimises on scenario indices

.. math:: [\\,S\\,(b+1),\\; S\\,(b+2)\\,), \\qquad b = 0, \\dots, B-1,

with S = ``scenarios.optimisation``. The batches are disjoint from one another and from the
run's own optimisation scenarios ``[0, S)``; since scenario s is a pure function of the seed
and s (Philox counters), batch b is the same on any worker and in any rerun, and the batches are
independent draws. (They may overlap the run's evaluation scenarios; no evaluation happens
here, so that is harmless.)

The batches may also vary the chokepoint priorities (``vary``, :data:`portopt.priorities.Mode`):
with ``weights`` or ``both``, batch b optimises on the catalog with its weights and gaps drawn
from their ranges (:func:`portopt.priorities.sample_priorities`, keyed by the seed and b), and
with ``weights`` every batch keeps the run's own scenarios ``[0, S)``, so the two sources of
doubt can be told apart. The core index is then over the priorities and the scenarios together.

With k of the n feasible batches selecting project i, the core index is
:math:`\\hat p_i = k/n`, with the Wilson score interval at 95%,

.. math::

    \\frac{\\hat p + \\frac{z^2}{2n} \\pm z \\sqrt{\\frac{\\hat p (1-\\hat p)}{n}
    + \\frac{z^2}{4n^2}}}{1 + \\frac{z^2}{n}}, \\qquad z = \\Phi^{-1}(0.975) \\approx 1.96,

which stays inside [0, 1] and is not degenerate at k = 0 or k = n. Projects with
:math:`\\hat p \\ge 0.9` are *core*, :math:`\\hat p \\le 0.1` *exterior*, the rest *borderline*.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.generate import generate_scenarios
from portopt.errors import ConfigError, InfeasibleError, PortoptError, Problem, SolverError
from portopt.model import optimize
from portopt.outputs import REPORT_FILE, atomic_file, staged_output, write_csv
from portopt.priorities import Mode, sample_priorities, vary_of
from portopt.report import core_index_figure, write_report
from portopt.sweeps.cluster import gather_as_completed, submit_all
from portopt.sweeps.html import page, pct, usd_b

ROBUSTNESS_CSV = "robustness.csv"
BATCHES_CSV = "batches.csv"
ROBUSTNESS_HTML = "robustness.html"
CORE, EXTERIOR = 0.9, 0.1
CONFIDENCE = 0.95


def batch_range(config: RunConfig, b: int, vary: Mode = "scenarios") -> range:
    """Scenario indices of batch ``b``: ``[S(b+1), S(b+2))``, S the optimisation count; the
    run's own ``[0, S)`` when only the weights vary."""
    s = config.scenarios.optimisation
    return range(0, s) if vary == "weights" else range(s * (b + 1), s * (b + 2))


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (see the module docstring), from SciPy's
    ``binomtest(k, n).proportion_ci(method="wilson")``."""
    if n <= 0:
        return float("nan"), float("nan")
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    # the bounds are exactly 0 at k = 0 and 1 at k = n; say so rather than round to it
    return (0.0 if k == 0 else float(ci.low)), (1.0 if k == n else float(ci.high))


def classify(core_index: float) -> str:
    """``core`` (>= 0.9), ``exterior`` (<= 0.1) or ``borderline``."""
    if core_index >= CORE:
        return "core"
    if core_index <= EXTERIOR:
        return "exterior"
    return "borderline"


def solve_batch(
    catalog: Catalog,
    config: RunConfig,
    b: int,
    vary: Mode = "scenarios",
    plan: bool = False,
    commitments: str | Path | None = None,
) -> dict[str, Any]:
    """A Dask task: generate batch ``b``'s scenarios and optimise on them, with batch ``b``'s
    chokepoint priorities unless ``vary`` is ``scenarios``. With ``plan``, the batch's plan
    (on ``commitments``; :func:`portopt.sweeps.plans.plan_selection`): a project is selected
    when the plan proposes it in any round."""
    t0 = time.perf_counter()
    priorities = catalog if vary == "scenarios" else sample_priorities(catalog, config.seed, b)
    out: dict[str, Any] = {
        "batch": b,
        "first_scenario": batch_range(config, b, vary).start,
        "vary": vary,
    }
    try:
        if plan:
            from portopt.sweeps.plans import plan_selection

            alloc, _, y, fund = plan_selection(
                priorities, config, batch_range(config, b, vary), commitments
            )
            alloc = replace(alloc, ids=list(catalog.project_ids), y=y, fund_usd=fund)
        else:
            scenarios = generate_scenarios(
                catalog, config, backend=config.backend, scenarios=batch_range(config, b, vary)
            )
            alloc = optimize(priorities, config, scenarios)
    except (InfeasibleError, SolverError) as exc:
        status = "infeasible" if isinstance(exc, InfeasibleError) else "error"
        return {
            **out,
            "status": status,
            "y": None,
            "fund_usd": None,
            "objective": None,
            "note": str(exc),
            "seconds": time.perf_counter() - t0,
        }
    return {
        **out,
        "status": alloc.status,
        "y": np.asarray(alloc.y, dtype=float),
        "fund_usd": np.asarray(alloc.fund_usd, dtype=float),
        "objective": alloc.objective,
        "note": "; ".join(alloc.notes),
        "seconds": time.perf_counter() - t0,
    }


def run_robustness(
    catalog: Catalog,
    config: RunConfig,
    batches: int,
    client: Any,
    on_result: Callable[[int, int], None] | None = None,
    vary: Mode = "scenarios",
    plan: bool = False,
    commitments: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Optimise on ``batches`` batches on the cluster; (core-index table, per-batch table).

    ``vary`` (one of :data:`portopt.priorities.Mode`) says what the batches draw: scenarios,
    chokepoint weights and gaps, or both. Raises :class:`InfeasibleError` when no batch has a
    feasible portfolio. With ``plan``, each batch is a plan (on ``commitments``).
    """
    futures = submit_all(
        client,
        solve_batch,
        [(catalog, config, b, vary, plan, commitments) for b in range(batches)],
        "robustness",
    )
    results = gather_as_completed(client, futures, on_result)
    return core_indices(catalog, results), _batch_table(catalog, results)


def core_indices(catalog: Catalog, results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per project: how many feasible batches select it, its core index and interval.

    Columns ``id``, ``name``, ``sector``, ``selected_in``, ``batches``, ``vary`` (what the
    batches drew: :data:`portopt.priorities.Mode`), ``core_index``, ``ci_low``, ``ci_high``,
    ``class``, ``mean_fund_usd`` (over the batches selecting it);
    ``id``, ``core_index``, ``ci_low``, ``ci_high`` are what :func:`portopt.report.write_report`
    takes.
    """
    feasible = [r for r in results if r["y"] is not None]
    if not feasible:
        notes = sorted({r["note"] for r in results})
        raise InfeasibleError(
            f"no portfolio is feasible in any of the {len(results)} batches", notes[:3]
        )
    y = np.stack([r["y"] for r in feasible]) > 0.5
    fund = np.stack([r["fund_usd"] for r in feasible])
    n = len(feasible)
    k = y.sum(axis=0)
    intervals = [wilson(int(c), n) for c in k]
    p = catalog.projects
    core = k / n
    mean_fund = np.where(k > 0, (fund * y).sum(axis=0) / np.maximum(k, 1), 0.0)
    return pd.DataFrame(
        {
            "project_id": catalog.project_ids,
            "name": p["name"].astype(str).to_numpy(),
            "sector": p["sector"].astype(str).to_numpy(),
            "selected_in": k.astype(int),
            "batches": n,
            "vary": feasible[0]["vary"],
            "core_index": core,
            "ci_low": [lo for lo, _ in intervals],
            "ci_high": [hi for _, hi in intervals],
            "class": [classify(c) for c in core],
            "mean_fund_usd": mean_fund,
        }
    ).sort_values(["core_index", "project_id"], ascending=[False, True], ignore_index=True)


def _batch_table(catalog: Catalog, results: list[dict[str, Any]]) -> pd.DataFrame:
    ids = np.asarray(catalog.project_ids)
    return pd.DataFrame(
        {
            "batch": [r["batch"] for r in results],
            "first_scenario": [r["first_scenario"] for r in results],
            "status": [r["status"] for r in results],
            "objective": [r["objective"] for r in results],
            "capital_usd": [
                None if r["fund_usd"] is None else float(r["fund_usd"].sum()) for r in results
            ],
            "selected": ["" if r["y"] is None else ";".join(ids[r["y"] > 0.5]) for r in results],
            "seconds": [r["seconds"] for r in results],
        }
    )


def write_robustness(
    core: pd.DataFrame,
    batches: pd.DataFrame,
    out: Path,
    ident: dict[str, str] | None = None,
) -> Path:
    """``robustness.csv``, ``batches.csv`` and ``robustness.html`` into ``out``, atomically;
    ``ident``: the sweep's identity for the page (:func:`portopt.sweeps.html.identity`)."""
    with staged_output(Path(out)) as tmp:
        write_csv(core, tmp / ROBUSTNESS_CSV)
        write_csv(batches, tmp / BATCHES_CSV)
        page_html = robustness_html(core, batches, ident)
        (tmp / ROBUSTNESS_HTML).write_text(page_html, encoding="utf-8")
    return Path(out)


def status_counts(batches: pd.DataFrame) -> str:
    """How the batches ended, in words: e.g. ``20 batches: 17 optimal, 3 stopped at the time
    limit (feasible, not proven optimal)``."""
    words = {
        "optimal": "optimal",
        "time_limit": "stopped at the time limit (feasible, not proven optimal)",
        "greedy": "greedy only (no solver answer)",
        "infeasible": "infeasible",
        "error": "solver error",
    }
    counts = batches["status"].value_counts()
    parts = [f"{counts[s]} {words.get(s, s)}" for s in (*words, *counts.index) if s in counts]
    return f"{len(batches)} batches: " + ", ".join(dict.fromkeys(parts))


def robustness_html(
    core: pd.DataFrame, batches: pd.DataFrame, ident: dict[str, str] | None = None
) -> str:
    """The robustness page: core index with its interval per project, and the table in
    words and units (percentages, $B)."""
    shown = core[core["selected_in"] > 0]
    fig = core_index_figure(shown, dict(zip(shown["project_id"], shown["name"], strict=True)))
    vary = vary_of(core)
    return page(
        "portopt robustness",
        f"The portfolio was re-optimised on independent batches, on {vary.drawn}"
        f" ({status_counts(batches)}). A project's core index is the share of feasible batches"
        " that select it, with a 95% Wilson interval: core at 90% or more (chosen whatever"
        f" {vary.whatever}), exterior at 10% or less, borderline between. Projects never"
        " selected are listed in the table only.",
        [fig],
        _shown(core),  # the intro says what the batches drew
        ident,
    )


def _shown(core: pd.DataFrame) -> pd.DataFrame:
    """The page's table: one row per project, the core index and its interval in percent."""
    return pd.DataFrame(
        {
            "Id": core["project_id"],
            "Project": core["name"],
            "Sector": core["sector"].astype(str).str.replace("_", " "),
            "Core index": [pct(v, 0) for v in core["core_index"]],
            "95% interval": [
                f"{pct(lo, 0)}–{pct(hi, 0)}"
                for lo, hi in zip(core["ci_low"], core["ci_high"], strict=True)
            ],
            "Class": core["class"],
            "Batches selecting it": [
                f"{k} of {n}" for k, n in zip(core["selected_in"], core["batches"], strict=True)
            ],
            "Mean fund money when selected": [
                usd_b(v) if k > 0 else "–"
                for v, k in zip(core["mean_fund_usd"], core["selected_in"], strict=True)
            ],
        }
    )


def check_report(run_dir: Path) -> None:
    """Render ``run_dir``'s report to a scratch file: a folder whose files cannot be reported
    (edited by hand, or not portopt's) exits 2 naming ``--report`` before any batch runs, and
    leaves nothing behind."""
    with tempfile.TemporaryDirectory(prefix="portopt-report-") as scratch:
        try:
            write_report(Path(run_dir), path=Path(scratch) / REPORT_FILE)
        except PortoptError:
            raise
        except Exception as exc:  # the folder's files, not portopt: they are not its output
            message = (
                f"'{run_dir}' cannot be reported ({type(exc).__name__}: {exc}); give the"
                " unedited output folder of a run"
            )
            raise ConfigError([Problem("--report", None, None, message)], "bad --report") from None


def attach_to_report(run_dir: Path, core: pd.DataFrame) -> Path:
    """Re-render ``run_dir/report.html`` with a robustness section, replacing it atomically."""
    path = Path(run_dir) / REPORT_FILE
    with atomic_file(path) as tmp:
        write_report(Path(run_dir), core_indices=core, path=tmp)
    return path
