"""The allocation model: which projects to finance, and with how much (DESIGN.md).

``optimize`` builds and solves it, ``check_solution`` re-checks a portfolio from the numbers,
``build_model`` compiles the model of a config's formulation (:class:`DirectSweep`, the cut
model, or :class:`AllocationModel`, the full one) for Parameter re-solves (frontiers).
"""

from portopt.model.api import Allocation, build_model, check_solution, formulation, optimize
from portopt.model.direct import DirectSweep, SolveProgress
from portopt.model.parameters import StructuralChange, is_parameter
from portopt.model.problem import AllocationModel
from portopt.model.solve import SolveResult, solve_milp

__all__ = [
    "Allocation",
    "AllocationModel",
    "DirectSweep",
    "SolveProgress",
    "SolveResult",
    "StructuralChange",
    "build_model",
    "check_solution",
    "formulation",
    "is_parameter",
    "optimize",
    "solve_milp",
]
