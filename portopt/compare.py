"""Round over round: what changed since a previous plan, and why (``portopt plan --compare``).

``portopt plan --commitments NEW --compare RUN_DIR`` plans as usual, then compares the new plan
with the one in ``RUN_DIR`` (a folder ``portopt plan`` wrote: its ``plan.csv`` and
``metrics.json``) and writes ``compare.csv`` (columns: :data:`portopt.schema.COMPARE_COLUMNS`)
and metrics.json's ``compare``. Each project in either plan whose status, round or amount
changed is one row, with its change and why:

- ``committed``: the new commitments fix it (it was a proposal, or not in the previous plan);
- ``declined``: the previous plan proposed it in a round the new plan counts as decided (before
  its first open round) and the new commitments do not hold it: Japan declined it, or it was
  not proposed (the commitments file records only what was funded);
- ``added``, ``dropped``, ``moved`` (another round), ``resized`` (another amount, by more than
  :data:`AMOUNT_TOLERANCE`): the re-plan around those decisions and the changed inputs.

The changed inputs (:func:`input_changes`) are read from the two runs' metrics.json: the
catalog, the seed, the scenario counts, the budget, the target, the deadline and the rounds,
and the configuration's hash (any other key); a project whose expected recovery on its round
moved by more than :data:`RECOVERY_TOLERANCE` says so (its economics changed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.errors import ConfigError, Problem
from portopt.schema import COMPARE_COLUMNS, COMPARE_FILE, PLAN_FILE

METRICS_FILE = "metrics.json"
AMOUNT_TOLERANCE = 0.005
"""A project is ``resized`` when its fund moves by more than this share (and $1M)."""
RECOVERY_TOLERANCE = 0.01
"""A project's economics changed when its expected recovery ratio moves by more than this."""
NEEDED = ("project_id", "status", "proposal_quarter", "fund_usd")
"""plan.csv's columns the comparison reads."""


@dataclass(frozen=True)
class Previous:
    """A previous plan: its folder, plan.csv and metrics.json."""

    folder: Path
    plan: pd.DataFrame
    metrics: dict[str, Any]


def load_previous(folder: str | Path) -> Previous:
    """The plan in ``folder``; :class:`ConfigError` naming ``--compare`` when the folder is
    missing, is not a plan's output, or its files are unreadable."""
    path = Path(folder)

    def bad(message: str) -> ConfigError:
        return ConfigError([Problem("--compare", None, None, message)], "bad --compare")

    if not path.is_dir():
        raise bad(f"'{path}' is not a folder (give the output folder of a previous plan)")
    plan_path, metrics_path = path / PLAN_FILE, path / METRICS_FILE
    for p in (plan_path, metrics_path):
        if not p.is_file():
            raise bad(f"'{path}' holds no {p.name}: not the output folder of `portopt plan`")
    try:
        plan = pd.read_csv(plan_path, keep_default_na=False, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise bad(f"{plan_path} cannot be read as CSV: {exc}") from None
    missing = [c for c in NEEDED if c not in plan.columns]
    if missing:
        raise bad(f"{plan_path} lacks the column(s) {', '.join(missing)}: not a plan.csv")
    fund = pd.to_numeric(plan["fund_usd"], errors="coerce")
    wrong = fund.isna() | ~np.isfinite(fund.fillna(0.0))
    if wrong.any():
        row = int(wrong.to_numpy().argmax()) + 2
        raise bad(f"{plan_path} row {row}, fund_usd: '{plan['fund_usd'].iloc[row - 2]}'")
    plan["fund_usd"] = fund
    try:
        metrics = json.loads(metrics_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise bad(f"{metrics_path} is not JSON: {exc}") from None
    except RecursionError:
        raise bad(f"{metrics_path} is not JSON portopt wrote: nested too deeply") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("plan"), dict):
        raise bad(f"{metrics_path} has no plan figures: not the output of `portopt plan`")
    made = metrics["plan"].get("commitments")
    if made is not None and not (isinstance(made, list) and all(isinstance(c, dict) for c in made)):
        raise bad(f"{metrics_path}: plan.commitments is not a list of commitments")
    return Previous(path, plan, metrics)


INPUTS = (
    (("catalog",), "catalog"),
    (("seed",), "seed"),
    (("scenarios", "optimisation", "count"), "optimisation scenarios"),
    (("scenarios", "evaluation", "count"), "evaluation scenarios"),
    (("budget_usd",), "budget"),
    (("plan", "target_usd"), "target"),
    (("plan", "target_kind"), "target kind"),
    (("plan", "deadline"), "deadline"),
    (("plan", "review_capacity_per_window"), "review capacity a round"),
)
"""The inputs compared by name: metrics.json's path and the words for it."""


def _get(metrics: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = metrics
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _shown(x: Any) -> str:
    if isinstance(x, float) and abs(x) >= 1e6:
        return f"${x / 1e9:,.1f}B"
    return str(x)


def input_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The inputs that differ between two runs' metrics.json, in words; the configuration's
    hash last when it differs and no named input explains it."""
    out = [
        f"{words}: {_shown(_get(before, path))} -> {_shown(_get(after, path))}"
        for path, words in INPUTS
        if _get(before, path) != _get(after, path)
    ]
    if not out and before.get("config_hash") != after.get("config_hash"):
        out.append(
            f"configuration (hash {before.get('config_hash')} -> {after.get('config_hash')})"
        )
    return out


def _commitments(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    made = _get(metrics, ("plan", "commitments")) or []
    return {str(c["project_id"]): c for c in made if isinstance(c, dict) and "project_id" in c}


def _rows(plan: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(r["project_id"]): r for r in plan.to_dict("records")}


def compare_plans(
    previous: Previous, plan: pd.DataFrame, metrics: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """compare.csv (one row per project that changed) and metrics.json's ``compare``: the
    previous folder, the inputs that changed, the projects newly committed and declined, and
    the count of each change (the module docstring)."""
    before, after = _rows(previous.plan), _rows(plan)
    made_before, made_after = _commitments(previous.metrics), _commitments(metrics)
    first_open = str(_get(metrics, ("plan", "first_quarter")) or "")
    inputs = input_changes(previous.metrics, metrics)
    newly = sorted(set(made_after) - set(made_before))
    gone = [
        pid
        for pid, r in before.items()
        if str(r["status"]) != "committed"
        and pid not in made_after
        and first_open
        and str(r["proposal_quarter"]) < first_open
    ]
    context = []
    if newly:
        context.append(f"{len(newly)} newly committed")
    if gone:
        context.append(f"{len(gone)} declined")
    replan = "the re-plan around " + (
        "; ".join(context + inputs) if context or inputs else "the same inputs (solver noise)"
    )
    rows = []
    for pid in sorted(set(before) | set(after)):
        b, a = before.get(pid), after.get(pid)
        change, why = _change(pid, b, a, made_after, pid in gone, first_open, replan)
        if change is None:
            continue
        r_b = _ratio(b)
        r_a = _ratio(a)
        if r_b is not None and r_a is not None and abs(r_a - r_b) > RECOVERY_TOLERANCE:
            why += f"; its expected recovery moved {r_b:.2f} -> {r_a:.2f} (its inputs changed)"
        fb = float(b["fund_usd"]) if b is not None else 0.0
        fa = float(a["fund_usd"]) if a is not None else 0.0
        rows.append(
            {
                "project_id": pid,
                "name": (a or b or {}).get("name", ""),
                "change": change,
                "previous_status": b["status"] if b is not None else "",
                "status": a["status"] if a is not None else "",
                "previous_quarter": b["proposal_quarter"] if b is not None else "",
                "proposal_quarter": a["proposal_quarter"] if a is not None else "",
                "previous_fund_usd": fb,
                "fund_usd": fa,
                "delta_fund_usd": fa - fb,
                "why": why,
            }
        )
    table = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    counts = table["change"].value_counts().to_dict() if len(table) else {}
    prev_plan = previous.metrics.get("plan", {})
    summary = {
        "previous": str(previous.folder),
        "inputs_changed": inputs,
        "newly_committed": newly,
        "declined": sorted(gone),
        "changes": {k: int(v) for k, v in sorted(counts.items())},
        "previous_committed_expected_usd": prev_plan.get("committed_expected_usd"),
        "committed_expected_usd": _get(metrics, ("plan", "committed_expected_usd")),
        "previous_coverage": prev_plan.get("coverage"),
        "coverage": _get(metrics, ("plan", "coverage")),
    }
    return table, summary


def _ratio(row: dict[str, Any] | None) -> float | None:
    if row is None:
        return None
    try:
        value = float(row.get("expected_recovery_ratio", ""))
    except (TypeError, ValueError):
        return None
    return value if value == value else None


def _change(
    pid: str,
    b: dict[str, Any] | None,
    a: dict[str, Any] | None,
    made: dict[str, dict[str, Any]],
    declined: bool,
    first_open: str,
    replan: str,
) -> tuple[str | None, str]:
    """A project's change and why; (None, "") when it did not change."""
    if a is not None and str(a["status"]) == "committed":
        if b is not None and str(b["status"]) == "committed":
            if str(a["proposal_quarter"]) == str(b["proposal_quarter"]) and _same(b, a):
                return None, ""
            return "committed", "the commitments file changed its round or amount"
        c = made.get(pid, {})
        was = (
            f"the previous plan proposed it in {b['proposal_quarter']}"
            if b is not None
            else "the previous plan left it out"
        )
        amount = c.get("amount_usd", a["fund_usd"])
        return "committed", (
            f"committed in {a['proposal_quarter']} with ${float(amount) / 1e9:,.2f}B"
            f" (the new commitments); {was}"
        )
    if declined:
        assert b is not None
        after = f"; re-proposed in {a['proposal_quarter']}" if a is not None else ""
        return "declined", (
            f"proposed in {b['proposal_quarter']} in the previous plan, a round now decided"
            f" (the plan opens in {first_open}), and not among the commitments: Japan declined"
            f" it (or it was not proposed){after}"
        )
    if b is None:
        return "added", replan
    if a is None:
        return "dropped", replan
    if str(a["proposal_quarter"]) != str(b["proposal_quarter"]):
        return "moved", replan
    if not _same(b, a):
        return "resized", replan
    return None, ""


def _same(b: dict[str, Any], a: dict[str, Any]) -> bool:
    fb, fa = float(b["fund_usd"]), float(a["fund_usd"])
    return abs(fa - fb) <= max(1e6, AMOUNT_TOLERANCE * max(abs(fa), abs(fb)))


def read_compare(out_dir: str | Path) -> pd.DataFrame | None:
    """``out_dir/compare.csv`` (text cells as text), or None when the plan was not compared."""
    path = Path(out_dir) / COMPARE_FILE
    if not path.exists():
        return None
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    for column in ("previous_fund_usd", "fund_usd", "delta_fund_usd"):
        table[column] = pd.to_numeric(table[column], errors="coerce").fillna(0.0)
    return table


def compare_section(table: pd.DataFrame, summary: dict[str, Any], kit: Any) -> str:
    """The report's section on what changed since the previous plan (``kit``:
    :class:`portopt.report_plan.Kit`)."""
    counts = ", ".join(f"{n} {k}" for k, n in summary.get("changes", {}).items())
    inputs = summary.get("inputs_changed") or []
    before, after = (
        summary.get("previous_committed_expected_usd"),
        summary.get("committed_expected_usd"),
    )
    money = (
        f" Expected committed capital {kit.usd_b(before)} then, {kit.usd_b(after)} now."
        if before is not None and after is not None
        else ""
    )
    intro = (
        f"Against the plan in {summary.get('previous')}: {counts or 'no project changed'}."
        + (f" Inputs that changed: {'; '.join(inputs)}." if inputs else " No input changed.")
        + money
        + " A project is declined when the previous plan proposed it in a round now decided"
        " and the new commitments do not hold it (compare.csv)."
    )
    rows = [
        [
            r["name"] or r["project_id"],
            r["change"],
            (
                f"{r['previous_quarter'] or '–'} {kit.usd_b(r['previous_fund_usd'])}",
                r["previous_fund_usd"],
            ),
            (f"{r['proposal_quarter'] or '–'} {kit.usd_b(r['fund_usd'])}", r["fund_usd"]),
            r["why"],
        ]
        for r in table.to_dict("records")
    ]
    body = kit.table(
        "compare",
        [
            ("Project", "text"),
            ("Change", "text"),
            ("Before", "num"),
            ("Now", "num"),
            ("Why", "text"),
        ],
        rows,
    )
    return kit.section(
        "compare",
        "Since the previous plan",
        intro,
        kit.fold(f"The {len(rows)} projects that changed", body) if rows else "",
    )


__all__ = [
    "COMPARE_FILE",
    "Previous",
    "compare_plans",
    "compare_section",
    "input_changes",
    "load_previous",
    "read_compare",
]
