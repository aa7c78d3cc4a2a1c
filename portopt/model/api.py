"""The public entry points, ``optimize`` and ``check_solution``, and their ``Allocation``.

:func:`optimize` is the one dispatcher: it chooses the formulation (:func:`formulation`) and
owns the fallback chain. The cut formulation (:mod:`portopt.model.direct`) and the full one
(:class:`~portopt.model.problem.AllocationModel` down :func:`~portopt.model.solve.solve_milp`'s
solver chain) return a status; neither calls back here. The chain:

1. the cut model (``solver.name`` ``auto`` or ``highs_direct``), when the objective has no
   coverage CVaR (which only the full formulation lowers);
2. the full formulation, when the cut model reports infeasibility (the explanation needs the
   full model's slack variant) or finds no portfolio in time, or when it was asked for;
3. the greedy incumbent with LP amounts, said as such, when every solver failed.

The in-sample figures of the portfolio are the caller's to compute
(:func:`portopt.evaluate.portfolio_figures`): the model does not import the evaluator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.scenario_set import ScenarioSet
from portopt.errors import InfeasibleError, SolverError
from portopt.model.data import BILLION, ModelData, build_data
from portopt.model.direct import DirectSweep, SolveProgress
from portopt.model.explain import explain_cuts, explain_infeasible, precheck
from portopt.model.groups import GROUPS
from portopt.model.incumbent import starting_selection
from portopt.model.problem import AllocationModel
from portopt.model.shadow import shadow_prices
from portopt.model.solve import SolveResult, solve_milp
from portopt.model.terms import ShadowPrice, Solution, Term

FALLBACK_LP_S = 30.0
"""Time limit of the LP that sizes the greedy selection when every solver failed."""
INFEASIBLE = "no portfolio satisfies every enabled constraint group"


@dataclass
class Allocation:
    """The chosen portfolio and how it was found.

    ``y`` and ``fund_usd`` are per catalog project (catalog order, ``ids``); ``status`` is one of
    ``optimal``, ``time_limit`` (``mip_gap`` says how far from proven), ``greedy`` (no solver
    succeeded: the greedy incumbent, feasible, not optimised). ``shadow_prices`` are dicts with
    group, row, unit, coverage_per_unit, binding and meaning; ``in_sample`` is left for the
    caller to fill with the figures on the optimisation scenarios
    (:func:`portopt.evaluate.portfolio_figures`).
    """

    ids: list[str]
    y: np.ndarray
    fund_usd: np.ndarray
    status: str
    solver: str
    objective: float | None
    bound: float | None
    mip_gap: float | None
    timings: dict[str, float]
    shadow_prices: list[dict[str, Any]] = field(default_factory=list)
    binding: list[str] = field(default_factory=list)
    in_sample: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def selected(self) -> list[str]:
        return [i for i, y in zip(self.ids, self.y, strict=True) if y > 0.5]

    @property
    def capital_usd(self) -> float:
        return float(self.fund_usd.sum())

    def solution(self) -> Solution:
        """(y, f in $B) in the model's units."""
        return Solution(y=np.asarray(self.y, float), f=np.asarray(self.fund_usd, float) / BILLION)


def formulation(config: RunConfig) -> str:
    """``cuts`` (the cut model into HiGHS) or ``full`` (the full-scenario CVXPY model).

    ``solver.name`` ``auto`` and ``highs_direct`` take the cut model, ``highs`` and ``cuopt``
    the full one; a positive ``model.coverage_cvar_weight`` needs the full one (the cut model
    does not lower the coverage CVaR).
    """
    if config.solver.name in ("highs", "cuopt") or config.model.coverage_cvar_weight > 0:
        return "full"
    return "cuts"


def build_model(
    catalog: Catalog, scenarios: ScenarioSet, config: RunConfig, sweep: Collection[str] = ()
) -> AllocationModel | DirectSweep:
    """The compiled model :func:`optimize` re-solves for ``config``'s formulation (frontiers:
    ``sweep`` names the keys that will vary)."""
    kind = DirectSweep if formulation(config) == "cuts" else AllocationModel
    return kind(catalog, scenarios, config, sweep=sweep)


def optimize(
    catalog: Catalog,
    config: RunConfig,
    scenarios: ScenarioSet,
    model: AllocationModel | DirectSweep | None = None,
    progress: Callable[[SolveProgress], None] | None = None,
) -> Allocation:
    """Choose and size the portfolio on the optimisation ``scenarios``.

    Pass a ``model`` built earlier (:func:`build_model`, same catalog and scenarios) to re-solve
    it with the Parameter values of ``config`` (a frontier point); otherwise one is built. A
    :class:`DirectSweep` is used only when ``config``'s formulation is the cut model. Raises
    :class:`InfeasibleError` (with the groups that must give) or :class:`SolverError`.
    ``progress``: told the cut model's incumbent, bound and gap as they improve (HiGHS's
    callbacks; the full formulation reports none).
    """
    notes: list[str] = []
    if formulation(config) == "cuts" and not isinstance(model, AllocationModel):
        sweep = model if isinstance(model, DirectSweep) else DirectSweep(catalog, scenarios, config)
        sweep.progress = progress
        try:
            allocation = _optimize_cuts(catalog, config, sweep)
        finally:
            sweep.progress = None
        if allocation is not None:
            return allocation
        notes.append("highs_direct found no portfolio; the full formulation was solved instead")
    full = model if isinstance(model, AllocationModel) else None
    return _optimize_full(catalog, config, scenarios, full, notes)


def _optimize_cuts(catalog: Catalog, config: RunConfig, sweep: DirectSweep) -> Allocation | None:
    """The cut model's portfolio, or None when it reports infeasibility or found none."""
    start = time.perf_counter()
    if sweep.config != config:
        sweep.update(config)
    result = sweep.solve(start)
    if result.status == "infeasible":  # explained on the cut model: its LP decides in seconds
        lines = explain_cuts(sweep.data, sweep.cover, config, start + config.solver.time_limit_s)
        raise InfeasibleError(INFEASIBLE, lines)
    if result.status == "error":
        return None
    sol, direct = result.solution, result.model
    assert sol is not None and direct is not None
    timings = dict(result.timings)
    t0 = time.perf_counter()
    prices = sweep.shadow_prices(sol, time.perf_counter() + config.solver.time_limit_s)
    timings["shadow_s"] = time.perf_counter() - t0
    nodes = " + ".join(f"{n:,}" for n in result.nodes) or "0"
    rounds = (
        f"highs_direct: {result.rounds} MILP round(s), {result.cuts} cuts, {nodes}"
        " branch-and-bound nodes"
    )
    return _assemble(
        catalog, config, sol, result, direct.groups, direct.data, prices, timings, [rounds]
    )


def _optimize_full(
    catalog: Catalog,
    config: RunConfig,
    scenarios: ScenarioSet,
    model: AllocationModel | None,
    notes: list[str],
) -> Allocation:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if model is None:
        model = AllocationModel(catalog, scenarios, config)
    elif model.config != config:
        model.update(config)
    timings["model_data_s"] = time.perf_counter() - t0
    lines = precheck(model, config)
    if lines:
        raise InfeasibleError(INFEASIBLE, lines)
    t0 = time.perf_counter()
    model.variant("milp")
    timings["model_build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    incumbent = starting_selection(model.data, config, model.enabled, model.last_selection)
    timings["incumbent_s"] = time.perf_counter() - t0
    result = solve_milp(model, config.solver, incumbent=incumbent)
    timings["compile_s"] = result.compile_s
    timings["solve_s"] = result.solve_s
    if result.status == "infeasible":
        t0 = time.perf_counter()
        lines = explain_infeasible(model, config)
        timings["explain_s"] = time.perf_counter() - t0
        raise InfeasibleError(INFEASIBLE, lines)
    if result.status == "error":
        result = _greedy_fallback(model, config, incumbent, result)
    sol = result.solution
    assert sol is not None
    model.last_selection = sol.y.copy()
    t0 = time.perf_counter()
    prices, _ = shadow_prices(model, config, sol)
    timings["shadow_s"] = time.perf_counter() - t0
    return _assemble(
        catalog, config, sol, result, model.enabled, model.data, prices, timings, notes
    )


def _assemble(
    catalog: Catalog,
    config: RunConfig,
    sol: Solution,
    result: Any,
    groups: list[Term],
    data: ModelData,
    prices: list[ShadowPrice],
    timings: dict[str, float],
    notes: list[str] | None = None,
) -> Allocation:
    """The :class:`Allocation` of a solve, every group re-checked from the numbers, whichever
    formulation solved it (``result`` has status, solver, objective, bound, mip_gap, notes)."""
    violations = [v for g in groups for v in g.check(sol, data, config)]
    return Allocation(
        ids=catalog.project_ids,
        y=sol.y,
        fund_usd=sol.f * BILLION,
        status=result.status,
        solver=result.solver,
        objective=result.objective,
        bound=result.bound,
        mip_gap=result.mip_gap,
        timings=timings,
        shadow_prices=[p.as_dict() for p in prices],
        binding=sorted({f"{p.group}: {p.row}" for p in prices if p.binding}),
        notes=[*result.notes, *(notes or []), *(f"re-check: {v}" for v in violations)],
    )


def _greedy_fallback(
    model: AllocationModel, config: RunConfig, incumbent: np.ndarray, failed: SolveResult
) -> SolveResult:
    model.fix(incumbent)
    # the amounts of a fixed selection are a small LP: do not starve it of the MILP's time limit
    lp_solver = config.solver.model_copy(
        update={"time_limit_s": max(config.solver.time_limit_s, FALLBACK_LP_S)}
    )
    try:
        lp = solve_milp(model, lp_solver, kind="lp")
    finally:
        model.release()
    if lp.solution is None or lp.status != "optimal":
        raise SolverError(
            "no solver found a portfolio within solver.time_limit_s"
            f" ({config.solver.time_limit_s:g} s) and the greedy selection does not satisfy every"
            " group; raise solver.time_limit_s. Solvers: " + "; ".join(failed.notes)
        )
    sol = Solution(y=np.round(lp.solution.y), f=lp.solution.f)
    return SolveResult(
        "greedy",
        "greedy",
        objective=model.objective_value(sol),
        solution=sol,
        notes=[
            *failed.notes,
            "every solver failed: this is the greedy incumbent (feasible, not optimised)",
        ],
    )


def check_solution(
    allocation: Allocation, catalog: Catalog, scenarios: ScenarioSet, config: RunConfig
) -> list[str]:
    """Every enabled group re-checked on ``allocation`` from the numbers; [] when all hold.

    Besides the groups: selection and amounts consistent (``ℓ K y <= f <= h K y``), committed
    projects in.
    """
    data = build_data(catalog, scenarios, config)
    sol = allocation.solution()
    out = []
    tol = 1e-6 * np.maximum(1.0, data.f_max)
    for i, pid in enumerate(data.ids):
        if sol.y[i] > 0.5 and not data.f_min[i] - tol[i] <= sol.f[i] <= data.f_max[i] + tol[i]:
            out.append(
                f"amounts: {pid} receives ${sol.f[i]:.3f}B outside"
                f" [{data.f_min[i]:.3f}, {data.f_max[i]:.3f}]"
            )
        if sol.y[i] < 0.5 and sol.f[i] > tol[i]:
            out.append(f"amounts: {pid} is not selected but receives ${sol.f[i]:.3f}B")
        if data.committed[i] and sol.y[i] < 0.5:
            out.append(f"committed: {pid} is committed but not selected")
    for cls in GROUPS:
        group = cls(data, config)
        if group.enabled(config):
            out += group.check(sol, data, config)
    return out
