"""The objective: stress-weighted strategic coverage, its optional CVaR, and the recovery tie-break.

.. math::

    \\max\\; (1-\\lambda)\\, \\bar c + \\lambda\\, \\mathrm{CVaR}^{\\text{low}}_{\\beta}(c_s)
          + \\tau\\, \\frac{\\sum_i f_i\\, \\mathbb{E}[\\mathrm{pvjapan}_i - \\mathrm{pvdraw}_i]}{B}

with the score of scenario s
:math:`c_s = \\sum_k w_k m_{ks} \\min(1, \\sum_i a_{iks} y_i) / \\sum_k w_k`,
:math:`\\bar c = \\frac1S \\sum_s c_s`. Pairs (k, s) that cannot saturate are linear in y
(``ModelData.c_lin``); each saturating pair has an aux :math:`t_p \\in [0, 1]` (a variable
bound), :math:`t_p \\le \\sum_i \\min(1, a_{ip}) y_i`. The lower-tail CVaR at level β is
:math:`\\max_\\zeta \\zeta - \\frac{1}{(1-\\beta) S} \\sum_s (\\zeta - c_s)_+`, compiled only when
its weight λ is positive (or a sweep asks for it).
"""

from __future__ import annotations

import cvxpy as cp

from portopt.config import RunConfig
from portopt.model.data import BILLION, ModelData
from portopt.model.terms import Vars


class Coverage:
    """The objective term; owns the coverage aux variables of each compiled variant."""

    parameter_keys = (
        "model.coverage_cvar_weight",
        "model.coverage_cvar_alpha",
        "model.recovery_tiebreak",
        "model.budget_usd",
    )

    def __init__(self, data: ModelData, config: RunConfig, with_cvar: bool) -> None:
        self.data = data
        self.with_cvar = with_cvar
        self.lam = cp.Parameter(nonneg=True, name="coverage_cvar_weight")
        self.one_minus_lam = cp.Parameter(nonneg=True, name="coverage_mean_weight")
        self.lam_tail = cp.Parameter(nonneg=True, name="coverage_cvar_tail_weight")
        self.tiebreak = cp.Parameter(nonneg=True, name="tiebreak_per_budget")
        self.update(config)

    def update(self, config: RunConfig) -> None:
        m = config.model
        lam = m.coverage_cvar_weight if self.with_cvar else 0.0
        self.lam.value = lam
        self.one_minus_lam.value = 1.0 - lam
        # λ/((1-β)S) is one Parameter: a product of two would not be DPP
        self.lam_tail.value = lam / ((1.0 - m.coverage_cvar_alpha) * self.data.n_scen)
        self.tiebreak.value = m.recovery_tiebreak / (m.budget_usd / BILLION)

    def compile(self, v: Vars) -> tuple[cp.Expression, list[cp.Constraint]]:
        """The objective expression (to maximise) and the aux rows, for one variant."""
        d = self.data
        P = d.sat_pair.shape[0]
        cons: list[cp.Constraint] = []
        mean = d.c_lin @ v.y
        if P:
            self.t = cp.Variable(P, bounds=[0.0, 1.0], name="coverage_aux")
            cons.append(self.t <= d.sat_rows @ v.y)
            mean = mean + d.c_sat @ self.t
        net = (d.e_japan - d.e_draw) @ v.f
        if d.deploy_reward:  # the plan's soft deployment target (ModelData.f_reward)
            net_reward = self.tiebreak * net + d.f_reward @ v.f
        else:
            net_reward = self.tiebreak * net
        if not self.with_cvar:
            return mean + net_reward, cons
        score = d.score_lin @ v.y + (d.score_sat @ self.t if P else 0.0)
        self.zeta = cp.Variable(name="coverage_var")
        self.short = cp.Variable(d.n_scen, nonneg=True, name="coverage_shortfall")
        cons.append(self.short >= self.zeta - score)
        tail = self.lam * self.zeta - self.lam_tail * cp.sum(self.short)
        return self.one_minus_lam * mean + tail + net_reward, cons
