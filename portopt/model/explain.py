"""Why no portfolio exists: quick pre-solve checks, then a solve with slack on every group.

The slack variant minimises :math:`\\sum_g \\sum_r s_{gr} / \\sigma_{gr}` with every group row
relaxed by a nonnegative slack :math:`s_{gr}` in its own units (σ: $1B, one project, one GW,
1,000 person-years), committed projects still forced in. The groups with positive slack are
those that had to give; each says by how much, in words.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from portopt.config import RunConfig
from portopt.model.data import BILLION
from portopt.model.problem import AllocationModel
from portopt.model.solve import solve_milp
from portopt.model.terms import money


def precheck(model: AllocationModel, config: RunConfig) -> list[str]:
    """Impossibilities visible without a solve (each line names its group)."""
    d, m, lines = model.data, config.model, []
    enabled = {g.name for g in model.enabled}
    committed = d.f_max[d.committed].sum()
    if "capital" in enabled and committed > m.budget_usd / BILLION * (1 + 1e-9):
        lines.append(
            f"capital: the committed tranche {money(committed)} is above the budget"
            f" {money(m.budget_usd / BILLION)}"
        )
    if "capital" in enabled and m.min_deployment_usd / BILLION > d.f_max.sum() * (1 + 1e-9):
        lines.append(
            f"capital: minimum deployment {money(m.min_deployment_usd / BILLION)} is"
            f" above what all candidates can take, {money(d.f_max.sum())}"
        )
    limit = m.groups.max_projects.limit
    if "max_projects" in enabled and int(d.committed.sum()) > limit:
        lines.append(
            f"max_projects: the limit of {limit} projects is below the"
            f" {int(d.committed.sum())} committed projects"
        )
    return lines


def explain_infeasible(model: AllocationModel, config: RunConfig) -> list[str]:
    """Plain-words lines naming the groups that had to give, and by how much."""
    lines = precheck(model, config)
    if lines:
        return lines
    result = solve_milp(model, config.solver, kind="slack")
    if result.solution is None:
        return [
            "even with every constraint group relaxed no portfolio was found"
            f" ({'; '.join(result.notes) or result.status})"
        ]
    give: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for (group, row), values in model.variant("slack").slack.values().items():
        if values.sum() > 1e-5:
            give[group][row] = values
    for group in model.enabled:
        if group.name in give:
            lines += group.explain(give[group.name], result.solution, config)
    return lines or [
        "the solver reported infeasibility but every group holds with slack;"
        " this is numerical: check for extreme values in the catalog"
    ]
