"""What-if: the base portfolio and a variant's, solved and evaluated on the same scenarios.

A :class:`Variant` adds candidates (:func:`load_additions`), drops candidates (with every
project that depends on them), or changes configuration keys. Both sides are optimised on the
optimisation scenarios :math:`[0, S_{opt})` and evaluated on :math:`[S_{opt}, S_{opt} +
S_{eval})`: the same indices, and with common random numbers (docs/scenario-model.md) a
project's draws depend only on its id, so the projects both sides share see identical draws.
Both portfolios are evaluated over the union catalog (base and added candidates; a side's
absent projects at :math:`y_i = f_i = 0`), so two equal portfolios give bit-identical
per-scenario figures and exact zero deltas.

For a per-scenario figure :math:`x_s` (the coverage score :math:`c_s`, Japan's recovery ratio
:math:`R_s`, the recoupment indicator :math:`[R_s \\ge 1]`; :mod:`portopt.evaluate`) of the
base (B) and the variant (V) on the n evaluation scenarios:

.. math::

    d_s = x^V_s - x^B_s, \\qquad \\Delta = \\bar d = \\frac{1}{n} \\sum_s d_s, \\qquad
    \\mathrm{SE}(\\Delta) = \\frac{1}{\\sqrt{n}}
        \\sqrt{\\frac{1}{n-1} \\sum_s (d_s - \\bar d)^2}, \\qquad z = \\Delta / \\mathrm{SE}.

A delta with :math:`|z| < 2` is *within sampling noise*. Capital and the project count are
exact, not sampled.

Solver noise. A variant that only drops candidates the base left out keeps the base's
portfolio without a re-solve: its feasible set is the base's less some options the base did
not take, so the base's portfolio is still feasible and within the base's MIP gap of the
variant's optimum. Otherwise the variant is solved; when its objective differs from the base's
by no more than the solves' gaps, :math:`|J^V - J^B| \\le \\max(g^B |J^B|, g^V |J^V|)`, each
change to a project the variant did not touch is marked *within the solver's gap*.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portopt.catalog import (
    BUNDLED,
    CAPACITY,
    CHOKEPOINTS,
    PROJECTS,
    Catalog,
    bundled_path,
    load_catalog,
    project_entity,
)
from portopt.config import ProjectSupportConfig, RunConfig
from portopt.errors import CatalogError, ConfigError, InfeasibleError, Problem, did_you_mean
from portopt.evaluate import Aggregates
from portopt.model import Allocation
from portopt.outputs import staged_output, write_csv, write_json
from portopt.pipeline import choose, evaluation_blocks
from portopt.run import OneShot

WHATIF_CSV = "whatif.csv"
WHATIF_JSON = "whatif.json"
NOISE_Z = 2.0
"""|z| below this is within sampling noise (about a 95% two-sided interval around 0)."""
AMOUNT_TOLERANCE_USD = 1e3
"""Fund amounts closer than this are the same: the model solves them in $B to HiGHS's primal
feasibility tolerance of 1e-7 ($100)."""
PAIRING_KEYS = ("seed", "catalog", "scenarios.optimisation", "scenarios.evaluation")
"""Config keys a variant may not change: they would break the pairing of the scenarios (the
candidates change through ``--add`` and ``--drop``)."""
WITHIN_GAP = "within the solver's gap"


@dataclass(frozen=True)
class Variant:
    """What the variant changes: candidates added (a catalog of extra rows against the base's
    chokepoints, :func:`load_additions`), candidate ids dropped, and its configuration (None:
    the base's)."""

    add: Catalog | None = None
    drop: tuple[str, ...] = ()
    config: RunConfig | None = None


@dataclass(frozen=True)
class Delta:
    """One headline figure of both sides; ``se`` is None for an exact (not sampled) figure."""

    figure: str
    base: float
    variant: float
    se: float | None

    @property
    def delta(self) -> float:
        return self.variant - self.base

    @property
    def z(self) -> float | None:
        return self.delta / self.se if self.se else None

    @property
    def noise(self) -> str:
        if self.delta == 0:
            return "no change"
        if self.se is None:
            return "exact"
        if self.se == 0 or abs(self.delta / self.se) >= NOISE_Z:
            return "beyond sampling noise"
        return "within sampling noise"

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "variant": self.variant,
            "delta": self.delta,
            "se": self.se,
            "z": self.z,
            "noise": self.noise,
        }


@dataclass
class WhatIf:
    """The base and the variant side by side.

    ``changes`` is whatif.csv: one row per project whose selection or amount changed, with why
    (``cause``: added, dropped, or blank) and whether it lies ``within the solver's gap``.
    ``kept_base``: the variant kept the base's portfolio without a re-solve; ``within_gap``:
    the objectives differ by no more than ``gap_tolerance`` (the module docstring).
    """

    description: str
    base: Allocation
    variant: Allocation
    changes: pd.DataFrame
    deltas: list[Delta]
    kept_base: bool
    gap_tolerance: float | None
    within_gap: bool
    scenarios: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """whatif.json: the variant, both solves, the headline deltas and the changes."""
        return {
            "variant": self.description,
            "base_solve": _solve_summary(self.base),
            "variant_solve": {**_solve_summary(self.variant), "kept_base": self.kept_base},
            "solver_noise": {
                "objective_delta": None
                if self.base.objective is None or self.variant.objective is None
                else self.variant.objective - self.base.objective,
                "gap_tolerance": self.gap_tolerance,
                "within_gap": self.within_gap,
            },
            "scenarios": self.scenarios,
            "deltas": {d.figure: d.as_dict() for d in self.deltas},
            "projects": {
                change: self.changes.loc[self.changes["change"] == change, "project_id"].tolist()
                for change in ("in", "out", "more", "less")
            },
        }


def _solve_summary(allocation: Allocation) -> dict[str, Any]:
    return {
        "status": allocation.status,
        "solver": allocation.solver,
        "objective": allocation.objective,
        "bound": allocation.bound,
        "mip_gap": allocation.mip_gap,
        "projects_selected": len(allocation.selected),
        "capital_committed_usd": allocation.capital_usd,
    }


# ------------------------------------------------------------------------ building the variant


def load_additions(folder: str | Path, base: Catalog) -> Catalog:
    """The candidate rows of ``folder`` (its projects.csv, and optionally capacity.csv, in the
    catalog's columns) against the chokepoints of ``base``.

    The rows are validated as a catalog of their own, with the base's chokepoints.csv, so each
    problem names the added file, row and column; an added row's ``depends_on`` and ``excludes``
    name added rows only. An id already in ``base``, or one whose random-number entity collides
    with a base project's, is a problem too. Raises :class:`CatalogError` listing every problem.
    """
    folder = Path(folder)
    projects = folder / PROJECTS.file
    if not projects.is_file():
        raise CatalogError(
            [Problem(str(projects), None, None, "missing file; --add FOLDER holds projects.csv")],
            "bad --add",
        )
    with tempfile.TemporaryDirectory(prefix="portopt-add-") as tmp:
        staged = Path(tmp)
        shutil.copyfile(projects, staged / PROJECTS.file)
        shutil.copyfile(_chokepoints_file(base), staged / CHOKEPOINTS.file)
        capacity = folder / CAPACITY.file
        if capacity.is_file():
            shutil.copyfile(capacity, staged / CAPACITY.file)
        else:
            header = ",".join(c.name for c in CAPACITY.columns if not c.optional)
            (staged / CAPACITY.file).write_text(header + "\n", encoding="utf-8")
        try:
            added = load_catalog(staged)
        except CatalogError as exc:
            renamed = [
                replace(p, file=p.file.replace(str(staged), str(folder))) for p in exc.problems
            ]
            raise CatalogError(
                renamed, f"{len(renamed)} problem(s) in the added candidates {folder}"
            ) from None
    added = Catalog(added.projects, added.chokepoints, added.capacity, str(folder))
    problems = list(_clashes(added, base, str(projects)))
    if problems:
        raise CatalogError(problems, f"{len(problems)} problem(s) in the added candidates {folder}")
    return added


def _chokepoints_file(catalog: Catalog) -> Path:
    folder = bundled_path() if catalog.source == BUNDLED else Path(catalog.source)
    path = folder / CHOKEPOINTS.file
    if not path.is_file():
        raise CatalogError(
            [Problem(str(path), None, None, "the base catalog's chokepoints.csv is not on disk")],
            "bad --add",
        )
    return path


def _clashes(added: Catalog, base: Catalog, file: str) -> Iterator[Problem]:
    entities = {project_entity(pid): pid for pid in base.project_ids}
    for pid in added.project_ids:
        if pid in base.projects.index:
            yield Problem(
                file, None, "id", f"'{pid}' is already a candidate of the base catalog; rename it"
            )
        elif project_entity(pid) in entities:
            yield Problem(
                file,
                None,
                "id",
                f"'{pid}' has the random-number entity of the base's '"
                f"{entities[project_entity(pid)]}' (docs/scenario-model.md); rename it",
            )


def union_catalog(base: Catalog, added: Catalog | None) -> Catalog:
    """The base catalog followed by the added rows (the chokepoints are the base's)."""
    if added is None:
        return base
    return Catalog(
        pd.concat([base.projects, added.projects]),
        base.chokepoints,
        pd.concat([base.capacity, added.capacity]),
        base.source,
    )


def dropped_projects(catalog: Catalog, drop: tuple[str, ...]) -> dict[str, str]:
    """Each project the variant loses and why: dropped, or depends on a dropped project
    (transitively). An unknown id is a :class:`ConfigError` with "did you mean"."""
    ids = catalog.project_ids
    problems = []
    for pid in drop:
        if pid not in catalog.projects.index:
            hint = did_you_mean(pid, ids)
            problems.append(Problem("--drop", None, None, f"unknown project '{pid}'{hint}"))
    if problems:
        raise ConfigError(problems, "bad --drop")
    lost = dict.fromkeys(drop, "dropped")
    grew = True
    while grew:
        grew = False
        for pid, needs in catalog.projects["depends_on"].items():
            gone = [j for j in needs if j in lost]
            if pid not in lost and gone:
                lost[pid] = f"dropped: depends on {gone[0]}"
                grew = True
    return lost


def describe(variant: Variant, base_config: RunConfig, lost: dict[str, str]) -> str:
    """The variant in words: added and dropped ids, and each configuration key it changes."""
    parts = []
    if variant.add is not None:
        parts.append("add " + ", ".join(variant.add.project_ids))
    if lost:
        shown = (p if why == "dropped" else f"{p} ({why})" for p, why in lost.items())
        parts.append("drop " + ", ".join(shown))
    if variant.config is not None:
        parts += [
            f"set {key}={new!r} (base {old!r})"
            for key, old, new in _changed_keys(base_config, variant.config)
        ]
    return "; ".join(parts) or "no change"


def _entry_default(key: str) -> Any:
    """The default of a key of a ``support.projects.<id>`` entry (a new entry's keys the user
    did not set are not listed as changes); a sentinel no value equals for any other key."""
    field = key.rsplit(".", 1)[-1]
    if key.startswith("support.projects.") and field in ProjectSupportConfig.model_fields:
        return ProjectSupportConfig.model_fields[field].default
    return _NO_DEFAULT


_NO_DEFAULT = object()


def _changed_keys(base: RunConfig, other: RunConfig) -> list[tuple[str, Any, Any]]:
    """``(dotted key, base value, other value)`` for every leaf that differs."""
    a = pd.json_normalize(base.model_dump(mode="json")).iloc[0].to_dict()
    b = pd.json_normalize(other.model_dump(mode="json")).iloc[0].to_dict()
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _check_pairing(base: RunConfig, variant: RunConfig) -> None:
    problems = [
        Problem(
            f"--variant-set {key}",
            None,
            None,
            f"a what-if compares both sides on the same scenarios and candidates; set {key}"
            " for both sides (--set or the config), or use --add/--drop for the candidates",
        )
        for key, _, _ in _changed_keys(base, variant)
        if key in PAIRING_KEYS
    ]
    if base.scenarios.evaluation < 2:
        problems.append(
            Problem(
                "scenarios.evaluation",
                None,
                None,
                f"is {base.scenarios.evaluation}; a what-if needs at least 2 evaluation scenarios"
                " for the paired standard errors",
            )
        )
    if problems:
        raise ConfigError(problems, "bad what-if")


# ----------------------------------------------------------------------------- the comparison


def whatif(catalog: Catalog, config: RunConfig, variant: Variant) -> WhatIf:
    """Solve the base (``catalog``, ``config``) and the ``variant`` on the same scenarios and
    compare them (the module docstring).

    Raises :class:`ConfigError` for a bad variant, :class:`InfeasibleError` naming the side
    (base or variant) that no portfolio satisfies.
    """
    variant_config = variant.config or config
    _check_pairing(config, variant_config)
    union = union_catalog(catalog, variant.add)
    lost = dropped_projects(union, variant.drop)
    kept = [p for p in union.project_ids if p not in lost]
    if not kept:
        raise ConfigError([Problem("--drop", None, None, "drops every candidate")], "bad --drop")
    variant_catalog = union.subset(kept)
    description = describe(variant, config, lost)

    base = _solve(catalog, config, "base")
    only_drops = variant.add is None and variant_config == config
    kept_base = only_drops and not set(base.selected) & set(lost)
    if kept_base:
        rows = [catalog.project_ids.index(p) for p in kept]
        solved = replace(
            base,
            ids=kept,
            y=base.y[rows],
            fund_usd=base.fund_usd[rows],
            notes=[*base.notes, "the base's portfolio: the variant drops only what it left out"],
        )
    else:
        solved = _solve(variant_catalog, variant_config, f"variant ({description})")
    portfolios = [_over_union(union, base), _over_union(union, solved)]
    aggregates = _paired_aggregates(union, [config, variant_config], portfolios)
    tolerance, within = _solver_noise(base, solved)
    within_gap = within and not kept_base
    s_opt, s_eval = config.scenarios.optimisation, config.scenarios.evaluation
    return WhatIf(
        description,
        base,
        solved,
        _changes(union, portfolios, lost, variant.add, within_gap),
        _deltas(portfolios, aggregates),
        kept_base,
        tolerance,
        within_gap,
        {
            "optimisation": {"first": 0, "count": s_opt},
            "evaluation": {"first": s_opt, "count": s_eval},
        },
    )


def _solve(catalog: Catalog, config: RunConfig, side: str) -> Allocation:
    try:
        return choose(OneShot(), config, catalog).allocation
    except InfeasibleError as exc:
        raise InfeasibleError(
            f"the {side} is infeasible: no portfolio satisfies every enabled constraint group",
            exc.explanation,
        ) from None


def _over_union(union: Catalog, allocation: Allocation) -> tuple[np.ndarray, np.ndarray]:
    """``(y, f)`` of ``allocation`` over the union's projects, zero where it has none."""
    y, f = np.zeros(len(union.project_ids)), np.zeros(len(union.project_ids))
    rows = pd.Index(union.project_ids).get_indexer(allocation.ids)
    y[rows], f[rows] = allocation.y, allocation.fund_usd
    return y, f


def _paired_aggregates(
    union: Catalog, configs: list[RunConfig], portfolios: list[tuple[np.ndarray, np.ndarray]]
) -> list[Aggregates]:
    """Both portfolios folded over the evaluation scenarios, each in its side's configuration
    (generated once when the two configurations are equal)."""
    n = configs[0].scenarios.evaluation
    aggregates = [Aggregates(union, y, f, n) for y, f in portfolios]
    if configs[0] == configs[1]:
        for block in evaluation_blocks(union, configs[0]):
            for agg in aggregates:
                agg.add(block)
    else:
        for agg, cfg in zip(aggregates, configs, strict=True):
            for block in evaluation_blocks(union, cfg):
                agg.add(block)
    return aggregates


def _deltas(
    portfolios: list[tuple[np.ndarray, np.ndarray]], aggregates: list[Aggregates]
) -> list[Delta]:
    (yb, fb), (yv, fv) = portfolios
    b, v = aggregates
    rb, rv = b.recovery(), v.recovery()
    return [
        Delta("projects_selected", float((yb > 0.5).sum()), float((yv > 0.5).sum()), None),
        Delta("capital_committed_usd", float(fb.sum()), float(fv.sum()), None),
        _paired_delta("coverage_score", b.score[: b.n], v.score[: v.n]),
        _paired_delta("recovery_ratio", rb, rv),
        _paired_delta("p_recoup", (rb >= 1.0).astype(float), (rv >= 1.0).astype(float)),
    ]


def _paired_delta(figure: str, base: np.ndarray, variant: np.ndarray) -> Delta:
    d = variant - base
    return Delta(
        figure, float(base.mean()), float(variant.mean()), float(d.std(ddof=1) / np.sqrt(d.size))
    )


def _solver_noise(base: Allocation, variant: Allocation) -> tuple[float | None, bool]:
    """:math:`\\max(g^B |J^B|, g^V |J^V|)` and whether :math:`|J^V - J^B|` lies within it;
    ``(None, False)`` when a solve has no objective."""
    jb, jv = base.objective, variant.objective
    if jb is None or jv is None:
        return None, False
    tolerance = max((base.mip_gap or 0.0) * abs(jb), (variant.mip_gap or 0.0) * abs(jv))
    return tolerance, abs(jv - jb) <= tolerance


def _changes(
    union: Catalog,
    portfolios: list[tuple[np.ndarray, np.ndarray]],
    lost: dict[str, str],
    added: Catalog | None,
    within_gap: bool,
) -> pd.DataFrame:
    (yb, fb), (yv, fv) = portfolios
    selected_b, selected_v = yb > 0.5, yv > 0.5
    change = np.select(
        [
            selected_v & ~selected_b,
            selected_b & ~selected_v,
            fv - fb > AMOUNT_TOLERANCE_USD,
            fb - fv > AMOUNT_TOLERANCE_USD,
        ],
        ["in", "out", "more", "less"],
        default="",
    )
    new = set() if added is None else set(added.project_ids)
    cause = [lost.get(p, "added" if p in new else "") for p in union.project_ids]
    p = union.projects
    table = pd.DataFrame(
        {
            "project_id": union.project_ids,
            "name": p["name"].astype(str).to_numpy(),
            "sector": p["sector"].astype(str).to_numpy(),
            "change": change,
            "base_fund_usd": np.round(fb, 2),
            "variant_fund_usd": np.round(fv, 2),
            "delta_fund_usd": np.round(fv - fb, 2),
            "cause": cause,
            "noise": [WITHIN_GAP if within_gap and not c else "" for c in cause],
        }
    )
    return table[table["change"] != ""].reset_index(drop=True)


def write_whatif(result: WhatIf, target: Path, overwrite: bool = True) -> None:
    """Write whatif.csv and whatif.json into ``target``, all or nothing."""
    with staged_output(target, overwrite) as tmp:
        write_csv(result.changes, tmp / WHATIF_CSV)
        write_json(result.summary(), tmp / WHATIF_JSON)


# ------------------------------------------------------------------------------ plans


PLAN_FIGURES = (
    ("proposals", "projects", None),
    ("proposed_usd", "plan", "proposed_usd"),
    ("committed_expected_usd", "plan", "committed_expected_usd"),
    ("coverage_score", "plan", "coverage"),
    ("recovery_ratio", "oos", "recovery_ratio"),
    ("p_recoup", "oos", "p_recoup"),
)
"""whatif.json's figures of a plan what-if: (figure, where in metrics.json, key)."""
NOT_IN_BASE = "not in the base plan"
IN_BASE = "already in the base plan"


@dataclass
class PlanWhatIf:
    """The base plan and the variant's, each a full plan (:func:`portopt.planning.run_plan`)
    on the same optimisation and evaluation scenarios.

    ``changes`` is whatif.csv: one row per project whose round or amount changed, or that the
    variant forces or drops, with why (``cause``) and, for a project forced out or dropped
    that the base plan had left out, ``not in the base plan``. ``kept_base``: the variant only
    takes out projects the base plan left out, so the base plan is its plan too (no re-solve).
    The figures are the two plans' own (coverage and capital expected committed with Japan's
    declines, out of sample); they are not paired per scenario, so no standard error is given.
    """

    description: str
    base: dict[str, Any]
    variant: dict[str, Any]
    changes: pd.DataFrame
    kept_base: bool
    not_in_base: list[str]

    def deltas(self) -> dict[str, dict[str, Any]]:
        out = {}
        for figure, _, _ in PLAN_FIGURES:
            b, v = _plan_figure(self.base, figure), _plan_figure(self.variant, figure)
            delta = None if b is None or v is None else v - b
            out[figure] = {"base": b, "variant": v, "delta": delta, "se": None}
        return out

    def summary(self) -> dict[str, Any]:
        """whatif.json of a plan what-if."""
        return {
            "model": "plan",
            "variant": self.description,
            "base_solve": _plan_solve(self.base),
            "variant_solve": {**_plan_solve(self.variant), "kept_base": self.kept_base},
            "not_in_base_plan": self.not_in_base,
            "us_support": {
                "base": self.base.get("support"),
                "variant": self.variant.get("support"),
                "cost_expected_usd": (self.variant.get("support") or {}).get(
                    "cost_expected_usd", 0.0
                )
                - (self.base.get("support") or {}).get("cost_expected_usd", 0.0),
            },
            "deltas": self.deltas(),
            "note": "each side is a full plan; the figures are each plan's own, not paired per"
            " scenario (no standard error)",
            "projects": {
                change: self.changes.loc[self.changes["change"] == change, "project_id"].tolist()
                for change in ("in", "out", "moved", "more", "less")
            },
        }


def _plan_figure(metrics: dict[str, Any], figure: str) -> float | None:
    where, key = next((w, k) for f, w, k in PLAN_FIGURES if f == figure)
    if where == "projects":
        return float(metrics["projects"]["selected"])
    if where == "plan":
        return float(metrics["plan"][key])
    oos = metrics.get("out_of_sample") or {}
    value = oos.get(key)
    if isinstance(value, dict):
        value = value.get("mean")
    return None if value is None else float(value)


def _plan_solve(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": metrics.get("status"),
        "solver": metrics.get("solver"),
        "objective": metrics.get("objective"),
        "mip_gap": metrics.get("mip_gap"),
        "proposals": metrics["projects"]["selected"],
        "committed_expected_usd": metrics["plan"]["committed_expected_usd"],
    }


def _check_rounds(
    forcing: Any, catalog: Any, config: RunConfig, commitments: str | Path | None
) -> None:
    """A project forced in at a round it has no column in, refused before any plan runs (the
    model refuses it too, but after the base plan and the variant's scenarios)."""
    from portopt.model.forcing import not_proposable
    from portopt.planning import Plan

    asked = {pid: q for pid, q in forcing.force_in.items() if q}
    if not asked:
        return
    job = Plan(commitments)
    projects = job.columns(catalog, job.prepare(config)).catalog.projects
    problems = []
    for pid, quarter in asked.items():
        rounds = set(projects.loc[projects["project"] == pid, "proposal_quarter"])
        if quarter not in rounds:
            problems.append(not_proposable(pid, quarter, rounds))
    if problems:
        raise ConfigError(problems, "bad what-if")


def whatif_plan(
    config: RunConfig,
    variant_config: RunConfig | None = None,
    commitments: str | Path | None = None,
    forcing: Any = None,
    drop: tuple[str, ...] = (),
) -> PlanWhatIf:
    """The base plan and the variant's (``variant_config``, projects forced in or out by
    ``forcing`` (:class:`portopt.model.forcing.Forcing`), ``drop``: projects taken out with
    every project that depends on them), both on ``commitments``.

    Raises :class:`ConfigError` for a bad variant, :class:`InfeasibleError` naming the side
    that no plan satisfies.
    """
    from portopt.model.forcing import Forcing
    from portopt.planning import run_plan
    from portopt.tradeoff import plan_only

    variant_config = variant_config or config
    _check_pairing(config, variant_config)
    catalog = load_catalog(config.catalog)
    lost = dropped_projects(catalog, drop)
    forcing = forcing or Forcing()
    for pid in forcing.force_in:
        if pid in lost:
            raise ConfigError(
                [Problem("--force-in", None, None, f"'{pid}' is also dropped ({lost[pid]})")],
                "bad what-if",
            )
    ids = catalog.project_ids
    problems = [
        Problem(option, None, None, f"unknown project '{pid}'{did_you_mean(pid, ids)}")
        for option, pids in (("--force-in", forcing.force_in), ("--force-out", forcing.force_out))
        for pid in pids
        if pid not in catalog.projects.index
    ]
    problems += forcing.both_ways()
    if problems:
        raise ConfigError(problems, "bad what-if")
    _check_rounds(forcing, catalog, variant_config, commitments)
    out_forced = dict.fromkeys(forcing.force_out, "forced out")
    out_all = {**lost, **out_forced}
    side = Forcing(dict(forcing.force_in), tuple(out_all))
    parts = [f"force {p} in" + (f" at {q}" if q else "") for p, q in forcing.force_in.items()]
    if lost:
        shown = (p if why == "dropped" else f"{p} ({why})" for p, why in lost.items())
        parts.append("drop " + ", ".join(shown))
    parts += [f"force {p} out" for p in forcing.force_out]
    parts += [
        f"set {key}={new!r} (base {old!r})"
        for key, old, new in _changed_keys(config, variant_config)
        if not (old is None and new == _entry_default(key))  # a new entry's defaults
    ]
    description = "; ".join(parts) or "no change"
    try:
        base = run_plan(plan_only(config), commitments, write=False)
    except InfeasibleError as exc:
        raise InfeasibleError("the base plan is infeasible", exc.explanation) from None
    plan_b = _plan_frame(base.plan)
    status = base.plan["status"].astype(str) if base.plan is not None else pd.Series(dtype=str)
    held_ids = base.plan["project_id"].astype(str) if base.plan is not None else status
    committed = set(held_ids[status == "committed"])
    fixed = [
        Problem(
            "--drop" if pid in lost else "--force-out",
            None,
            None,
            f"'{pid}' is committed (the commitments): the plan holds it whatever the variant, so"
            " it cannot be forced out or dropped; plan without it with a commitments file that"
            " leaves it out",
        )
        for pid in out_all
        if pid in committed
    ]
    if fixed:
        raise ConfigError(fixed, "bad what-if")
    chosen = set(plan_b["project"])
    not_in_base = [p for p in out_all if p not in chosen]
    rounds = dict(zip(plan_b["project"], plan_b["proposal_quarter"], strict=True))
    held = all(p in rounds and q in (None, rounds[p]) for p, q in forcing.force_in.items())
    kept = held and variant_config == config and not set(out_all) & chosen
    if kept:
        variant, plan_v = base, plan_b
    else:
        try:
            variant = run_plan(plan_only(variant_config), commitments, write=False, forcing=side)
        except InfeasibleError as exc:
            raise InfeasibleError(
                f"the variant ({description}) is infeasible", exc.explanation
            ) from None
        plan_v = _plan_frame(variant.plan)
    changes = _plan_changes(catalog, plan_b, plan_v, forcing, lost, set(not_in_base))
    return PlanWhatIf(description, base.metrics, variant.metrics, changes, bool(kept), not_in_base)


def _plan_frame(plan: pd.DataFrame | None) -> pd.DataFrame:
    """plan.csv's project, round and amount columns, as text and numbers."""
    columns = ["project", "proposal_quarter", "fund_usd"]
    if plan is None:
        return pd.DataFrame(columns=columns)
    # a plan's result carries plan.csv's names (portopt.schema): the key is project_id
    out = plan.rename(columns={"project_id": "project"})[columns].copy()
    out["project"] = out["project"].astype(str)
    out["proposal_quarter"] = out["proposal_quarter"].astype(str)
    return out


def _plan_changes(
    catalog: Catalog,
    base: pd.DataFrame,
    variant: pd.DataFrame,
    forcing: Any,
    lost: dict[str, str],
    not_in_base: set[str],
) -> pd.DataFrame:
    """One row per project that changed round or amount, or that the variant names."""
    b = base.set_index(base["project"].astype(str))
    v = variant.set_index(variant["project"].astype(str))
    named = {
        **{p: "forced in" + (f" at {q}" if q else "") for p, q in forcing.force_in.items()},
        **{p: "forced out" for p in forcing.force_out},
        **lost,
    }
    rows = []
    for pid in catalog.project_ids:
        in_b, in_v = pid in b.index, pid in v.index
        fb = float(b.loc[pid, "fund_usd"]) if in_b else 0.0
        fv = float(v.loc[pid, "fund_usd"]) if in_v else 0.0
        qb = str(b.loc[pid, "proposal_quarter"]) if in_b else ""
        qv = str(v.loc[pid, "proposal_quarter"]) if in_v else ""
        if in_v and not in_b:
            change = "in"
        elif in_b and not in_v:
            change = "out"
        elif in_b and qb != qv:
            change = "moved"
        elif fv - fb > AMOUNT_TOLERANCE_USD:
            change = "more"
        elif fb - fv > AMOUNT_TOLERANCE_USD:
            change = "less"
        else:
            change = ""
        if not change and pid not in named:
            continue
        rows.append(
            {
                "project_id": pid,
                "name": str(catalog.projects.loc[pid, "name"]),
                "sector": str(catalog.projects.loc[pid, "sector"]),
                "change": change,
                "base_quarter": qb,
                "variant_quarter": qv,
                "base_fund_usd": round(fb, 2),
                "variant_fund_usd": round(fv, 2),
                "delta_fund_usd": round(fv - fb, 2),
                "cause": named.get(pid, ""),
                "note": NOT_IN_BASE
                if pid in not_in_base
                else IN_BASE
                if pid in forcing.force_in and in_b
                else "",
            }
        )
    columns = [
        "project_id",
        "name",
        "sector",
        "change",
        "base_quarter",
        "variant_quarter",
        "base_fund_usd",
        "variant_fund_usd",
        "delta_fund_usd",
        "cause",
        "note",
    ]
    return pd.DataFrame(rows, columns=columns)


def write_plan_whatif(result: PlanWhatIf, target: Path, overwrite: bool = True) -> None:
    """Write whatif.csv and whatif.json of a plan what-if into ``target``, all or nothing."""
    with staged_output(target, overwrite) as tmp:
        write_csv(result.changes, tmp / WHATIF_CSV)
        write_json(result.summary(), tmp / WHATIF_JSON)
