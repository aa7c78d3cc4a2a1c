"""Exact marginal values: each candidate's worth to the plan, and each rule's, by re-solving.

Let :math:`z^*` be the base objective (the coverage score, a share, plus the small recovery
tie-break) of the chosen portfolio :math:`y^*`. For candidate :math:`i`

.. math::

    z^{in}_i = \\max \\{ z : y_i = 1 \\}, \\qquad z^{out}_i = \\max \\{ z : y_i = 0 \\},

and its marginal value is :math:`z^{in}_i - z^{out}_i`, in coverage points
(:data:`POINTS` per unit of the objective). One of the two is the base: a selected candidate
needs only the force-out solve (:math:`z^{in}_i = z^*`), a rejected one only the force-in
(:math:`z^{out}_i = z^*`); a committed project cannot be forced out. Each solve is the cut
model's warm re-solve (:class:`~portopt.model.direct.DirectSweep`'s compiled HiGHS instance,
its cuts kept as rows, the bound of :math:`y_i` fixed, the base selection with :math:`y_i`
flipped as the start), to the run's ``solver.mip_gap`` (the time and node limits only as safety
nets, so the values are the same under any load). The MILP is solved to a relative
gap, so a difference smaller than the two solves' gaps together (:func:`gap_bound`),
:math:`|z^a - z^b| \\le g_a z^a + g_b z^b`, is *within the gaps*: not a proven difference.

A rejected candidate's reason is the re-solve's own answer. Forced in, either

- no portfolio satisfies every group: the reason names the groups that keep it out
  (:func:`kept_out_by`), a minimal set :math:`M` of enabled groups such that, with the
  candidate and the committed projects fixed in, the groups of :math:`M` admit no portfolio
  and dropping any one of them admits one (the deletion filter of
  :mod:`portopt.model.explain`, on the cut model); or
- the best plan with it drops the projects it displaces, and the reason gives its coverage
  per dollar beside the plan's (:func:`standalone_points`): the coverage points the project
  closes on its own, per $10B of the least fund money it can take (its minimum fund share of
  its base cost: coverage counts a selected project's capacity whatever the amount, so the
  minimum is its price of entry, and a re-solve's amounts are not unique), against the
  median of the selected projects on the same measure.

**Relaxations**: each integer or combinatorial rule relaxed one step (:data:`STEPS`: one more
project, one more review slot a quarter, a binding sector's maximum +1 point, +$10B of
budget, the recovery floor -0.01, the CVaR tolerance +0.01) and the model re-solved: the
exact effect of that step, where an LP dual of the MILP only prices an infinitesimal step of
a divisible model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from portopt.config import RunConfig
from portopt.model.data import ModelData
from portopt.model.direct import RESOLVE_OPTIONS, DirectModel, DirectResult, DirectSweep
from portopt.model.direct import resolve as resolve_cut_model
from portopt.model.parameters import StructuralChange
from portopt.model.terms import GROUPS, Solution, Term

POINTS = 100.0
"""Coverage points per unit of the objective (the coverage score is a share)."""
RESOLVE_TIME_LIMIT_S = 300.0
"""Safety time limit of one re-solve, at most ``solver.time_limit_s`` (the re-solves are warm
and end on their gap in well under a second; a wall-clock stop would make the values depend on
the load, so it is only a net; a solve that stops here reports its gap)."""


PER_USD_B = 10.0
"""Coverage per dollar is quoted in coverage points per this many $B of fund money."""


@dataclass
class MarginalValue:
    """One candidate's value to the plan, in coverage points relative to the base plan.

    ``kept_out_by``: for a candidate whose force-in is infeasible, the groups (config names
    under ``model.groups``) of a minimal set that keeps it out; ``points_per_10b``: the
    coverage points it closes on its own per $10B of its minimum fund amount
    (:func:`standalone_points`), and ``plan_points_per_10b`` the selected projects' median.
    """

    project_id: str
    selected: bool
    value_if_forced_in: float | None
    value_if_forced_out: float | None
    marginal_value: float | None
    resolve_gap: float | None
    within_gap: bool
    reason: str
    kept_out_by: list[str] = field(default_factory=list)
    points_per_10b: float | None = None
    plan_points_per_10b: float | None = None


@dataclass
class Relaxation:
    """The exact effect of relaxing one rule one step, by re-solving."""

    rule: str
    key: str
    step: str
    base_value: float | None
    relaxed_value: float | None
    coverage_points: float | None
    mip_gap: float | None
    within_gap: bool
    note: str


def _with(config: RunConfig, key: str, value: object) -> RunConfig:
    """``config`` with the dotted ``key`` set to ``value``."""
    tree = config.model_dump()
    node = tree
    *path, leaf = key.split(".")
    for part in path:
        node = node[part]
    node[leaf] = value
    return RunConfig.model_validate(tree)


def resolve_config(config: RunConfig) -> RunConfig:
    limit = min(float(config.solver.time_limit_s), RESOLVE_TIME_LIMIT_S)
    return config.model_copy(
        update={"solver": config.solver.model_copy(update={"time_limit_s": limit})}
    )


def gap_bound(result: DirectResult, config: RunConfig) -> float | None:
    """The re-solve's proven relative gap as reported: ``solver.mip_gap`` when it stopped
    within it (an upper bound of the gap, the same whichever moment HiGHS stopped at), its
    own gap when the time limit stopped it first."""
    if result.status == "optimal":
        return float(config.solver.mip_gap)
    return result.mip_gap


def _within(a: float, ga: float | None, b: float, gb: float | None) -> bool:
    return abs(a - b) <= (ga or 0.0) * abs(a) + (gb or 0.0) * abs(b) + 1e-12


def _forced(
    model: DirectModel,
    config: RunConfig,
    i: int,
    value: float,
    y: np.ndarray,
    pool: list[tuple] | None = None,
) -> DirectResult:
    """The cut model re-solved with ``y_i`` fixed to ``value``, then its bounds restored;
    ``pool``: valid cuts to add as rows once violated."""
    col = np.array([model.ycol[i]], dtype=np.int32)
    lp = model.h.getLp()
    lo, hi = np.asarray(lp.col_lower_)[col].copy(), np.asarray(lp.col_upper_)[col].copy()
    model.h.changeColsBounds(1, col, np.array([value]), np.array([value]))
    start = np.round(y).astype(float)
    start[i] = value
    try:
        return resolve_cut_model(model, config, incumbent=start, pool=pool, incumbent_name="start")
    finally:
        model.h.changeColsBounds(1, col, lo, hi)


def marginal_values(
    sweep: DirectSweep,
    y: np.ndarray,
    objective: float,
    mip_gap: float | None,
    config: RunConfig,
    advance: Callable[[int, int], None] | None = None,
) -> list[MarginalValue]:
    """Each candidate's forced-in and forced-out objective (coverage points) and its reason.

    ``sweep``: the cut model that solved the base plan ``y`` (objective ``objective``, gap
    ``mip_gap``) for ``config``; its HiGHS instance is re-solved with one bound fixed at a time.
    A rejected candidate whose force-in is infeasible is then tested against subsets of the
    groups (:meth:`_GroupTests.kept_out_by`). ``advance(done, total)``: told the count of
    candidates done.
    """
    model = sweep.milp
    if model is None:
        raise ValueError("marginal values need the sweep's base solve first")
    resolve = resolve_config(config)
    ids = sweep.data.ids
    base = POINTS * objective
    alone = standalone_points(sweep)
    fund = sweep.data.f_min
    rates = [_per_10b(alone[i], fund[i]) for i in range(len(ids))]
    chosen_rates = [rates[i] for i in range(len(ids)) if y[i] > 0.5]
    plan_rate = float(np.median([r for r in chosen_rates if r is not None] or [np.nan]))
    plan_rate = plan_rate if np.isfinite(plan_rate) else None
    tests = _GroupTests(sweep, config, y)
    with model.options(RESOLVE_OPTIONS):
        return _marginal_loop(
            model, resolve, config, y, base, mip_gap, rates, plan_rate, tests, advance
        )


def _marginal_loop(
    model: DirectModel,
    resolve: RunConfig,
    config: RunConfig,
    y: np.ndarray,
    base: float,
    mip_gap: float | None,
    rates: list[float | None],
    plan_rate: float | None,
    tests: _GroupTests,
    advance: Callable[[int, int], None] | None,
) -> list[MarginalValue]:
    ids, committed = model.data.ids, model.data.committed
    out = []
    for i, pid in enumerate(ids):
        chosen = bool(y[i] > 0.5)
        if chosen and committed[i]:
            value = MarginalValue(pid, True, base, None, None, None, False, "committed")
        else:
            result = _forced(model, resolve, i, 0.0 if chosen else 1.0, y)
            value = _value(pid, chosen, base, mip_gap, result, gap_bound(result, config), ids, y)
            if not chosen and result.solution is None and result.status == "infeasible":
                value.kept_out_by, lines = tests.kept_out_by(i)
                value.reason = _kept_out_reason(value.kept_out_by, lines, result.status)
            elif not chosen and result.solution is not None:
                value.reason += _rate_words(rates[i], plan_rate)
        value.points_per_10b, value.plan_points_per_10b = rates[i], plan_rate
        out.append(value)
        if advance is not None:
            advance(i + 1, len(ids))
    return out


def standalone_points(sweep: DirectSweep) -> np.ndarray:
    """(n,) the coverage points each project closes on its own: the mean coverage score, on
    the sweep's (optimisation) scenarios, of the portfolio of that project alone, × POINTS.

    Coverage saturates (``min(1, ·)``), so a project's share of a plan's score can be less
    than this; it is the project's own worth, the same whatever else is chosen."""
    n = sweep.data.n
    return np.array([POINTS * sweep.cover.value(np.eye(1, n, i)[0]) for i in range(n)])


def _per_10b(points: float, amount_b: float) -> float | None:
    """``points`` per $10B of ``amount_b`` ($B); None without an amount."""
    return None if amount_b <= 1e-9 else float(points * PER_USD_B / amount_b)


def _rate_words(rate: float | None, plan: float | None) -> str:
    if rate is None:
        return ""
    words = f"; on its own it closes {rate:.2f} coverage points per $10B of its minimum amount"
    if plan is not None:
        words += f", against {plan:.2f} for the median selected project"
    return words


def _kept_out_reason(groups: list[str], lines: list[str], status: str) -> str:
    if not groups:
        return f"forced in, no portfolio satisfies every constraint group ({status})"
    if len(groups) == 1:
        head = f"forced in, no portfolio satisfies {groups[0]}: that rule alone keeps it out"
        said = "; without it, a plan that takes the project breaks it: "
    else:
        head = (
            "forced in, no portfolio satisfies "
            + ", ".join(groups[:-1])
            + f" and {groups[-1]} together (dropping any one of them lets it in)"
        )
        said = "; with one dropped, a plan that takes the project breaks that one: "
    return head + (said + "; ".join(lines) if lines else "")


class _GroupTests:
    """Feasibility of the plan with one candidate forced in and only some groups enforced.

    One cut model per enforced set, compiled on first use and kept (the deletion filters of
    the candidates share most of their sets), each given the sweep's pooled cuts; a test is
    a re-solve to a loose gap (:data:`FEASIBILITY_GAP`): only whether a portfolio exists
    counts. A test that ends without a verdict (the time limit) counts as feasible, so the
    named set may then be smaller than a minimal one; the reason then says no more than the
    tests proved.
    """

    def __init__(self, sweep: DirectSweep, config: RunConfig, y: np.ndarray) -> None:
        assert sweep.milp is not None
        self.sweep, self.y = sweep, y
        self.groups = list(sweep.milp.groups)
        self.config = resolve_config(config)
        self.config = self.config.model_copy(
            update={"solver": self.config.solver.model_copy(update={"mip_gap": FEASIBILITY_GAP})}
        )
        self.full = config
        self.models: dict[frozenset[str], DirectModel] = {}

    def _model(self, enforced: frozenset[str]) -> DirectModel:
        if enforced not in self.models:
            tree = self.config.model_dump()
            for g in self.groups:
                tree["model"]["groups"][g.name]["enabled"] = g.name in enforced
            variant = RunConfig.model_validate(tree)
            self.models[enforced] = DirectModel(self.sweep.data, self.sweep.cover, variant)
        return self.models[enforced]

    def solve(self, i: int, enforced: frozenset[str]) -> DirectResult:
        model = self._model(enforced)
        return _forced(model, model.config, i, 1.0, self.y, pool=self.sweep.pool(model))

    def kept_out_by(self, i: int) -> tuple[list[str], list[str]]:
        """A minimal set of groups that keeps candidate ``i`` out, and the words of each
        group's breach by a plan with ``i`` in and that group alone dropped (the first one the
        feasibility test finds, not an optimum).

        As in :func:`portopt.model.explain.explain_infeasible`, the groups that state facts
        about the projects (``Term.fact``: dependencies, exclusions) stay enforced and the
        policy groups are filtered; the facts are filtered, and named, only when they alone
        keep ``i`` out (an exclusion with a committed project). A group whose drop alone
        admits a portfolio is in every minimal set; if those groups already admit none, they
        are the only minimal set, otherwise the deletion filter finds one."""
        facts = [g for g in self.groups if g.fact]
        policies = [g for g in self.groups if not g.fact]
        always = frozenset(g.name for g in facts)
        if self.solve(i, always).status == "infeasible":
            always, policies = frozenset(), facts
        names = [g.name for g in policies]
        every = always | set(names)
        needed, lines = [], []
        for g in policies:
            result = self.solve(i, every - {g.name})
            if result.solution is not None:
                needed.append(g.name)
                lines += g.check(_solution(result), self.sweep.data, self.full)[:1]
        if needed and self.solve(i, always | set(needed)).status == "infeasible":
            return needed, lines
        kept = list(names)
        for name in names:
            if self.solve(i, always | {k for k in kept if k != name}).status == "infeasible":
                kept = [k for k in kept if k != name]
        return kept, [line for line in lines if line.split(":", 1)[0] in kept]


FEASIBILITY_GAP = 1.0
"""The MIP gap of a feasibility test (:class:`_GroupTests`): any portfolio answers it."""


def _solution(result: DirectResult) -> Solution:
    assert result.solution is not None
    return Solution(y=np.round(result.solution.y), f=np.asarray(result.solution.f, dtype=float))


def _value(
    pid: str,
    chosen: bool,
    base: float,
    base_gap: float | None,
    result: DirectResult,
    gap: float | None,
    ids: list[str],
    y: np.ndarray,
) -> MarginalValue:
    if result.solution is None:
        forced = "forced out" if chosen else "forced in"
        reason = f"{forced}, no portfolio satisfies every constraint group ({result.status})"
        kept = base if chosen else None
        return MarginalValue(pid, chosen, kept, None if chosen else base, None, None, False, reason)
    other = POINTS * float(result.objective)
    within = _within(base, base_gap, other, gap)
    if chosen:
        v_in, v_out, reason = base, other, ""
    else:
        v_in, v_out = other, base
        dropped = [p for p, a, b in zip(ids, y, result.solution.y, strict=True) if a > 0.5 > b]
        added = [
            p for p, a, b in zip(ids, y, result.solution.y, strict=True) if b > 0.5 > a and p != pid
        ]
        reason = "forced in, it displaces " + (", ".join(dropped) or "no project")
        if added:
            reason += "; the re-solve also adds " + ", ".join(added)
        if within:
            reason += " (the difference lies within the MIP gaps)"
    return MarginalValue(pid, chosen, v_in, v_out, v_in - v_out, gap, within, reason)


Step = tuple[str, str, str, object]


def steps(config: RunConfig, binding_sectors: list[str]) -> list[Step]:
    """(rule, config key, step in words, the relaxed value) of each rule ``config`` enables:
    first each enabled group's declared rows with a one-step relaxation
    (:attr:`~portopt.model.terms.Row.step`: the budget, the review capacity), then the steps
    of the rows written by hand (:meth:`~portopt.model.terms.Term.steps`: the recovery floor,
    the CVaR tolerance, the binding sector maxima among ``binding_sectors``)."""
    groups = [g for g in GROUPS if getattr(config.model.groups, g.name).enabled]
    out: list[Step] = [
        (r.step.rule, r.key, r.step.step, r.step.value(config))
        for group in groups
        for r in group.rows_declared
        if r.step is not None and r.key is not None
    ]
    for group in groups:
        out += group.steps(config, binding_sectors)
    return out


def relaxations(
    sweep: DirectSweep,
    objective: float,
    mip_gap: float | None,
    config: RunConfig,
    binding_sectors: list[str],
) -> list[Relaxation]:
    """Each enabled rule of :func:`steps` relaxed one step and re-solved on ``sweep``."""
    base = POINTS * objective
    out = []
    for rule, key, step, relaxed in steps(config, binding_sectors):
        try:
            variant = resolve_config(_with(config, key, relaxed))
        except ValueError:  # the step leaves the key's valid range (pydantic's ValidationError)
            note = f"{key} cannot be relaxed one more step ({relaxed!r} is out of its range)"
            out.append(Relaxation(rule, key, step, base, None, None, None, False, note))
            continue
        try:
            sweep.update(variant)
        except StructuralChange as exc:
            out.append(Relaxation(rule, key, step, base, None, None, None, False, str(exc)))
            continue
        result = sweep.solve()
        if result.objective is None:
            out.append(
                Relaxation(
                    rule,
                    key,
                    step,
                    base,
                    None,
                    None,
                    None,
                    False,
                    f"the relaxed model's solve ended {result.status}",
                )
            )
            continue
        value = POINTS * float(result.objective)
        gap = gap_bound(result, config)
        within = _within(base, mip_gap, value, gap)
        note = "within the MIP gaps" if within else ""
        out.append(Relaxation(rule, key, step, base, value, value - base, gap, within, note))
    sweep.update(config)
    return out


DIGITS = 3
"""Coverage points are written to 0.001 points, gaps to 1e-6: a re-solve's amounts (the
recovery tie-break, about 1e-5 points) vary in the last digits between runs with the time left
to its cut rounds, and the solves agree only to their MIP gaps anyway."""


def as_records(items: list[MarginalValue] | list[Relaxation]) -> list[dict]:
    """Plain dicts for metrics.json and allocation.csv, rounded (:data:`DIGITS`)."""
    records = []
    for item in items:
        record = asdict(item)
        for key, value in record.items():
            if isinstance(value, float):
                record[key] = round(value, 6 if key in ("resolve_gap", "mip_gap") else DIGITS)
        records.append(record)
    return records


__all__ = [
    "PER_USD_B",
    "POINTS",
    "RESOLVE_TIME_LIMIT_S",
    "MarginalValue",
    "Relaxation",
    "as_records",
    "marginal_values",
    "relaxations",
    "standalone_points",
    "steps",
]


HELD = "with the rest of the plan held as it is"


def plan_values(
    sweep: DirectSweep,
    y: np.ndarray,
    objective: float,
    mip_gap: float | None,
    config: RunConfig,
    advance: Callable[[int, int], None] | None = None,
) -> list[MarginalValue]:
    """Each project's value to a plan, the other projects' choices held fixed (coverage points).

    A plan's columns are (project, round) pairs (:attr:`ModelData.project`). For project q, every
    other project's columns keep their base values and only q's are re-solved, the amounts of
    the whole plan re-optimised: forced out (q's columns at 0), or forced in (its columns free,
    :math:`\\sum_{o \\in q} y_o = 1`, the round chosen by the solve). The value is the base
    objective minus the forced-out one, or the forced-in one minus the base. Holding the rest
    fixed makes each re-solve small (a project's rounds, at most a few binaries) where a full
    re-plan is the whole MILP again; it prices the project against the plan as chosen, not
    against the best plan without it, so it is at least the full re-plan's value for a chosen
    project and at most it for a rejected one. A rejected project that cannot be added names
    the rules that adding it at its earliest round, at its minimum amount, would break.
    """
    model = sweep.milp
    if model is None:
        raise ValueError("plan values need the sweep's base solve first")
    d = sweep.data
    resolve = resolve_config(config)
    base = POINTS * objective
    y0 = np.round(y)
    yc = model.ycol.astype(np.int32)
    lp = model.h.getLp()
    lower = np.asarray(lp.col_lower_)[yc].copy()
    upper = np.asarray(lp.col_upper_)[yc].copy()
    groups = list(model.groups)
    out = []
    try:
        for q, pid in enumerate(d.projects):
            if advance is not None and q:
                advance(q, len(d.projects))
            cols = d.columns_of(q)
            chosen = bool(y0[cols].any())
            if chosen and d.committed[cols].any():
                out.append(MarginalValue(pid, True, base, None, None, None, False, "committed"))
                continue
            lo, hi = y0.copy(), y0.copy()
            lo[cols] = 0.0
            hi[cols] = 0.0 if chosen else 1.0
            model.h.changeColsBounds(yc.size, yc, lo, hi)
            row = None
            if not chosen:
                model.h.addRow(1.0, 1.0, cols.size, yc[cols], np.ones(cols.size))
                row = model.h.getNumRow() - 1
            try:
                start = y0.copy()
                start[cols] = 0.0
                result = resolve_cut_model(model, resolve, incumbent=start if chosen else None)
            finally:
                if row is not None:
                    model.h.deleteRows(1, np.array([row], dtype=np.int32))
            gap = gap_bound(result, config)
            if result.solution is None or result.objective is None:
                names, words = _broken(d, groups, y0, cols, config, remove=chosen)
                reason = f"cannot be {'taken out' if chosen else 'added'} {HELD}: {words}"
                value = MarginalValue(pid, chosen, None, None, None, gap, False, reason)
                if not chosen:  # the rules that keep it out of the plan as it is
                    value.kept_out_by = names
                out.append(value)
                continue
            other = POINTS * result.objective
            v_in, v_out = (base, other) if chosen else (other, base)
            within = _within(
                v_in, gap if not chosen else mip_gap, v_out, mip_gap if not chosen else gap
            )
            if chosen:
                reason = f"forced out {HELD}"
            else:
                k = int(cols[np.argmax(result.solution.y[cols])])
                reason = f"forced in {HELD}, best in round {d.quarter_label(int(d.proposal_q[k]))}"
            out.append(MarginalValue(pid, chosen, v_in, v_out, v_in - v_out, gap, within, reason))
    finally:
        model.h.changeColsBounds(yc.size, yc, lower, upper)
    if advance is not None:
        advance(len(d.projects), len(d.projects))
    return out


def _broken(
    d: ModelData,
    groups: list[Term],
    y0: np.ndarray,
    cols: np.ndarray,
    config: RunConfig,
    remove: bool = False,
) -> tuple[list[str], str]:
    """The rules (group names, and their breaches in words) a plan breaks when project
    ``cols`` is added at its earliest round (or, with ``remove``, taken out), the rest as
    chosen, every amount at its minimum (the most room); the facts (a project the plan holds
    needs it) first."""
    y = y0.copy()
    if remove:
        y[cols] = 0.0
    else:
        y[cols[np.argmin(d.proposal_q[cols])]] = 1.0
    sol = Solution(y=y, f=d.f_min * y)
    ordered = sorted(groups, key=lambda g: not g.fact)
    names, lines = [], []
    for g in ordered:
        broken = g.check(sol, d, config)[:1]
        if broken:
            names.append(g.name)
            lines += broken
    words = "; ".join(lines) or "no single rule breaks at the minimum amounts: the rules together"
    return names, words
