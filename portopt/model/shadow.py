"""Shadow prices: each group's dual, in the user's units, around the chosen selection.

Coverage depends on the selection y only, so an LP with *every* y fixed would price every group
at zero coverage. The shadow-price LP therefore fixes the chosen projects in (``y_i = 1``), keeps
the rejected ones relaxed to ``0 <= y_i <= 1`` and re-solves in (y, f) and the coverage
auxiliaries: each dual is then the coverage (plus the small recovery tie-break) gained per unit a
group is relaxed at the margin of the chosen portfolio, with projects divisible. "Binding" is
read from the MILP solution's own numbers, not from the LP.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from portopt.config import RunConfig
from portopt.model.problem import AllocationModel
from portopt.model.terms import ShadowPrice, Solution


def shadow_prices(
    model: AllocationModel, config: RunConfig, sol: Solution
) -> tuple[list[ShadowPrice], float | None]:
    """Duals of every enabled group and the LP's objective (``None`` if the LP failed)."""
    model.y_lo.value = np.maximum(model.data.committed, sol.y > 0.5).astype(float)
    model.y_hi.value = np.ones(model.data.n)
    problem = model.variant("lp").problem
    try:
        problem.solve(solver=cp.HIGHS)
    finally:
        model.release()
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return [], None
    model.use_rows("lp")
    prices: list[ShadowPrice] = []
    for group in model.enabled:
        prices += group.shadow(sol, config)
    return prices, float(problem.value)
