"""How the allocation model reaches a solver (what it means lives in the terms).

The MILP goes to HiGHS by default: CVXPY canonicalises the DPP problem once
(``get_problem_data``; a re-solve only re-applies the Parameter values), and this module hands
the resulting matrices to ``highspy`` itself so that it can pass HiGHS a greedy incumbent
(``setSolution`` with the selection only: HiGHS completes the continuous part by an LP with the
integers fixed). The solution goes back through CVXPY's inverse chain, so every variable and
constraint of the problem has its value. cuOpt is used when the config names it
(``solver.name: cuopt``). When a solver fails the next is tried: cuOpt → HiGHS → SciPy's
``milp``; :func:`portopt.model.optimize` falls back to the greedy incumbent after them.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from cvxpy import settings as cps

from portopt.config import SolverConfig
from portopt.model.problem import AllocationModel
from portopt.model.terms import Solution


@dataclass
class SolveResult:
    """What a solve produced, said honestly.

    ``status``: ``optimal`` (within the configured MIP gap), ``time_limit`` (best portfolio found
    in time, ``mip_gap`` the gap reached), ``infeasible``, ``greedy`` (every solver failed; the
    greedy incumbent, feasible but not optimised) or ``error``.
    """

    status: str
    solver: str
    objective: float | None = None
    bound: float | None = None
    mip_gap: float | None = None
    solution: Solution | None = None
    compile_s: float = 0.0
    solve_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def solver_chain(config: SolverConfig) -> list[str]:
    """Solvers to try, in order, on the full formulation: cuOpt first when the config names it."""
    return ["cuopt", "highs", "scipy"] if config.name == "cuopt" else ["highs", "scipy"]


def solve_milp(
    model: AllocationModel,
    config: SolverConfig,
    incumbent: np.ndarray | None = None,
    kind: str = "milp",
) -> SolveResult:
    """Solve variant ``kind`` of ``model`` down the fallback chain; never raises on failure."""
    notes: list[str] = []
    for name in solver_chain(config):
        try:
            result = _SOLVERS[name](model, config, incumbent, kind)
        except Exception as exc:  # a solver that crashes is one link of the chain, not the run
            notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
            continue
        result.notes = notes + result.notes
        if result.status in ("optimal", "time_limit", "infeasible"):
            return result
        notes.append(f"{name} ended with status {result.status}")
    return SolveResult("error", "none", notes=notes)


def new_highs() -> Any:
    """A ``highspy.Highs`` without the banner it prints to stdout when it is created.

    HiGHS writes its banner before any option can be set, so stdout's file descriptor is
    pointed at /dev/null for the construction only.
    """
    import highspy as hp

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = hp.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


_SCHEDULER: list[int] = []
"""The thread count HiGHS's global scheduler was last started with (empty: not yet)."""


def set_threads(h: Any, threads: int) -> None:
    """Set HiGHS's ``threads`` option (0: HiGHS's choice) on ``h``, restarting HiGHS's global
    scheduler when an earlier run of this process started it with another count (HiGHS
    refuses to run otherwise, with a solve error)."""
    import highspy as hp

    if _SCHEDULER and _SCHEDULER[0] != threads:
        hp.Highs.resetGlobalScheduler(True)
    _SCHEDULER[:] = [threads]
    h.setOptionValue("threads", int(threads))


def _highs(
    model: AllocationModel, config: SolverConfig, incumbent: np.ndarray | None, kind: str
) -> SolveResult:
    import highspy as hp

    variant = model.variant(kind)
    problem = variant.problem
    t0 = time.perf_counter()
    data, chain, inverse = problem.get_problem_data(cp.HIGHS, ignore_dpp=False)
    compile_s = time.perf_counter() - t0
    h = new_highs()
    h.passModel(_highs_model(hp, data))
    options: dict[str, Any] = {
        "log_to_console": False,  # solver.verbose goes to stderr: stdout is --json's
        "output_flag": bool(config.verbose),
        "time_limit": float(config.time_limit_s),
        "mip_rel_gap": float(config.mip_gap),
        "random_seed": 0,
    }
    for key, value in options.items():
        h.setOptionValue(key, value)
    if config.verbose:
        h.cbLogging.subscribe(lambda event: sys.stderr.write(event.message))
    set_threads(h, int(config.threads or 0))
    notes = []
    if incumbent is not None and kind != "lp":
        cols = _columns(data, variant.vars.y)
        status = h.setSolution(
            len(cols), cols.astype(np.int32), np.asarray(incumbent, dtype=np.float64)
        )
        if status == hp.HighsStatus.kError:
            notes.append("HiGHS rejected the starting incumbent")
    t1 = time.perf_counter()
    h.run()
    solve_s = time.perf_counter() - t1
    info = h.getInfo()
    model_status = h.getModelStatus().name
    results = {
        "solution": h.getSolution(),
        "basis": h.getBasis(),
        "info": info,
        "model_status": model_status,
        "run_time": h.getRunTime(),
    }
    if model_status == "kInfeasible":
        results["dual_ray"] = h.getDualRay()
    has_solution = info.primal_solution_status == 2
    if model_status in ("kInfeasible", "kUnboundedOrInfeasible"):
        return SolveResult("infeasible", "highs", compile_s=compile_s, solve_s=solve_s, notes=notes)
    if not has_solution:
        return SolveResult(
            "error",
            "highs",
            compile_s=compile_s,
            solve_s=solve_s,
            notes=[*notes, f"HiGHS: {model_status} without a solution"],
        )
    if model_status != "kOptimal":  # a limit: the incumbent is still a valid portfolio
        results["model_status"] = "kTimeLimit"
    with warnings.catch_warnings():  # a time limit is reported with its gap, not as a warning
        warnings.simplefilter("ignore", UserWarning)
        problem.unpack_results(results, chain, inverse)
    is_mip = kind != "lp"
    gap = float(info.mip_gap) if is_mip else 0.0
    # a limit hit after the gap closed (e.g. inside a sub-MIP) is still optimal within the gap
    proven = model_status == "kOptimal" or gap <= config.mip_gap
    status = "optimal" if proven else "time_limit"
    if model_status != "kOptimal":
        notes.append(f"HiGHS stopped ({model_status}) at a gap of {gap:.2%}")
    # HiGHS minimised CVXPY's flipped objective, less a constant offset
    bound = -(float(info.mip_dual_bound) + float(inverse[-1][cps.OFFSET])) if is_mip else None
    return SolveResult(
        status,
        "highs",
        objective=float(problem.value),
        bound=bound,
        mip_gap=gap,
        solution=model.solution(kind),
        compile_s=compile_s,
        solve_s=solve_s,
        notes=notes,
    )


def _highs_model(hp: Any, data: dict) -> Any:
    """A ``HighsModel`` from CVXPY's conic problem data (equalities, then ``<=`` rows)."""
    from cvxpy.reductions.solvers.conic_solvers.conic_solver import dims_to_solver_dict

    inf = hp.kHighsInf
    dims = dims_to_solver_dict(data[cps.DIMS])
    A = sp.csc_matrix(data[cps.A])
    b = data[cps.B]
    n_eq = dims[cps.EQ_DIM]
    model = hp.HighsModel()
    lp = model.lp_
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.offset_ = 0
    lp.col_cost_ = data[cps.C]
    lp.row_lower_ = np.concatenate([b[:n_eq], np.full(A.shape[0] - n_eq, -inf)])
    lp.row_upper_ = b
    lp.a_matrix_.format_ = hp.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    lb, ub = data[cps.LOWER_BOUNDS], data[cps.UPPER_BOUNDS]
    lower = np.full(lp.num_col_, -inf) if lb is None else np.array(lb, dtype=float)
    upper = np.full(lp.num_col_, inf) if ub is None else np.array(ub, dtype=float)
    ints = list(data[cps.BOOL_IDX]) + list(data[cps.INT_IDX])
    if ints:
        boolean = np.array(data[cps.BOOL_IDX], dtype=int)
        lower[boolean] = np.maximum(lower[boolean], 0)
        upper[boolean] = np.minimum(upper[boolean], 1)
        integrality = [hp.HighsVarType.kContinuous] * lp.num_col_
        for j in ints:
            integrality[j] = hp.HighsVarType.kInteger
        lp.integrality_ = integrality
    lp.col_lower_, lp.col_upper_ = lower, upper
    return model


def _columns(data: dict, var: cp.Variable) -> np.ndarray:
    """Solver columns of ``var`` (CVXPY stuffs each variable contiguously)."""
    start = data[cps.PARAM_PROB].var_id_to_col[var.id]
    return np.arange(start, start + var.size)


def _scipy(
    model: AllocationModel, config: SolverConfig, incumbent: np.ndarray | None, kind: str
) -> SolveResult:
    opts = {"time_limit": float(config.time_limit_s), "disp": bool(config.verbose)}
    if kind != "lp":
        opts["mip_rel_gap"] = float(config.mip_gap)
    return _via_cvxpy(model, kind, "scipy", cp.SCIPY, {"scipy_options": opts})


def _cuopt(
    model: AllocationModel, config: SolverConfig, incumbent: np.ndarray | None, kind: str
) -> SolveResult:
    return _via_cvxpy(
        model,
        kind,
        "cuopt",
        "CUOPT",
        {"time_limit": float(config.time_limit_s), "mip_relative_gap": float(config.mip_gap)},
    )


def _via_cvxpy(
    model: AllocationModel, kind: str, label: str, solver: str, opts: dict[str, Any]
) -> SolveResult:
    problem = model.variant(kind).problem
    t0 = time.perf_counter()
    problem.solve(solver=solver, **opts)
    elapsed = time.perf_counter() - t0
    status = problem.status
    if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return SolveResult("infeasible", label, solve_s=elapsed)
    if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE, cp.USER_LIMIT) and problem.value is not None:
        gap = 0.0 if kind == "lp" else None  # SciPy and cuOpt do not report it through CVXPY
        return SolveResult(
            "optimal" if status != cp.USER_LIMIT else "time_limit",
            label,
            objective=float(problem.value),
            mip_gap=gap,
            solution=model.solution(kind),
            solve_s=elapsed,
        )
    return SolveResult("error", label, solve_s=elapsed, notes=[f"{label}: status {status}"])


_SOLVERS = {"highs": _highs, "scipy": _scipy, "cuopt": _cuopt}

highs_model = _highs_model
"""The public name of :func:`_highs_model` (the cut model builds its HiGHS instance with it)."""
variable_columns = _columns
"""The public name of :func:`_columns`: a CVXPY variable's columns in the conic data."""
