"""A greedy incumbent: coverage per dollar, kept feasible for the groups that depend on y alone.

Start from the committed projects; repeatedly add the candidate (with the projects it depends
on) of largest marginal coverage per dollar of its minimum funding,

.. math::

    \\frac{\\Delta \\bar c_i}{\\ell_i K_i}, \\qquad
    \\Delta \\bar c_i = \\frac{1}{S \\sum_k w_k} \\sum_{k,s} w_k m_{ks}
        \\big(\\min(1, c_{ks} + a_{iks}) - c_{ks}\\big),

then exchange one selected candidate for one left out while that raises coverage, and add
again; all while budget (at minimum shares), project count, sponsor cap, exclusions, power balance,
workforce, review capacity and the annual commitment cap still hold. The amounts and the
share-based groups (sectors, Japanese content, recoupment) are left to the LP that HiGHS solves
with the selection fixed when it receives the incumbent; if that LP is infeasible HiGHS simply
discards it.
"""

from __future__ import annotations

import numpy as np

from portopt.config import RunConfig
from portopt.model.coverage import chokepoint_coverage
from portopt.model.data import ModelData
from portopt.model.terms import Solution, Term


def _closure(i: int, data: ModelData) -> set[int]:
    """Column ``i`` and, for each project it needs, that project's earliest eligible column."""
    need, todo = {i}, [i]
    while todo:
        a = todo.pop()
        for x, q in data.depends_on:
            if x != a or any(data.project[c] == q for c in need):
                continue
            cols = data.eligible(a, q)
            if cols.size:
                j = int(cols[np.argmin(data.start_q[cols])])
                need.add(j)
                todo.append(j)
    return need


def greedy_selection(data: ModelData, config: RunConfig, groups: list[Term]) -> np.ndarray:
    """A 0/1 selection built greedily (see the module docstring); deterministic."""
    checks = [g for g in groups if g.selection_check]
    config = config.model_copy(deep=True)
    config.model.min_deployment_usd = 0.0  # reached by the amounts, not by the selection
    y = data.committed.astype(float)
    for _ in range(4):
        y = _add(y, data, config, checks)
        swapped = _swap(y, data, config, checks)
        if np.array_equal(swapped, y):
            break
        y = swapped
    return y


def starting_selection(
    data: ModelData, config: RunConfig, groups: list[Term], previous: np.ndarray | None = None
) -> np.ndarray:
    """``previous`` (the last solve's selection, on a frontier) when it still satisfies the
    selection groups, else the greedy selection.

    A neighbouring frontier point's optimum is a better start than the greedy's, and checking
    it costs a few milliseconds where the greedy costs a second: that is most of what a
    re-solve saves beyond the cached canonicalisation.
    """
    if previous is not None and np.array_equal(
        previous[data.committed], np.ones(data.committed.sum())
    ):
        checks = [g for g in groups if g.selection_check]
        loose = config.model_copy(deep=True)
        loose.model.min_deployment_usd = 0.0
        sol = Solution(y=previous, f=data.f_min * previous)
        if all(g.holds(sol, loose) for g in checks):
            return previous
    return greedy_selection(data, config, groups)


def _add(y: np.ndarray, data: ModelData, config: RunConfig, checks: list[Term]) -> np.ndarray:
    """Add candidates by marginal coverage per dollar while the selection groups hold."""
    cov = chokepoint_coverage(data.online, data.ratio, y)  # (S, K)
    wm = data.stress * data.weights[None, :] / (data.weights.sum() * data.n_scen)
    cost = np.maximum(data.f_min, 1e-3 * data.capex)
    tried = np.zeros(data.n, dtype=bool)
    while True:
        gain = np.zeros(data.n)
        for k in range(data.ratio.shape[1]):
            who = np.flatnonzero(data.ratio[:, k] > 0)
            if who.size:
                a = data.online[:, who] * data.ratio[who, k][None, :]
                cur = cov[:, [k]]
                gain[who] += (wm[:, [k]] * (np.minimum(1.0, cur + a) - cur)).sum(axis=0)
        order = np.lexsort((np.arange(data.n), -gain / cost))
        added = False
        for i in order:
            if y[i] > 0.5 or tried[i] or gain[i] <= 0:
                continue
            tried[i] = True
            trial = y.copy()
            trial[list(_closure(int(i), data))] = 1.0
            sol = Solution(y=trial, f=data.f_min * trial)
            if all(g.holds(sol, config) for g in checks):
                y = trial
                cov = chokepoint_coverage(data.online, data.ratio, y)
                added = True
                break
        if not added:
            return y


def _swap(
    y: np.ndarray, data: ModelData, config: RunConfig, checks: list[Term], passes: int = 3
) -> np.ndarray:
    """Improve ``y`` by exchanging a selected candidate for one left out (first improvement).

    Exact coverage change of each trial, computed on the chokepoints the two projects touch;
    kept only when the selection groups still hold and no dependency or exclusion is touched
    (the closure moves are the greedy's job).
    """
    linked = data.linked_columns()
    wm = data.stress * data.weights[None, :] / (data.weights.sum() * data.n_scen)
    raw = (data.online * y[None, :]) @ data.ratio  # (S, K) uncapped coverage
    touch = [np.flatnonzero(data.ratio[i] > 0) for i in range(data.n)]
    for _ in range(passes):
        improved = False
        for i in np.flatnonzero((y > 0.5) & ~data.committed):
            if i in linked:
                continue
            for j in np.flatnonzero(y < 0.5):
                if j in linked:
                    continue
                ks = np.union1d(touch[i], touch[j])
                new = (
                    raw[:, ks]
                    - data.online[:, [i]] * data.ratio[i, ks]
                    + data.online[:, [j]] * data.ratio[j, ks]
                )
                old = np.minimum(1.0, raw[:, ks])
                if (wm[:, ks] * (np.minimum(1.0, new) - old)).sum() <= 1e-12:
                    continue
                trial = y.copy()
                trial[i], trial[j] = 0.0, 1.0
                sol = Solution(y=trial, f=data.f_min * trial)
                if all(g.holds(sol, config) for g in checks):
                    y, improved = trial, True
                    raw[:, ks] = new
                    break
        if not improved:
            break
    return y
