"""The allocation model: which projects to finance, and with how much (DESIGN.md).

``optimize`` builds and solves it, ``check_solution`` re-checks a portfolio from the numbers,
:class:`AllocationModel` holds the compiled problem for Parameter re-solves (frontiers).
"""

from portopt.model.api import Allocation, check_solution, optimize
from portopt.model.problem import AllocationModel, StructuralChange
from portopt.model.solve import SolveResult, solve_milp

__all__ = [
    "Allocation",
    "AllocationModel",
    "SolveResult",
    "StructuralChange",
    "check_solution",
    "optimize",
    "solve_milp",
]
