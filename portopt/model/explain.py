"""Why no portfolio exists: a minimal set of groups that must give, each with its cause.

1. **Prechecks**: impossibilities a group sees without a solve (``Term.precheck``: the
   committed tranche above the budget, ...). Each is infeasible on its own, so it is the whole
   explanation.
2. **Deletion filter** (Chinneck & Dravnieks 1991) over the enabled policy groups
   :math:`G`: start from :math:`M = G`; for each :math:`g \\in G` in turn, if
   :math:`M \\setminus \\{g\\}` is still infeasible, :math:`g` is not needed and is dropped
   (:math:`M \\leftarrow M \\setminus \\{g\\}`); otherwise it is kept. The kept groups are
   infeasible together and dropping any one of them makes the rest feasible: each must give.
   Groups that state facts about the projects (``Term.fact``: dependencies, exclusions) and
   the committed projects stay enforced throughout; they are filtered, and named, only when
   they conflict among themselves.
3. **How much**: for each kept group :math:`g`, the slack variant minimises
   :math:`\\sum_r s_{gr} / \\sigma_{gr}` with :math:`g` alone relaxed and the rest of
   :math:`M` enforced (feasible, by minimality); :meth:`Term.explain` words the give.

Every test is a solve of one compiled slack variant whose per-group slack bounds and penalty
weights are Parameters (:class:`~portopt.model.terms.Slack`): a feasibility test has a zero
objective, so HiGHS stops at its first feasible point. A test that ends without a verdict
(the time limit) keeps its group, so the named set may then be larger than minimal, never
wrong.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np

from portopt.config import RunConfig
from portopt.model.data import BILLION, ModelData
from portopt.model.groups import GROUPS, deployment_floor
from portopt.model.problem import AllocationModel
from portopt.model.solve import solve_milp
from portopt.model.terms import Knob, Solution, Term, money

if TYPE_CHECKING:
    from portopt.model.direct import DirectModel


def precheck(model: AllocationModel, config: RunConfig) -> list[str]:
    """Impossibilities visible without a solve, one line per group that has any."""
    return [line for g in model.enabled for line in _one_line(g, g.precheck(config))]


def explain_infeasible(model: AllocationModel, config: RunConfig) -> list[str]:
    """One line per group of a minimal infeasible set, saying its cause and its give."""
    lines = precheck(model, config)
    if lines:
        return lines
    facts = [g for g in model.enabled if g.fact]
    policies = [g for g in model.enabled if not g.fact]
    kept = minimal_infeasible_set(model, config, policies, always=facts)
    if not kept:  # the facts and the committed projects alone conflict
        kept = minimal_infeasible_set(model, config, facts, always=[])
    if not kept:
        return [
            "the solver reported infeasibility but every group holds with slack;"
            " this is numerical: check for extreme values in the catalog"
        ]
    others = [] if kept[0].fact else facts
    return [line for g in kept for line in _give(model, config, g, kept, others)]


def minimal_infeasible_set(
    model: AllocationModel, config: RunConfig, candidates: list[Term], always: list[Term]
) -> list[Term]:
    """The deletion filter over ``candidates`` with ``always`` enforced throughout; [] when
    ``candidates`` are feasible together."""
    base = {g.name for g in always}
    if _feasible(model, config, base | {g.name for g in candidates}) is not False:
        return []
    kept = list(candidates)
    for g in candidates:
        rest = [k for k in kept if k is not g]
        if _feasible(model, config, base | {k.name for k in rest}) is False:
            kept = rest
    return kept


def _feasible(model: AllocationModel, config: RunConfig, enforced: set[str]) -> bool | None:
    """Whether the model with only the groups ``enforced`` has a portfolio (None: no verdict)."""
    variant = model.variant("slack")
    variant.slack.set(enforced=enforced, weighted=set())
    result = solve_milp(model, config.solver, kind="slack")
    if result.status == "infeasible":
        return False
    return True if result.solution is not None else None


def _give(
    model: AllocationModel, config: RunConfig, group: Term, kept: list[Term], facts: list[Term]
) -> list[str]:
    """``group``'s explanation, one line: its least give with the rest of ``kept`` enforced."""
    variant = model.variant("slack")
    enforced = {g.name for g in [*kept, *facts] if g is not group}
    variant.slack.set(enforced=enforced, weighted={group.name})
    result = solve_milp(model, config.solver, kind="slack")
    if result.solution is None:
        return [f"{group.name}: must give (no amount found: {result.status})"]
    give = {
        row: values
        for (name, row), values in variant.slack.values().items()
        if name == group.name and values.sum() > 1e-5
    }
    lines = group.explain(give, result.solution, config) if give else []
    return _one_line(group, lines) or [f"{group.name}: must give (the others hold only if it does)"]


def _one_line(group: Term, lines: list[str]) -> list[str]:
    """``group``'s lines (each ``name: ...``) as one line, or [] when there are none."""
    if not lines:
        return []
    head = f"{group.name}: "
    return [head + "; ".join(line.removeprefix(head) for line in lines)]


# ----------------------------------------------------------------- on the cut model (the plan)


def _usd(x: float) -> str:
    return money(x / BILLION)


def _get(config: RunConfig, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


class CutExplainer:
    """Why the cut model (the default formulation, the plan's) admits no portfolio, decided
    by its LP relaxation where it can: an infeasible LP is a proof, in a fraction of a second;
    only a feasible LP sends a test to the MILP (its first feasible plan ends it).

    1. The prechecks (:func:`precheck`).
    2. The deletion filter over the enabled policy groups, the facts and the committed
       projects enforced throughout (as :func:`explain_infeasible`), each test a cut model with
       only the groups under test enabled. Each project is one set of columns, counted once.
    3. Each kept group's give: a group with a limit (its ``knobs``) says its largest feasible
       give with every other group as configured (the highest expected-recovery floor that
       admits the rest: an LP bisection, then the MILP at the LP's answer and, if that fails,
       a bisection of MILPs); the capital group's minimum deployment says the most expected
       committed capital any plan reaches; the other groups, and a limit that cannot give
       enough on its own, say what they must give with the rest of the minimal set held
       (the slack variant, :meth:`portopt.model.terms.Term.explain`).
    """

    def __init__(self, data: ModelData, cover: Any, config: RunConfig, deadline: float) -> None:
        self.data, self.cover, self.config, self.deadline = data, cover, config, deadline
        self.groups = [g(data, config) for g in GROUPS]
        self.groups = [g for g in self.groups if g.enabled(config)]
        self.verdicts: dict[tuple, bool | None] = {}

    # -- models -------------------------------------------------------------------------
    def _config(self, enabled: Collection[str], overrides: dict[str, Any]) -> RunConfig:
        tree = self.config.model_dump()
        for g in self.groups:
            tree["model"]["groups"][g.name]["enabled"] = g.name in enabled
        for key, value in overrides.items():
            node = tree
            *path, leaf = key.split(".")
            for part in path:
                node = node[part]
            node[leaf] = value
        return RunConfig.model_validate(tree)

    def model(
        self,
        enabled: Collection[str],
        overrides: dict[str, Any] | None = None,
        slack: tuple[set[str], set[str]] | None = None,
        reuse: DirectModel | None = None,
    ) -> DirectModel:
        """The cut model with only the groups ``enabled`` (and config ``overrides``; ``slack``:
        the groups kept hard and those given slack), built afresh: what each feasibility test
        here solves, and what :mod:`portopt.tradeoff` re-targets for its own tests. ``reuse``:
        a model built earlier on the same data, re-targeted instead (the same HiGHS input as a
        fresh build, without compiling) when only Parameter values differ."""
        from portopt.model.direct import DirectModel
        from portopt.model.parameters import (
            StructuralChange,
            model_parameter_keys,
            structural_changes,
        )

        config = self._config(enabled, overrides or {})
        if (
            reuse is not None
            and reuse.data is self.data
            and reuse.cover is self.cover
            and reuse.lp_lower is None
            and reuse.slack_groups == slack
        ):
            try:
                keys = model_parameter_keys(self.data, config, reuse.groups)
                structural_changes(reuse.config, config, keys)
            except StructuralChange:
                pass
            else:
                reuse.retarget(config)
                return reuse
        return DirectModel(self.data, self.cover, config, slack=slack)

    def feasible(
        self, enabled: Collection[str], overrides: dict[str, Any] | None = None, lp: bool = False
    ) -> bool | None:
        """Whether a plan satisfies the groups ``enabled`` (None: no verdict in time);
        ``lp``: whether the LP relaxation does (a False is then a proof for the MILP too)."""
        key = (frozenset(enabled), tuple(sorted((overrides or {}).items())), lp)
        if key not in self.verdicts:
            if not lp and self.feasible(enabled, overrides, lp=True) is False:
                self.verdicts[key] = False
            else:
                model = self.model(enabled, overrides)
                model.linear(None)
                status, _ = model.solve_linear(self.deadline, lp_only=lp)
                verdict = {"infeasible": False, "optimal": True, "feasible": True}.get(status)
                self.verdicts[key] = verdict
        return self.verdicts[key]

    # -- the explanation -----------------------------------------------------------------
    def explain(self) -> list[str]:
        lines = [line for g in self.groups for line in _one_line(g, g.precheck(self.config))]
        if lines:
            return lines
        facts = [g.name for g in self.groups if g.fact]
        policies = [g.name for g in self.groups if not g.fact]
        kept = self.minimal_set(policies, facts)
        others = facts
        if not kept:  # the facts and the committed projects alone conflict
            kept, others = self.minimal_set(facts, []), []
        if not kept:
            return [
                "the solver reported infeasibility but every group holds with slack;"
                " this is numerical: check for extreme values in the catalog"
            ]
        by_name = {g.name: g for g in self.groups}
        return [line for name in kept for line in self.give(by_name[name], kept, others)]

    def minimal_set(self, candidates: list[str], always: list[str]) -> list[str]:
        """The deletion filter over ``candidates``, ``always`` enforced; [] when feasible."""
        if self.feasible([*always, *candidates]) is not False:
            return []
        kept = list(candidates)
        for name in candidates:
            rest = [k for k in kept if k != name]
            if self.feasible([*always, *rest]) is False:
                kept = rest
        return kept

    def give(self, group: Term, kept: list[str], others: list[str]) -> list[str]:
        """``group``'s line: its largest feasible give where it has a limit, else (or when its
        limit alone cannot give enough) what it must give with the rest of ``kept`` held."""
        words: list[str] = []
        give: dict[str, np.ndarray] = {}
        sol: Solution | None = None
        if not group.scenario_sized:  # its rows are cuts: no slack variant
            give, sol = self.slack_give(group, kept, others)
        if group.name == "capital" and (
            "min_deployment" in give or (not give and self.config.model.min_deployment_usd > 0)
        ):
            give.pop("min_deployment", None)
            words += self.most_committed()
        else:
            words += self.knob_words(group)
        if give and sol is not None:
            words = [*group.explain(give, sol, self.config), *words]
        return _one_line(group, words) or [
            f"{group.name}: must give (the others hold only if it does)"
        ]

    def slack_give(
        self, group: Term, kept: list[str], others: list[str]
    ) -> tuple[dict[str, np.ndarray], Solution | None]:
        """What ``group``'s rows must give, the rest of ``kept`` and ``others`` held: the
        slack variant's least penalty."""
        enabled = {*kept, *others}
        model = self.model(enabled, slack=(enabled - {group.name}, {group.name}))
        status, x = model.solve_linear(self.deadline)
        if status != "optimal" or x is None:
            return {}, None
        give = {
            row: x[cols]
            for (name, row), cols in model.slack_cols.items()
            if name == group.name and x[cols].sum() > 1e-5
        }
        y, f, _ = model.split(x)
        y = np.round(y)
        return give, Solution(y=y, f=f * (y > 0.5))

    def context(self, skip: str) -> str:
        """What "the rest" holds, in the user's words: the minimum deployment and the
        committed projects."""
        parts = []
        least = self.config.model.min_deployment_usd
        if least > 0 and skip != "capital":
            parts.append(f"{_usd(least)} of expected committed capital")
        committed = int(self.data.committed.sum())
        if committed:
            parts.append(f"the {committed} committed projects")
        return " and ".join(parts) + ", every other group as configured," if parts else "the rest"

    def knob_words(self, group: Term) -> list[str]:
        for knob in group.knobs:
            now = _get(self.config, knob.key)
            if now is None:
                continue
            value = self.largest_give(knob, float(now))
            if value is None:
                continue
            best, how = "highest" if knob.lower else "least", knob.how
            head = (
                how.head(self.config, float(now))
                if how.head is not None
                else f"the {how.words} {how.show(float(now))} is out of reach"
            )
            return [
                f"{group.name}: {head}; the {best} {how.words} that admits"
                f" {self.context(group.name)} is {how.show(value)} ({knob.key})"
            ]
        return []

    def largest_give(self, knob: Knob, now: float) -> float | None:
        """The tightest value of ``knob`` on its grid that admits every other enabled group
        as configured; None when even its loosest value does not."""
        step, loosest = knob.how.step, knob.how.loosest(self.config, self.data)
        k = now / step
        if knob.lower:
            first = np.ceil(k - 1e-9) - 1
            last = np.ceil(loosest / step - 1e-9)
            grid = np.arange(first, last - 1, -1.0)
        else:
            first = np.floor(k + 1e-9) + 1
            last = np.floor(loosest / step + 1e-9)
            grid = np.arange(first, last + 1, 1.0)
        values = [float(np.round(i * step, 10)) for i in grid]
        if not values:
            return None
        names = [g.name for g in self.groups]
        is_int = step == 1.0  # a count

        def test(i: int, lp: bool) -> bool | None:
            value: Any = int(values[i]) if is_int else values[i]
            return self.feasible(names, {knob.key: value}, lp=lp)

        last_i = len(values) - 1
        if test(last_i, True) is False:
            return None
        lo, hi = -1, last_i  # the LP is infeasible at lo (the current value), feasible at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if test(mid, True) is False:
                lo = mid
            else:
                hi = mid
        if test(hi, False):
            return values[hi]
        lo = hi
        if not test(last_i, False):
            return None
        hi = last_i
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if test(mid, False):
                hi = mid
            else:
                lo = mid
        return values[hi]

    def most_committed(self) -> list[str]:
        """The capital group's line: the most expected committed capital any plan reaches with
        every other group as configured."""
        names = [g.name for g in self.groups]
        model = self.model(names, {"model.min_deployment_usd": 0.0})
        model.linear(self.data.expected_share)
        status, x = model.solve_linear(self.deadline)
        least = self.config.model.min_deployment_usd
        head = (
            f"capital: {deployment_floor(self.config)} {_usd(least)} of expected committed"
            " capital is out of reach"
        )
        if status != "optimal" or x is None:
            return [f"{head} (the most any plan reaches was not found: {status})"]
        most = float(self.data.expected_share @ model.split(x)[1])
        floor = self.config.model.groups.recoupment
        at = (
            f" at the {floor.min_expected_recovery:.2f} expected-recovery floor"
            if floor.enabled and floor.min_expected_recovery
            else ""
        )
        committed = int(self.data.committed.sum())
        with_ = f" with the {committed} committed projects" if committed else ""
        return [
            f"{head}: with every other group as configured{at}, at most {money(most)} can be"
            f" committed{with_} (lower model.min_deployment_usd, or a hard plan.target_usd, to"
            " that)"
        ]


def explain_cuts(
    data: ModelData, cover: Any, config: RunConfig, deadline: float | None = None
) -> list[str]:
    """One line per group of a minimal infeasible set of the cut model (:class:`CutExplainer`)."""
    if deadline is None:
        deadline = time.perf_counter() + float(config.solver.time_limit_s)
    return CutExplainer(data, cover, config, deadline).explain()
