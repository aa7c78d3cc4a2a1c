"""The cut model: the allocation model straight into HiGHS, the default formulation
(``solver.name: auto`` or ``highs_direct``; :func:`portopt.model.formulation`).

Same model as the full CVXPY one (DESIGN.md, money in $B), but the two terms whose size grows
with the scenarios are *outer-approximated by cuts* instead of being written out, so the MILP has
``2n + K`` columns and a few hundred rows whatever S is. The cut lowering of coverage is
:class:`~portopt.model.coverage.CoverageCuts` (one column :math:`\\theta_k` per saturating
chokepoint, bounded above by cuts); a group whose rows grow with the scenarios (the recoupment
CVaR) is found by its ``scenario_sized`` flag and lowered by its own oracle
(:meth:`~portopt.model.terms.Term.separate`). This module holds the HiGHS instance, the
Kelley and MILP rounds and the cut pool.

Solve: Kelley's cutting planes on the LP relaxation (cheap LPs, at most 30% of the time limit)
until no cut is violated by more than a tolerance, then the MILP (with an incumbent passed by
``setSolution`` when the caller gives one; by default none: HiGHS's own heuristics find one in
well under a second on the cut model, while ``portopt.model.incumbent.greedy_selection`` costs
O(n² S K) per exchange pass and ignores the share groups, so its selection often has no
feasible amounts). The MILP of the cut model is a relaxation of the full model, so its dual bound is
a valid upper bound of the true optimum; the incumbent's objective is computed exactly
(``min(1, ·)``, exact CVaR) after its amounts are repaired, if needed, by an LP with the selection
fixed. When the two are further apart than ``solver.mip_gap`` (a cut was missing at the MILP's
answer), the cuts at every improving solution HiGHS found are added and the MILP is re-solved
from the best true portfolio, until the gap is closed or the time limit is reached (HiGHS's
lazy-constraint callback is not used: between rounds is enough, usually one or two rounds). The
gap reported is ``(bound - objective) / objective`` with the exact objective: honest.

The other groups are the model's own terms (:mod:`portopt.model.groups`), compiled by CVXPY
into a small problem (``O(n)`` rows) whose matrices are passed to HiGHS.

**Re-solves** (frontier points, :class:`DirectSweep`). No cut depends on a Parameter value: a
coverage cut depends on the scenarios only, and a CVaR row depends on ε only through its
coefficients ``π^T L - ε 1``, so the pool of every cut found at earlier points (coverage cuts
as they are, CVaR cuts as ``π^T L``, their rows rebuilt for the new ε) is valid at every point
of the same catalog and scenarios. A re-solve re-applies the new Parameter values to the
compiled groups (CVXPY's DPP cache: the ``O(n)`` rows only), reuses the compiled LP variant for
the shadow prices, and runs the solve loop above from the previous point's selection (when it
has feasible amounts) with the pool beside the model: each Kelley round adds, with the
oracle's cuts, every pooled cut the LP point violates (a pooled cut becomes a row only once
violated: adding the whole pool up front made HiGHS's root work two to three times larger on
the bundled catalog, the rows it needs being a fraction of the pool), so most cut rounds are
skipped. The bound stays valid (every pooled cut is), and the gap honest.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
from cvxpy import settings as cps

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.scenario_set import ScenarioSet
from portopt.model.coverage import CoverageCuts
from portopt.model.data import BILLION, ModelData, build_data
from portopt.model.groups import GROUPS
from portopt.model.parameters import model_parameter_keys, structural_changes
from portopt.model.solve import highs_model, new_highs, set_threads, variable_columns
from portopt.model.terms import ShadowPrice, Slack, Solution, Term, Vars


def scenario_sized(groups: list[Term]) -> Term | None:
    """The group among ``groups`` whose rows grow with the scenarios
    (:attr:`~portopt.model.terms.Term.scenario_sized`), lowered by cuts; None without one.
    The cut rows and their pool carry no group name, so the cut model takes at most one."""
    sized = [g for g in groups if g.scenario_sized]
    if len(sized) > 1:  # a programming error, not a user's (exit 4)
        raise RuntimeError(
            "the cut model lowers one scenario-sized group, got " + ", ".join(g.name for g in sized)
        )
    return sized[0] if sized else None


COVERAGE_TOL = 1e-7
"""A coverage cut is added where θ_k exceeds g_k by more than this (objective units)."""
CVAR_TOL = 1e-6
"""A CVaR cut is added where CVaR exceeds ε F by more than this relative to F ($B)."""
LP_ROUNDS = 60
STALL_SHARE = 0.1
"""The LP rounds stop when one lowers the bound by less than this share of ``solver.mip_gap``."""
HIGHS_GAP_SHARE = 0.5
"""HiGHS's own MIP gap as a share of ``solver.mip_gap``: the rest is left for the coverage
and CVaR cuts the MILP's answer still violates, which the exact objective pays for."""
HEURISTICS_OFF = ("mip_heuristic_run_rins", "mip_heuristic_run_root_reduced_cost")
"""HiGHS sub-MIP heuristics switched off: with the project binaries a plan's tree is a few
dozen nodes and these two root sub-MIPs were most of a round's time (RENS, which finds the
incumbents of tight hard targets, stays on; docs/allocation-model.md, "Solving it"); on the
one-shot model they cost 30% of the marginal re-solves for the same answers."""
RESOLVE_OPTIONS = {"mip_allow_restart": False, "mip_heuristic_run_feasibility_jump": False}
"""HiGHS options of the warm re-solves (:mod:`portopt.model.marginal`): the same answers, 40%
less time on the one-shot model's 232 re-solves (no restart after the root, no feasibility
jump: the start is the base plan with one project flipped). Not for the base solve, whose
tight hard targets need both (bench/RESULTS.md)."""
STOPPED = {"kTimeLimit": "time_limit", "kSolutionLimit": "node_limit"}
"""HiGHS's statuses of a limit reached with its answer intact, and portopt's word for each."""
BROKEN = (
    "kSolveError",
    "kInterrupt",
    "kHighsInterrupt",
    "kModelError",
    "kPresolveError",
    "kPostsolveError",
    "kMemoryLimit",
    "kLoadError",
    "kNotset",
    "kUnknown",
)
"""HiGHS's statuses of a solve without a trustworthy answer: no bound or optimum is taken
from one."""


@dataclass(frozen=True)
class SolveProgress:
    """What the optimise stage shows while HiGHS works: the MILP round and HiGHS's incumbent,
    bound (the model's objective, not negated) and relative gap; None before there is one."""

    round: int
    incumbent: float | None
    bound: float | None
    gap: float | None
    nodes: int


@dataclass
class DirectResult:
    """What the direct solve found: the best true portfolio and an honest gap."""

    status: str
    solution: Solution | None
    objective: float | None
    bound: float | None
    mip_gap: float | None
    timings: dict[str, float]
    rounds: int
    cuts: int
    notes: list[str]
    model: DirectModel | None = None
    solver: str = "highs_direct"
    nodes: list[int] = field(default_factory=list)
    """Branch-and-bound nodes of each MILP round (deterministic for a given input)."""


def scenario_data(catalog: Catalog, scenarios: ScenarioSet, config: RunConfig) -> ModelData:
    """:class:`ModelData` without the full-scenario coverage lowering the cut model does not use."""
    return build_data(catalog, scenarios, config, aux=False)


class DirectModel:
    """The cut model in one ``highspy.Highs`` instance, built once and grown by cuts.

    HiGHS minimises the negated objective (so row duals read back through CVXPY's inverse
    chain have the model's signs). ``lp_lower`` builds the LP variant instead: y relaxed to
    ``[lp_lower, 1]`` (the shadow-price LP of :mod:`portopt.model.shadow`).
    """

    def __init__(
        self,
        data: ModelData,
        cover: CoverageCuts,
        config: RunConfig,
        lp_lower: np.ndarray | None = None,
        slack: tuple[set[str], set[str]] | None = None,
    ) -> None:
        import highspy as hp

        self.hp, self.data, self.cover, self.config = hp, data, cover, config
        self.lp_lower = lp_lower
        self.slack = Slack(active=True) if slack is not None else None
        self.slack_groups = slack
        """The explainer's variant (:mod:`portopt.model.explain`): ``(enforced, weighted)``;
        every group but the scenario-sized one with slack on its rows, the groups not
        ``enforced`` free to give, the penalty of the ``weighted`` ones as the objective
        (:class:`Slack`)."""
        self.slack_cols: dict[tuple[str, str], np.ndarray] = {}
        self.log: list[tuple] = []
        self.pool: list[tuple] = []
        """Valid cuts not yet rows (earlier points' cuts): :meth:`kelley` adds the violated ones."""
        self.cvar_rows: list[int] = []
        self.lp_bound = np.inf
        self.highs_s = 0.0
        """Seconds spent inside HiGHS's ``run`` since the last build."""
        self.timings: dict[str, float] = {}
        self.on_progress: Callable[[SolveProgress], None] | None = None
        """Told the incumbent, bound and gap as they improve during a MILP round."""
        self.round = 0
        self.xcol = np.zeros(0, dtype=np.int64)
        self.xgroups: list[np.ndarray] = []
        t0 = time.perf_counter()
        self._compile_groups()
        self.timings["compile_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._build()
        self.timings["model_build_s"] = time.perf_counter() - t0

    @classmethod
    def from_inputs(
        cls, catalog: Catalog, scenarios: ScenarioSet, config: RunConfig
    ) -> DirectModel:
        t0 = time.perf_counter()
        data = scenario_data(catalog, scenarios, config)
        cover = cuts_of(data)
        seconds = time.perf_counter() - t0
        model = cls(data, cover, config)
        model.timings = {"model_data_s": seconds, **model.timings}
        return model

    def retarget(self, config: RunConfig, lp_lower: np.ndarray | None = None) -> None:
        """The same model with the Parameter values of ``config`` and no cuts.

        The groups' Parameters are re-applied through CVXPY's DPP cache (no canonicalisation)
        and a fresh HiGHS instance gets the new rows; the caller re-adds the cuts it keeps.
        ``config`` must differ from the compiled one in Parameter keys only
        (:meth:`DirectSweep.update` checks). ``lp_lower``: the LP variant's new lower bounds.
        """
        t0 = time.perf_counter()
        self.config = config
        for g in self.groups:
            g.update(config)
        if lp_lower is not None:
            if self.lp_lower is None:
                raise ValueError("lp_lower re-targets the LP variant only")
            self.lp_lower = lp_lower
        data, self.chain, self.inverse = self.problem.get_problem_data(cp.HIGHS, ignore_dpp=False)
        self.base = highs_model(self.hp, data)
        self.timings = {"compile_s": time.perf_counter() - t0}
        t0 = time.perf_counter()
        self.log, self.pool, self.cvar_rows, self.lp_bound = [], [], [], np.inf
        self.highs_s = 0.0
        self._build()
        self.timings["model_build_s"] = time.perf_counter() - t0

    @property
    def cuts(self) -> int:
        return len(self.log)

    # -- building ---------------------------------------------------------------------------
    def _compile_groups(self) -> None:
        """The model's own group terms, less the CVaR rows (cut here), compiled by CVXPY."""
        d, config = self.data, self.config
        f_lo = np.where(d.committed, d.f_max, 0.0)
        if self.lp_lower is None:
            y = cp.Variable(d.n, boolean=True, name="y")
        else:  # the lower bounds are set in HiGHS (_build), so a re-target needs no compile
            y = cp.Variable(d.n, bounds=[0.0, 1.0], name="y")
        v = Vars(y=y, f=cp.Variable(d.n, bounds=[f_lo, d.f_max], name="f"))
        cons = [v.f <= cp.multiply(d.f_max, v.y), v.f >= cp.multiply(d.f_min, v.y)]
        self.groups = [g(d, config) for g in GROUPS]
        self.groups = [g for g in self.groups if g.enabled(config)]
        self.sized = scenario_sized(self.groups)
        slack = self.slack
        for g in self.groups:
            if slack is None or g.scenario_sized:
                cons += g.compile_cut_form(v)
            else:
                cons += g.compile(v, slack)
        if slack is None:
            self.problem = cp.Problem(cp.Maximize(0), cons)
        else:
            assert self.slack_groups is not None
            slack.set(*self.slack_groups)
            self.problem = cp.Problem(cp.Minimize(slack.penalty()), cons + slack.bounds())
        data, self.chain, self.inverse = self.problem.get_problem_data(cp.HIGHS, ignore_dpp=False)
        self.base = highs_model(self.hp, data)
        self.base_cols, self.base_rows = self.base.lp_.num_col_, self.base.lp_.num_row_
        self.ycol = variable_columns(data, v.y)
        self.fcol = variable_columns(data, v.f)
        self.penalty = np.asarray(data[cps.C], dtype=float) if slack is not None else None
        if slack is not None:
            self.slack_cols = {
                key: variable_columns(data, var) for key, var in slack.variables.items()
            }

    def _build(self) -> None:
        d, m, solver = self.data, self.config.model, self.config.solver
        h = new_highs()
        h.setOptionValue("output_flag", bool(solver.verbose))
        h.setOptionValue("log_to_console", False)  # solver.verbose goes to stderr (_Guard)
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("mip_rel_gap", HIGHS_GAP_SHARE * float(solver.mip_gap))
        if solver.node_limit is not None:
            h.setOptionValue("mip_max_nodes", int(solver.node_limit))
        h.passModel(self.base)
        committed = self.ycol[d.committed].astype(np.int32)
        if committed.size:
            one = np.ones(committed.size)
            h.changeColsBounds(committed.size, committed, one, one)
        if self.lp_lower is not None:
            yc = self.ycol.astype(np.int32)
            lower = np.maximum(np.asarray(self.lp_lower, float), d.committed)
            h.changeColsBounds(yc.size, yc, lower, np.ones(yc.size))
        self.tcol = np.arange(self.base_cols, self.base_cols + self.cover.count)
        for top in self.cover.upper():
            h.addVar(0.0, float(top))
        self.xcol, self.xgroups = np.zeros(0, dtype=np.int64), []
        if self.lp_lower is None and d.is_plan:
            self._project_binaries(h)
        for name in HEURISTICS_OFF:
            h.setOptionValue(name, False)
        self.ncol = h.getNumCol()
        cost = np.zeros(self.ncol)
        cost[self.ycol] = self.cover.c_lin
        tiebreak = m.recovery_tiebreak / (m.budget_usd / BILLION)
        cost[self.fcol] = tiebreak * (d.e_japan - d.e_draw) + d.f_reward
        cost[self.tcol] = 1.0
        if self.penalty is not None:  # the explainer's variant minimises the slack penalty
            cost = np.zeros(self.ncol)
            cost[: self.penalty.size] = -self.penalty
            zero = np.zeros(self.tcol.size)
            h.changeColsBounds(self.tcol.size, self.tcol.astype(np.int32), zero, zero)
        self.cost = cost
        h.changeColsCost(self.ncol, np.arange(self.ncol, dtype=np.int32), -cost)
        self.h = h
        self.guard = _Guard(self)
        self.guard.attach(h)
        ints = self.ycol if self.lp_lower is None else np.zeros(0, np.int64)
        self.ints = np.r_[ints, self.xcol].astype(np.int32)

    def _project_binaries(self, h: Any) -> None:
        """One binary x_q = Σ_t y_{q,t} per project with several rounds (a plan).

        The same feasible set and the same LP bound (x is a linear image of y), but HiGHS can
        branch on the project: x_q = 0 removes it from every round at once, where y_{q,t} = 0
        leaves its near-identical other rounds in the LP and barely moves the bound (the tree
        of the default plan goes from thousands of nodes to a few dozen;
        docs/allocation-model.md, "Solving it")."""
        d = self.data
        groups = [c for c in (d.columns_of(q) for q in range(len(d.projects))) if c.size > 1]
        if not groups:
            return
        first = h.getNumCol()
        k = len(groups)
        h.addVars(k, np.zeros(k), np.ones(k))
        self.xcol = np.arange(first, first + k)
        self.xgroups = groups
        starts, index, value = [], [], []
        for j, cols in enumerate(groups):
            starts.append(len(index))
            index += [*self.ycol[cols].tolist(), int(self.xcol[j])]
            value += [1.0] * cols.size + [-1.0]
        h.addRows(
            k,
            np.zeros(k),
            np.zeros(k),
            len(index),
            np.array(starts, dtype=np.int32),
            np.array(index, dtype=np.int32),
            np.array(value, dtype=np.float64),
        )
        kind = self.hp.HighsVarType.kInteger
        h.changeColsIntegrality(k, self.xcol.astype(np.int32), [kind] * k)

    # -- cuts -------------------------------------------------------------------------------
    def add_cuts(self, cuts: list[tuple]) -> None:
        """Add cuts ``("cov", k, const, coef)`` (θ_k - coef·y_who <= const) or
        ``("cvar", coef)`` (coef·f <= 0) as rows."""
        if not cuts:
            return
        idx, val, upper = [], [], []
        for cut in cuts:
            if cut[0] == "cov":
                _, k, const, coef = cut
                keep = coef != 0
                who = self.cover.who[k][keep]
                idx.append(np.r_[self.tcol[k], self.ycol[who]])
                val.append(np.r_[1.0, -coef[keep]])
                upper.append(const)
            else:
                self.cvar_rows.append(self.h.getNumRow() + len(upper))
                idx.append(self.fcol)
                val.append(cut[1])
                upper.append(0.0)
        starts = np.cumsum([0] + [a.size for a in idx[:-1]]).astype(np.int32)
        flat = np.concatenate(idx).astype(np.int32)
        self.h.addRows(
            len(upper),
            np.full(len(upper), -np.inf),
            np.array(upper),
            flat.size,
            starts,
            flat,
            np.concatenate(val).astype(np.float64),
        )
        self.log += cuts

    def take_pooled(
        self, y: np.ndarray, f: np.ndarray, theta: np.ndarray, tol_scale: float = 1.0
    ) -> list[tuple]:
        """The cuts of ``self.pool`` (earlier points' cuts, not yet rows) violated at the
        point, taken out of the pool."""
        if not self.pool:
            return []
        F = float(f.sum())
        keep, out = [], []
        for cut in self.pool:
            if cut[0] == "cov":
                _, k, const, coef = cut
                who = self.cover.who[k]
                bad = theta[k] - const - coef @ y[who] > COVERAGE_TOL * tol_scale
            else:
                bad = cut[1] @ f > CVAR_TOL * max(1.0, F)
            (out if bad else keep).append(cut)
        self.pool = keep
        return out

    def coverage_cuts(self, y: np.ndarray, theta: np.ndarray | None, tol: float) -> list[tuple]:
        """Cuts tight at ``y`` for every θ_k above g_k(y) by more than ``tol`` (all if None)."""
        return [("cov", *cut) for cut in self.cover.cuts(y, theta, tol)]

    @property
    def eps(self) -> float:
        """The shift of the scenario-sized group's cut rows (the CVaR tolerance ε)."""
        return self.sized.cut_shift if self.sized is not None else 0.0

    def cvar_cut(self, f: np.ndarray, tol: float = CVAR_TOL) -> tuple[str, np.ndarray] | None:
        """The most violated CVaR row at ``f`` as ``("cvar", π^T L - ε)``, or None."""
        if self.sized is None:
            return None
        piL = self.sized.separate(f, tol)
        return None if piL is None else ("cvar", piL - self.eps)

    # -- solves -----------------------------------------------------------------------------
    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(y, f, θ) of a HiGHS column vector."""
        x = np.asarray(x)
        return x[self.ycol], np.maximum(x[self.fcol], 0.0), x[self.tcol]

    def _set_integer(self, integer: bool) -> None:
        if not self.ints.size:
            return
        kind = self.hp.HighsVarType.kInteger if integer else self.hp.HighsVarType.kContinuous
        self.h.changeColsIntegrality(self.ints.size, self.ints, [kind] * self.ints.size)

    def run(self, time_limit: float) -> str:
        """One HiGHS run under ``time_limit`` seconds; its model status's name.

        A signal (Ctrl-C, SIGTERM) during the run stops HiGHS at its next callback and is then
        delivered as it would have been without HiGHS (``KeyboardInterrupt`` for Ctrl-C): an
        interrupted solve never comes back as an answer (:class:`_Guard`)."""
        self.h.setOptionValue("time_limit", max(1.0, float(time_limit)))
        t0 = time.perf_counter()
        try:
            self.guard.run()
        finally:
            self.highs_s += time.perf_counter() - t0
        return self.h.getModelStatus().name

    def kelley(
        self, deadline: float, tol_scale: float = 1.0, stall: float = 0.0
    ) -> tuple[str, np.ndarray | None]:
        """Cutting planes on the LP relaxation until no cut is violated beyond tolerance, or
        (``stall`` > 0) until a round lowers the LP bound by less than ``stall`` relative.

        ``self.lp_bound`` is then the last LP's objective: an upper bound of the model's
        optimum whenever the loop stops (every LP with a subset of the cuts is a relaxation;
        HiGHS forgets the value when a row is added, so it is kept here).
        """
        self._set_integer(False)
        x = None
        try:
            for _ in range(LP_ROUNDS):
                status = self.run(deadline - time.perf_counter())
                if status != "kOptimal":
                    return status, x
                before = self.lp_bound
                self.lp_bound = -float(self.h.getInfo().objective_function_value)
                if before - self.lp_bound < stall * abs(self.lp_bound):
                    x = np.asarray(self.h.getSolution().col_value)
                    break
                x = np.asarray(self.h.getSolution().col_value)
                y, f, theta = self.split(x)
                cuts = self.coverage_cuts(y, theta, COVERAGE_TOL * tol_scale)
                cvar_row = self.cvar_cut(f)
                if cvar_row is not None:
                    cuts.append(cvar_row)
                cuts += self.take_pooled(y, f, theta, tol_scale)
                if not cuts or time.perf_counter() > deadline:
                    break
                self.add_cuts(cuts)
        finally:
            self._set_integer(True)
        return "kOptimal", x

    def amounts(self, y: np.ndarray, deadline: float) -> np.ndarray | None:
        """Feasible amounts for the selection ``y`` (CVaR exact), or None if there are none."""
        y = np.round(y)
        yc = self.ycol.astype(np.int32)
        lp = self.h.getLp()
        lo, hi = np.asarray(lp.col_lower_)[yc].copy(), np.asarray(lp.col_upper_)[yc].copy()
        self.h.changeColsBounds(yc.size, yc, y, y)
        try:
            status, x = self.kelley(deadline, 1e9)  # coverage is fixed: only CVaR cuts matter
        finally:
            self.h.changeColsBounds(yc.size, yc, lo, hi)
        if status != "kOptimal" or x is None:
            return None
        f = self.split(x)[1] * (y > 0.5)
        return None if self.cvar_cut(f) is not None else f

    def full_vector(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """A column vector for ``setSolution``: θ_k at the exact g_k(y)."""
        x = np.zeros(self.ncol)
        x[self.ycol], x[self.fcol] = y, f
        x[self.tcol] = self.cover.values(y)
        x[self.xcol] = [float(np.asarray(y)[c].sum()) for c in self.xgroups]
        return x

    def true_objective(self, y: np.ndarray, f: np.ndarray) -> float:
        return self.cover.value(y) + float(self.cost[self.fcol] @ f)

    @contextmanager
    def options(self, values: dict[str, Any]) -> Iterator[None]:
        """HiGHS options set to ``values`` inside the block, restored after."""
        before = {key: self.h.getOptionValue(key)[1] for key in values}
        for key, value in values.items():
            self.h.setOptionValue(key, value)
        try:
            yield
        finally:
            for key, value in before.items():
                self.h.setOptionValue(key, value)

    def linear(self, on_f: np.ndarray | None) -> None:
        """Maximise ``on_f · f`` instead (zero: any feasible plan), coverage out of the
        objective (θ fixed at 0): the explainer's feasibility tests and largest gives."""
        zero = np.zeros(self.tcol.size)
        self.h.changeColsBounds(self.tcol.size, self.tcol.astype(np.int32), zero, zero)
        cost = np.zeros(self.ncol)
        if on_f is not None:
            cost[self.fcol] = on_f
        self.cost = cost
        self.h.changeColsCost(self.ncol, np.arange(self.ncol, dtype=np.int32), -cost)

    def solve_linear(self, deadline: float, lp_only: bool = False) -> tuple[str, np.ndarray | None]:
        """The model's optimum when its objective is linear (:meth:`linear`, or the slack
        variant), the CVaR exact by cuts: ``("infeasible", None)``, ``("optimal", x)`` (within
        HiGHS's MIP gap), or another status without an answer (a limit, an error). The LP
        relaxation decides first, in a fraction of a second: an infeasible LP is a proof.
        ``lp_only``: stop there, ``("feasible", x)`` meaning only that the LP is."""
        status, x = self.kelley(deadline, 1e9)
        if status in ("kInfeasible", "kUnboundedOrInfeasible"):
            return "infeasible", None
        if status != "kOptimal" or x is None:
            return status, None
        if lp_only or not self.ints.size:
            return ("feasible" if lp_only else "optimal"), x
        self.round = 0
        while time.perf_counter() < deadline:
            self.round += 1
            status = self.run(deadline - time.perf_counter())
            if status in ("kInfeasible", "kUnboundedOrInfeasible"):
                return "infeasible", None
            if status != "kOptimal" or self.h.getInfo().primal_solution_status != 2:
                return STOPPED.get(status, "error"), None
            x = np.asarray(self.h.getSolution().col_value)
            y, f, _ = self.split(x)
            cut = self.cvar_cut(f * (np.round(y) > 0.5))
            if cut is None:
                return "optimal", x
            self.add_cuts([cut])
        return "time_limit", None


class _Guard:
    """A model's HiGHS callbacks: the progress of a MILP round, ``solver.verbose``'s log (to
    stderr, so ``--json`` stays clean), and signals.

    A Python exception raised inside a HiGHS callback is swallowed by HiGHS, which then ends
    with ``kSolveError``, and Ctrl-C's ``KeyboardInterrupt`` lands in whichever callback runs
    next. So, while HiGHS runs, a SIGINT or SIGTERM handler that is a Python function is
    replaced by one that only records the signal; the interrupt callbacks then stop HiGHS, and
    after the run the previous handler is called with the signal (``KeyboardInterrupt`` for
    Ctrl-C). If it returns, ``KeyboardInterrupt`` is raised anyway: the solve was cut short and
    has no answer. An exception inside a callback is re-raised the same way.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, model: DirectModel) -> None:
        self.model = model
        self.signum: int | None = None
        self.error: BaseException | None = None
        self.shown: tuple | None = None

    def attach(self, h: Any) -> None:
        h.cbMipInterrupt.subscribe(self.on_mip)
        h.cbMipImprovingSolution.subscribe(self.on_mip)
        h.cbMipLogging.subscribe(self.on_mip)
        h.cbSimplexInterrupt.subscribe(self.on_interrupt)
        h.cbIpmInterrupt.subscribe(self.on_interrupt)
        if self.model.config.solver.verbose:
            h.cbLogging.subscribe(self.on_log)

    def on_interrupt(self, event: Any) -> None:
        if self.signum is not None or self.error is not None:
            event.interrupt()

    def on_mip(self, event: Any) -> None:
        if self.signum is not None or self.error is not None:
            event.interrupt()
            return
        report = self.model.on_progress
        if report is None:
            return
        try:
            out = event.data_out
            primal, dual = float(out.mip_primal_bound), float(out.mip_dual_bound)
            shown = (primal, dual)
            if shown == self.shown:
                return
            self.shown = shown
            # HiGHS minimises the negated objective
            incumbent = -primal if np.isfinite(primal) else None
            bound = -dual if np.isfinite(dual) else None
            gap = _gap(incumbent, bound) if incumbent is not None and bound is not None else None
            report(SolveProgress(self.model.round, incumbent, bound, gap, int(out.mip_node_count)))
        except BaseException as exc:  # re-raised after the run
            self.error = exc
            event.interrupt()

    def on_log(self, event: Any) -> None:
        sys.stderr.write(event.message)

    def _record(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def run(self) -> None:
        """``h.run()`` with signals held back until it returns (see the class)."""
        self.signum, self.error, self.shown = None, None, None
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                handler = signal.getsignal(sig)
                if callable(handler):
                    previous[sig] = handler
                    signal.signal(sig, self._record)
        try:
            # one thread unless asked: HiGHS's path, and so the plan, the same on any machine
            set_threads(self.model.h, int(self.model.config.solver.threads or 1))
            self.model.h.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.signum is not None:
            signum, self.signum = self.signum, None
            previous[signum](signum, None)
            raise KeyboardInterrupt(f"signal {signum} during the solve")
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def shadow_prices_direct(
    parent: DirectModel, sol: Solution, deadline: float, lp: DirectModel | None = None
) -> list[ShadowPrice]:
    """Each enabled group's dual in the user's units, as :func:`portopt.model.shadow` defines
    them (chosen projects fixed in, the others relaxed to [0, 1]), from the cut model's LP.

    The LP starts from every cut the MILP used and is cut again at its own optimum until no
    cut is violated, so its value is the full LP's; the group rows' duals come back through
    CVXPY's inverse chain, and the CVaR row's dual is the sum of its cuts' duals (relaxing ε by
    δ raises every cut's right-hand side by δF). Where the LP is degenerate (a kink of the
    coverage), its duals are not unique and may differ from the auxiliary formulation's: both
    are valid subgradients. ``lp``: an LP variant built earlier on the same data, re-targeted
    here instead of compiling a new one (re-solves).
    """
    from types import SimpleNamespace

    d = parent.data
    lower = np.maximum(d.committed, sol.y > 0.5).astype(float)
    if lp is None:
        lp = DirectModel(d, parent.cover, parent.config, lp_lower=lower)
    elif lp.log or lp.config is not parent.config or not np.array_equal(lp.lp_lower, lower):
        lp.retarget(parent.config, lower)  # not when it was built just now for this point
    lp.add_cuts(list(parent.log))
    status, x = lp.kelley(deadline)
    if status != "kOptimal" or x is None:
        return []
    solution = lp.h.getSolution()
    row_dual = np.asarray(solution.row_dual)
    results = {
        "solution": SimpleNamespace(
            col_value=np.asarray(solution.col_value)[: lp.base_cols],
            row_dual=row_dual[: lp.base_rows],
        ),
        "info": lp.h.getInfo(),
        "model_status": "kOptimal",
        "run_time": lp.h.getRunTime(),
    }
    lp.problem.unpack_results(results, lp.chain, lp.inverse)
    if lp.sized is not None:  # HiGHS minimised -objective: its duals are <= 0
        lp.sized.cut_dual = float(-row_dual[lp.cvar_rows].sum())
    prices: list[ShadowPrice] = []
    for group in lp.groups:
        prices += group.shadow(sol, parent.config)
    return prices


def _solve(
    model: DirectModel,
    config: RunConfig,
    start: float,
    incumbent: np.ndarray | None = None,
    pool: list[tuple] | None = None,
    incumbent_name: str = "the incumbent",
) -> DirectResult:
    """The solve loop on a built (or re-targeted) cut model; ``pool``: valid cuts found
    earlier, each added as a row once an LP point violates it.

    It ends on the gap (``solver.mip_gap``), on HiGHS's node limit (``solver.node_limit``, per
    MILP round) or, as a safety net, on the wall clock (``solver.time_limit_s``): only the first
    two are deterministic, and the status says which ended it (``optimal``, ``node_limit``,
    ``time_limit``; ``error`` when HiGHS failed, with no bound taken from it)."""
    deadline = start + float(config.solver.time_limit_s)
    timings = dict(model.timings)
    notes: list[str] = []
    gap_target = float(config.solver.mip_gap)
    model.pool = list(pool or [])  # rows only once violated (kelley): a smaller MILP
    model.round = 0

    t0 = time.perf_counter()
    # the MILP rounds cut where the relaxation still needs it: stop the LP rounds once they stall
    status, x = model.kelley(deadline, stall=STALL_SHARE * gap_target)
    timings["lp_cuts_s"] = time.perf_counter() - t0
    if status in ("kInfeasible", "kUnboundedOrInfeasible"):
        return DirectResult("infeasible", None, None, None, None, timings, 0, model.cuts, notes)
    lp_bound = model.lp_bound if x is not None and status == "kOptimal" else None

    t0 = time.perf_counter()
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    f0 = model.amounts(incumbent, deadline) if incumbent is not None else None
    if incumbent is not None and f0 is not None:
        y0 = np.round(incumbent)
        best = (model.true_objective(y0, f0), y0, f0)
        model.add_cuts(model.coverage_cuts(y0, None, 0.0))
    elif incumbent is not None:
        notes.append(f"{incumbent_name} has no feasible amounts; HiGHS starts without it")
    timings["incumbent_s"] = time.perf_counter() - t0

    if x is not None and lp_bound is not None:  # an integral LP optimum needs no MILP
        done = _integral(model, x)
        if done is not None and (best is None or done[0] > best[0]):
            best = done
        if best is not None and _gap(best[0], lp_bound) <= gap_target:
            timings["solve_s"] = 0.0
            timings["highs_s"] = model.highs_s
            return DirectResult(
                "optimal",
                Solution(y=best[1], f=best[2]),
                best[0],
                float(lp_bound),
                _gap(best[0], lp_bound),
                timings,
                0,
                model.cuts,
                notes,
                model,
                nodes=[],
            )

    t0 = time.perf_counter()
    found: list[np.ndarray] = []

    def on_solution(event: Any) -> None:  # every improving MILP solution, for the next cuts
        found.append(np.array(event.data_out.mip_solution, copy=True))

    model.h.cbMipImprovingSolution.subscribe(on_solution)
    bound, rounds = (lp_bound if lp_bound is not None else np.inf), 0
    nodes: list[int] = []
    stop = "gap"
    try:
        while True:
            if time.perf_counter() >= deadline:
                stop = "time_limit"
                break
            rounds += 1
            model.round = rounds
            if best is not None:
                x0 = model.full_vector(best[1], best[2])
                model.h.setSolution(
                    model.ncol, np.arange(model.ncol, dtype=np.int32), x0.astype(np.float64)
                )
            found.clear()
            status = model.run(deadline - time.perf_counter())
            info = model.h.getInfo()
            nodes.append(max(0, int(info.mip_node_count)))
            if status in ("kInfeasible", "kUnboundedOrInfeasible"):
                if best is None:
                    timings["solve_s"] = time.perf_counter() - t0
                    return DirectResult(
                        "infeasible",
                        None,
                        None,
                        None,
                        None,
                        timings,
                        rounds,
                        model.cuts,
                        notes,
                        nodes=nodes,
                    )
                break
            if status in BROKEN or status not in ("kOptimal", *STOPPED):
                stop = "error"
                notes.append(f"HiGHS ended with {status}: no bound is taken from this solve")
                bound = np.inf
                break
            if np.isfinite(info.mip_dual_bound):  # HiGHS minimised -objective
                bound = min(bound, -float(info.mip_dual_bound))
            if info.primal_solution_status == 2:
                found.append(np.asarray(model.h.getSolution().col_value))
            rows = []
            for xs in found:
                y, f, theta = model.split(xs)
                y = np.round(y)
                rows += model.coverage_cuts(y, theta, COVERAGE_TOL)
                cvar_row = model.cvar_cut(f * (y > 0.5))
                if cvar_row is not None:
                    rows.append(cvar_row)
                    f = model.amounts(y, deadline)
                    if f is None:
                        continue
                f = f * (y > 0.5)
                value = model.true_objective(y, f)
                if best is None or value > best[0]:
                    best = (value, y, f)
            model.add_cuts(rows)
            if best is not None and _gap(best[0], bound) <= gap_target:
                break
            if status in STOPPED:
                stop = STOPPED[status]
                break
            if not rows:  # HiGHS proved its own gap and nothing is left to cut
                break
    finally:
        model.h.cbMipImprovingSolution.unsubscribe(on_solution)
    timings["solve_s"] = time.perf_counter() - t0
    if best is None or stop == "error":
        return DirectResult(
            "error",
            None,
            None,
            None,
            None,
            timings,
            rounds,
            model.cuts,
            [*notes, "HiGHS found no feasible portfolio" + (" in time" if best is None else "")],
            nodes=nodes,
        )
    timings["highs_s"] = model.highs_s
    gap = _gap(best[0], bound)
    if gap <= gap_target + 1e-12:
        status = "optimal"
    else:
        status = stop if stop in ("time_limit", "node_limit") else "time_limit"
        limit = (
            f"solver.node_limit ({config.solver.node_limit} nodes)"
            if status == "node_limit"
            else f"solver.time_limit_s ({config.solver.time_limit_s:g} s)"
        )
        notes.append(f"highs_direct stopped at {limit} with a gap of {gap:.2%}")
    return DirectResult(
        status,
        Solution(y=best[1], f=best[2]),
        best[0],
        float(bound) if np.isfinite(bound) else None,
        gap,
        timings,
        rounds,
        model.cuts,
        notes,
        model,
        nodes=nodes,
    )


def _integral(model: DirectModel, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(exact objective, y, f) of an LP point whose y is 0/1 and whose amounts hold the exact
    CVaR; None otherwise."""
    y, f, _ = model.split(x)
    if np.abs(y - np.round(y)).max(initial=0.0) > 1e-9:
        return None
    y = np.round(y)
    f = f * (y > 0.5)
    if model.cvar_cut(f) is not None:
        return None
    return model.true_objective(y, f), y, f


def _gap(objective: float, bound: float | None) -> float:
    if bound is None or not np.isfinite(bound):
        return float("inf")
    return max(0.0, bound - objective) / max(abs(objective), 1e-10)


class DirectSweep:
    """What re-solves of one catalog and scenario set keep on the direct path (frontier tasks).

    The scenario data and the coverage split are built once, the cut model and its LP variant
    (shadow prices) compiled once and re-targeted per point (:meth:`DirectModel.retarget`), and
    the pool of cuts found so far (coverage cuts, CVaR cuts as ``π^T L``) is offered back at
    every point (``DirectModel.pool``, rows once violated): all of them are valid whatever the
    Parameter values (module docstring). The
    last point's selection is the next one's start when it has feasible amounts there. Pass it
    as ``model=`` to :func:`portopt.model.optimize`.
    """

    def __init__(
        self,
        catalog: Catalog,
        scenarios: ScenarioSet,
        config: RunConfig,
        sweep: Collection[str] = (),
    ) -> None:
        t0 = time.perf_counter()
        self.catalog, self.scenarios, self.config = catalog, scenarios, config
        self.sweep = set(sweep)  # accepted for AllocationModel's signature; nothing to pre-compile
        self.data = scenario_data(catalog, scenarios, config)
        self.cover = cuts_of(self.data)
        self.milp: DirectModel | None = None
        self.lp: DirectModel | None = None
        self.coverage_pool: dict[tuple, tuple] = {}
        self.cvar_pool: dict[bytes, np.ndarray] = {}
        self.last: Solution | None = None
        self.progress: Callable[[SolveProgress], None] | None = None
        """Told the incumbent, bound and gap of each solve's MILP rounds as they improve."""
        self.forcing: Any = None
        """Projects forced in or out (:class:`portopt.model.forcing.Forcing`), applied after
        each build or re-target."""
        self.data_s = time.perf_counter() - t0

    # -- parameters -------------------------------------------------------------------------
    def parameter_keys(self) -> list[str]:
        """The keys :meth:`portopt.model.AllocationModel.parameter_keys` lists for this config."""
        groups = self.milp.groups if self.milp is not None else None
        return model_parameter_keys(self.data, self.config, groups)

    def update(self, config: RunConfig) -> None:
        """Take ``config`` for the next solve; :class:`StructuralChange` unless only Parameter
        keys (or keys that touch no part of the model) differ."""
        structural_changes(self.config, config, self.parameter_keys())
        self.config = config

    # -- the pool ---------------------------------------------------------------------------
    def pool(self, model: DirectModel) -> list[tuple]:
        """Every pooled cut in ``model``'s terms (CVaR rows for its ε)."""
        cuts = list(self.coverage_pool.values())
        if model.sized is not None:
            cuts += [("cvar", piL - model.eps) for piL in self.cvar_pool.values()]
        return cuts

    def remember(self, model: DirectModel) -> None:
        """Add the cuts ``model`` holds to the pool (duplicates once)."""
        for cut in model.log:
            if cut[0] == "cov":
                self.coverage_pool.setdefault((cut[1], cut[2], cut[3].tobytes()), cut)
            else:
                piL = cut[1] + model.eps
                self.cvar_pool.setdefault(np.round(piL, 12).tobytes(), piL)

    @property
    def pooled(self) -> int:
        return len(self.coverage_pool) + len(self.cvar_pool)

    # -- solves -----------------------------------------------------------------------------
    def solve(self, start: float | None = None) -> DirectResult:
        """Solve the current config: the model built or re-targeted, the pool added, the
        previous selection as the start."""
        start = time.perf_counter() if start is None else start
        if self.milp is None:
            self.milp = DirectModel(self.data, self.cover, self.config)
            self.milp.timings = {"model_data_s": self.data_s, **self.milp.timings}
        else:
            self.milp.retarget(self.config)
        model = self.milp
        model.on_progress = self.progress
        if self.forcing:
            self.forcing.apply(model)
        try:
            result = _solve(
                model,
                self.config,
                start,
                incumbent=None if self.last is None else self.last.y,
                pool=self.pool(model),
                incumbent_name="the previous point's selection",
            )
        finally:
            model.on_progress = None
        self.remember(model)
        if result.solution is not None:
            self.last = result.solution
        return result

    def shadow_prices(self, sol: Solution, deadline: float) -> list[ShadowPrice]:
        """:func:`shadow_prices_direct` on the re-targeted LP variant."""
        assert self.milp is not None
        lower = np.maximum(self.data.committed, sol.y > 0.5).astype(float)
        if self.lp is None:
            self.lp = DirectModel(self.data, self.cover, self.config, lp_lower=lower)
        return shadow_prices_direct(self.milp, sol, deadline, self.lp)


def cuts_of(data: ModelData) -> CoverageCuts:
    """The cut lowering of coverage on ``data``'s scenarios."""
    return CoverageCuts.build(data.online, data.ratio, data.stress, data.weights)


def resolve(
    model: DirectModel,
    config: RunConfig,
    incumbent: np.ndarray | None = None,
    pool: list[tuple] | None = None,
    incumbent_name: str = "the incumbent",
    start: float | None = None,
) -> DirectResult:
    """Re-solve a built (or re-targeted) cut model with ``config``'s solver settings: the solve
    loop's public face, for re-solves (:mod:`portopt.model.marginal`). ``start``: when its time
    limit began (now by default)."""
    began = time.perf_counter() if start is None else start
    return _solve(model, config, began, incumbent, pool, incumbent_name)


__all__ = [
    "DirectModel",
    "DirectResult",
    "DirectSweep",
    "SolveProgress",
    "cuts_of",
    "resolve",
    "shadow_prices_direct",
]
