"""Japan's option to decline a proposal, drawn in the scenarios.

Japan funds or declines each proposal within its review window. The probability that it
declines falls with its expected recovery on the proposal, ``r`` (expected PV of its receipts
over expected PV of its draws, at JBIC's cost, on the optimisation scenarios):

.. math:: p(r) = \\frac{p_{\\max}}{1 + \\exp\\big((r - r_{50}) / s\\big)}

(``plan.decline``: ``max_prob``, ``midpoint_recovery``, ``scale``; illustrative, no source gives
a decline rate). A committed project has p = 0. In scenario s, proposal i is declined when
:math:`u_{is} < p_i`, with :math:`u_{is}` the Philox uniform of counter (s, project entity,
quarter 0, purpose :data:`DECLINE_PURPOSE`): it depends on the project, not on its start, so
the decline of a project is the same draw whichever round it is proposed in (common random
numbers). A declined proposal is not funded: in that scenario it draws nothing, pays nothing
and covers nothing; nor is any project that needs it (``depends_on``, directly or through a
chain): a project whose prerequisite is declined is not built in that scenario.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from portopt.catalog import project_entity
from portopt.config import DeclineConfig
from portopt.engine.philox import uniforms
from portopt.engine.scenario_set import ScenarioSet

DECLINE_PURPOSE = 3
"""Counter purpose of the decline draw (a project's purposes 0..2 are its own shocks)."""

ZEROED = ("pv_draw", "pv_japan", "pv_us", "online_share", "balance_end", "pv_floor")
"""Fields a declined proposal has as zero in that scenario."""


def decline_probability(
    recovery: np.ndarray, committed: np.ndarray, config: DeclineConfig
) -> np.ndarray:
    """:math:`p(r)` per column; 0 for committed columns and when declines are off."""
    r = np.asarray(recovery, dtype=np.float64)
    if not config.enabled:
        return np.zeros_like(r)
    with np.errstate(over="ignore"):
        p = config.max_prob / (1.0 + np.exp((r - config.midpoint_recovery) / config.scale))
    return np.where(np.asarray(committed, dtype=bool), 0.0, p)


def decline_uniforms(projects: list[str], scenarios: range, key: np.ndarray) -> np.ndarray:
    """(n, P) uniforms :math:`u_{is}` of the scenarios for the projects (base ids)."""
    s = np.arange(scenarios.start, scenarios.stop, dtype=np.uint64)[:, None]
    ent = np.array([project_entity(p) for p in projects], dtype=np.uint64)[None, :]
    ua, _ = uniforms(s, ent, 0, DECLINE_PURPOSE, key)
    return ua


def declined(
    scenarios: ScenarioSet,
    projects: list[str],
    p: np.ndarray,
    key: np.ndarray,
    depends_on: Mapping[str, Sequence[str]] | None = None,
) -> np.ndarray:
    """(n, columns) bool: column j (of project ``projects[j]``) not funded in each scenario:
    its own proposal declined, or (with ``depends_on``, each project's prerequisites by id) a
    prerequisite's, directly or through a chain: a project whose prerequisite is declined is
    not built there. A prerequisite with several columns (start options) counts as declined
    when its draw is below the largest of their probabilities (the option least likely to be
    funded): whichever of them the plan chooses, its dependants are declined wherever it is
    (at optimisation they are also declined in the few scenarios where the draw lies between
    the chosen column's probability and the largest; at evaluation each project has one
    column and the two coincide); a prerequisite with no column here is not declined."""
    u = decline_uniforms(projects, range(scenarios.first, scenarios.first + scenarios.n), key)
    p = np.asarray(p, dtype=np.float64)
    own = u < p[None, :]
    if not depends_on:
        return own
    columns: dict[str, list[int]] = {}
    for j, b in enumerate(projects):
        columns.setdefault(b, []).append(j)
    # a prerequisite's decline: its (shared) draw below the largest of its columns' probabilities
    self_declined = {b: u[:, cols[0]] < p[cols].max() for b, cols in columns.items()}
    effective: dict[str, np.ndarray] = {}

    def out(b: str, path: tuple[str, ...] = ()) -> np.ndarray:
        if b not in effective:
            mask = self_declined.get(b, np.zeros(u.shape[0], dtype=bool))
            for pre in depends_on.get(b, ()):
                if pre not in path:  # the catalog has no cycles; guard anyway
                    mask = mask | out(pre, (*path, b))
            effective[b] = mask
        return effective[b]

    result = own.copy()
    for j, b in enumerate(projects):
        for pre in depends_on.get(b, ()):
            result[:, j] |= out(pre)
    return result


def unfunded_probability(
    projects: list[str], p: np.ndarray, depends_on: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """Per column, the probability that it is not funded: its own decline or any
    prerequisite's (directly or through a chain), the draws of different projects being
    independent: ``1 - (1 - p_j) prod_b (1 - p_b)`` over the distinct prerequisites ``b``, each
    at the largest probability of its columns (as :func:`declined` draws them)."""
    p = np.asarray(p, dtype=np.float64)
    most: dict[str, float] = {}
    for b, pj in zip(projects, p.tolist(), strict=True):
        most[b] = max(most.get(b, 0.0), pj)

    def ancestors(b: str, seen: set[str]) -> set[str]:
        for pre in depends_on.get(b, ()):
            if pre not in seen:
                seen.add(pre)
                ancestors(pre, seen)
        return seen

    out = np.empty_like(p)
    for j, b in enumerate(projects):
        funded = 1.0 - p[j]
        for pre in sorted(ancestors(b, set())):
            funded *= 1.0 - most.get(pre, 0.0)
        out[j] = 1.0 - funded
    return out


def apply_declines(scenarios: ScenarioSet, mask: np.ndarray) -> ScenarioSet:
    """The set with each declined (scenario, column) unfunded: :data:`ZEROED` fields 0,
    never complete, never recoup (-1), and marked in its ``declined`` mask."""
    if not mask.any():
        return scenarios
    project = dict(scenarios.project)
    for name in ZEROED:
        project[name] = np.where(mask, 0.0, project[name])
    for name in ("recoup_q", "complete_q"):
        project[name] = np.where(mask, -1, project[name]).astype(project[name].dtype)
    return replace(scenarios, project=project, declined=scenarios.declined_mask() | mask)
