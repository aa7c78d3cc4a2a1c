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

from portopt.config import RunConfig
from portopt.model.problem import AllocationModel
from portopt.model.solve import solve_milp
from portopt.model.terms import Term


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
