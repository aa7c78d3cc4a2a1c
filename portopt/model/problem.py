"""The allocation model: terms compiled once into CVXPY problems whose Parameters sweeps set.

.. math::

    y_i \\in \\{0,1\\},\\quad \\underline y_i \\le y_i \\le \\overline y_i,\\quad
    \\ell_i K_i y_i \\le f_i \\le h_i K_i y_i,\\quad 0 \\le f_i \\le h_i K_i

with ``K_i`` the base cost in $B and ``[ℓ_i, h_i]`` the fund share; committed projects have
``y_i = 1`` and ``f_i = h_i K_i`` (the tranche as announced). ``y̲, ȳ`` are Parameters: they
force committed projects in and, for the shadow-price LP and the incumbent, fix a selection.

Variants, each compiled at most once and sharing every Parameter:

* ``milp``: the model;
* ``lp``: the same with y relaxed to [0, 1] (shadow prices, incumbent completion, tests);
* ``slack``: y binary, every group row with penalised nonnegative slack, no objective but the
  penalty (the infeasibility explainer).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np

from portopt.catalog import Catalog
from portopt.config import RunConfig, load_config
from portopt.engine.scenario_set import ScenarioSet
from portopt.model.data import ModelData, build_data, scores
from portopt.model.groups import GROUPS
from portopt.model.objective import Coverage
from portopt.model.parameters import (
    StructuralChange,
    changed_keys,
    is_parameter,
    matches,
    model_parameter_keys,
)
from portopt.model.risk import lower_cvar
from portopt.model.terms import Slack, Solution, Term, Vars


@dataclass
class Variant:
    """One compiled CVXPY problem and the handles to read it back."""

    problem: cp.Problem
    vars: Vars
    rows: dict[str, dict[str, cp.Constraint]]
    aux: dict[str, cp.Variable]
    slack: Slack
    compile_s: float = 0.0
    solver_data: dict[str, Any] = field(default_factory=dict)


class AllocationModel:
    """The allocation model of one catalog and one set of optimisation scenarios.

    ``sweep`` names config keys a caller will vary later (e.g. a frontier over
    ``model.coverage_cvar_weight`` starting at 0): terms that a zero or null value would leave
    out are then compiled anyway, so every value is a Parameter update.
    """

    def __init__(
        self,
        catalog: Catalog,
        scenarios: ScenarioSet,
        config: RunConfig,
        sweep: Collection[str] = (),
    ) -> None:
        t0 = time.perf_counter()
        self.catalog = catalog
        self.config = config
        self.sweep = set(sweep)
        self.data: ModelData = build_data(catalog, scenarios, config)
        with_cvar = config.model.coverage_cvar_weight > 0 or matches(
            "model.coverage_cvar_weight", self.sweep
        )
        self.objective = Coverage(self.data, config, with_cvar)
        self.groups: list[Term] = [g(self.data, config) for g in GROUPS]
        self.enabled = [g for g in self.groups if g.enabled(config)]
        self.y_lo = cp.Parameter(self.data.n, nonneg=True, name="y_lo")
        self.y_hi = cp.Parameter(self.data.n, nonneg=True, name="y_hi")
        self.release()
        self.variants: dict[str, Variant] = {}
        self.last_selection: np.ndarray | None = None
        """The last solve's selection: a re-solve's starting point when still feasible."""
        self.data_s = time.perf_counter() - t0

    # -- parameters -------------------------------------------------------------------------
    def parameter_keys(self) -> list[str]:
        """Dotted config keys (or key prefixes) that a re-solve changes through Parameters."""
        return model_parameter_keys(self.data, self.config, self.enabled)

    def is_parameter(self, key: str) -> bool:
        """Whether changing config key ``key`` is a Parameter update of the compiled problem."""
        return is_parameter(key, self.parameter_keys())

    def update(self, config: RunConfig) -> None:
        """Take every Parameter value from ``config``; raise :class:`StructuralChange` otherwise.

        Structure: which groups are enabled, the scenarios, the catalog; a null
        ``min_expected_recovery`` or ``annual_commitment_cap_usd`` is compiled as a slack
        bound, so setting it later is a Parameter update too.
        """
        structural = [k for k in changed_keys(self.config, config) if not self.is_parameter(k)]
        if (self.config.model.coverage_cvar_weight == 0) != (
            config.model.coverage_cvar_weight == 0
        ) and not self.objective.with_cvar:
            structural.append("model.coverage_cvar_weight (pass sweep= to compile its term)")
        if structural:
            raise StructuralChange(structural)
        self.config = config
        self.objective.update(config)
        for g in self.groups:
            g.update(config)

    def set_params(self, values: dict[str, Any] | None = None, **short: Any) -> None:
        """Set Parameters by dotted config key, or by the key's last part as a keyword.

        ``model.set_params({"model.budget_usd": 4e11})`` or ``model.set_params(budget_usd=4e11,
        max_shortfall_share=0.3)``.
        """
        values = dict(values or {})
        keys = self.parameter_keys()
        for name, value in short.items():
            full = [k for k in keys if k.rsplit(".", 1)[-1] == name]
            if len(full) != 1:
                raise KeyError(
                    f"'{name}' is not the last part of exactly one parameter key; use one of {keys}"
                )
            values[full[0]] = value
        tree: dict[str, Any] = {}
        for key, value in values.items():
            node = tree
            *head, last = key.split(".")
            for part in head:
                node = node.setdefault(part, {})
            node[last] = value
        self.update(load_config(None, _merge(self.config.model_dump(mode="json"), tree)))

    def fix(self, y: np.ndarray | None = None) -> None:
        """Fix the selection to ``y`` (0/1 per project) until :meth:`release`."""
        y = np.asarray(y, dtype=float)
        self.y_lo.value = y.copy()
        self.y_hi.value = y.copy()

    def release(self) -> None:
        """Free the selection again (committed projects stay forced in)."""
        self.y_lo.value = self.data.committed.astype(float)
        self.y_hi.value = np.ones(self.data.n)

    # -- compilation ------------------------------------------------------------------------
    def variant(self, kind: str) -> Variant:
        """The compiled variant ``milp``, ``lp`` or ``slack`` (built on first use)."""
        if kind not in self.variants:
            self.variants[kind] = self._compile(kind)
        return self.variants[kind]

    def _compile(self, kind: str) -> Variant:
        t0 = time.perf_counter()
        d = self.data
        f_lo = np.where(d.committed, d.f_max, 0.0)
        y = (
            cp.Variable(d.n, boolean=kind != "lp", name="y")
            if kind != "lp"
            else cp.Variable(d.n, bounds=[0.0, 1.0], name="y")
        )
        v = Vars(y=y, f=cp.Variable(d.n, bounds=[f_lo, d.f_max], name="f"))
        cons = [
            v.y >= self.y_lo,
            v.y <= self.y_hi,
            v.f <= cp.multiply(d.f_max, v.y),
            v.f >= cp.multiply(d.f_min, v.y),
        ]
        slack = Slack(active=kind == "slack")
        rows: dict[str, dict[str, cp.Constraint]] = {}
        for g in self.enabled:
            cons += g.compile(v, slack)
            rows[g.name] = dict(g.rows)
        aux: dict[str, cp.Variable] = {}
        if kind == "slack":
            cons += slack.bounds()
            objective = cp.Minimize(slack.penalty())
        else:
            expr, extra = self.objective.compile(v)
            cons += extra
            aux = {
                k: getattr(self.objective, k)
                for k in ("t", "zeta", "short")
                if hasattr(self.objective, k)
            }
            objective = cp.Maximize(expr)
        problem = cp.Problem(objective, cons)
        return Variant(problem, v, rows, aux, slack, time.perf_counter() - t0)

    def solution(self, kind: str) -> Solution:
        """The last solve's (y, f) of a variant, y rounded for the binary variants."""
        v = self.variants[kind].vars
        y = np.asarray(v.y.value, dtype=float)
        y = np.round(y) if kind != "lp" else y
        f = np.maximum(np.asarray(v.f.value, dtype=float), 0.0) * (y > 0.5 if kind != "lp" else 1)
        return Solution(y=y, f=f)

    def use_rows(self, kind: str) -> None:
        """Point every group's ``rows`` at variant ``kind`` (before reading its duals)."""
        for g in self.enabled:
            g.rows = self.variants[kind].rows.get(g.name, {})

    def objective_value(self, sol: Solution) -> float:
        """The objective of a 0/1 selection from the numbers (exact min(1, ·), no aux)."""
        m = self.config.model
        score = scores(self.data, sol.y)
        lam = m.coverage_cvar_weight if self.objective.with_cvar else 0.0
        cov = (1 - lam) * score.mean() + lam * float(lower_cvar(score, m.coverage_cvar_alpha))
        return (
            cov
            + self.objective.tiebreak.value * float((self.data.e_japan - self.data.e_draw) @ sol.f)
            + float(self.data.f_reward @ sol.f)
        )


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        merged[k] = (
            _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
        )
    return merged
