"""The constraint groups of the allocation model (DESIGN.md), one small term each.

Notation: ``y_i`` selected, ``f_i`` fund amount in $B, ``F = Σ_i f_i`` deployed capital.
Every row is written ``lhs <= rhs`` with the user's scalar on the right, so each dual is the
objective gained per unit the row is relaxed (nonnegative).
"""

from __future__ import annotations

from typing import ClassVar

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from portopt.config import RunConfig
from portopt.model.data import BILLION, ModelData
from portopt.model.risk import cvar
from portopt.model.terms import (
    GROUPS,
    Knob,
    Loosen,
    Relax,
    Row,
    RowMeaning,
    ShadowPrice,
    Slack,
    Solution,
    Term,
    Vars,
    count,
    dual,
    exceeds,
    money,
)
from portopt.plan.calendar import disbursement_shares
from portopt.vocabulary import SECTORS


def indicator(labels: np.ndarray, names: list) -> sp.csr_matrix:
    """(len(names), n) 0/1 matrix: row r marks the projects labelled ``names[r]``."""
    pos = {name: r for r, name in enumerate(names)}
    cols = [i for i, lab in enumerate(labels) if lab in pos]
    rows = [pos[labels[i]] for i in cols]
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(names), len(labels)))


def expected(d: ModelData) -> sp.dia_matrix:
    """(n, n) diagonal of each column's expected committed share ``1 - p_i`` (``p_i``: the
    probability the column is not funded, its own decline or a prerequisite's; 0 without a
    plan): ``expected(d) @ f`` is each column's expected committed money, the one basis of
    every capital rule (docs/scenario-model.md, "The basis of the capital rules")."""
    return sp.diags(d.expected_share)


def _all_projects(config: RunConfig, data: ModelData) -> float:
    return float(len(data.projects))


def _budget(config: RunConfig, data: ModelData) -> float:
    return float(config.model.budget_usd)


def _usd(x: float) -> str:
    return money(x / BILLION)


def deployment_floor(config: RunConfig) -> str:
    """The least expected committed capital in the user's words: a plan's hard target
    (``plan.target_usd``, which the plan sets as the minimum deployment), else
    ``model.min_deployment_usd``."""
    plan = config.plan
    if plan.target == "hard" and config.model.min_deployment_usd == plan.target_usd:
        return "the hard target (plan.target_usd)"
    return "minimum deployment (model.min_deployment_usd)"


def _most_expected(d: ModelData) -> float:
    """The most expected committed capital the candidates can take ($B): each project once,
    at its maximum share in its best round, times the share Japan is expected to commit."""
    best = np.zeros(len(d.projects))
    np.maximum.at(best, d.project, d.expected_share * d.f_max)
    return float(best.sum())


class Capital(Term):
    """Budget, minimum deployment and the optional commitment cap per year.

    With :math:`F = \\sum_i (1 - p_i) f_i`, the expected committed capital (:math:`p_i` the
    probability that Japan declines the proposal, 0 without a plan):

    .. math::

        F \\le B, \\qquad F \\ge D_{\\min}, \\qquad
        \\sum_{i: \\mathrm{year}_i = t} (1 - p_i) f_i \\le A \\quad (t \\le 2028)

    The committed tranche is part of F (its f is fixed), so the budget is the whole $550B.
    The commitment year is the start year, capped at 2028: the MOU's investment period ends on
    19 January 2029.
    """

    name = "capital"
    selection_check = True
    rows_declared = (
        Row(
            "budget",
            # expected committed capital: a proposal Japan may decline counts (1 - p) of it
            lambda t, y, f: t.data.expected_share @ f,
            "model.budget_usd",
            lambda t, c: c.model.budget_usd / BILLION,
            "per extra $10B of budget",
            "The budget is fully used. The price is the coverage score another $10B of budget"
            " would buy.",
            price=10.0,
            show=money,
            breaks="deployed {value} exceeds the budget {bound}",
            step=Relax("budget", "+$10B", lambda c: c.model.budget_usd + 10 * BILLION),
        ),
        Row(
            "min_deployment",
            lambda t, y, f: t.data.expected_share @ f,
            "model.min_deployment_usd",
            lambda t, c: c.model.min_deployment_usd / BILLION,
            "per $10B less minimum deployment",
            "The fund must deploy at least the minimum. The price is the coverage score that"
            " $10B less of required deployment would give back.",
            sense=">=",
            price=10.0,
            show=money,
            breaks="deployed {value} is below the minimum deployment {bound}",
        ),
        Row(
            "annual_cap",
            lambda t, y, f: t.by_year @ f,
            "model.groups.capital.annual_commitment_cap_usd",
            lambda t, c: (c.model.groups.capital.annual_commitment_cap_usd or 1e15) / BILLION,
            "per extra $10B of annual cap (that year)",
            "A yearly commitment cap binds. The price is the coverage another $10B in that year"
            " would buy.",
            labels=lambda t: [str(year) for year in t.years],
            price=10.0,
            show=money,
            breaks="commitments of {label} total {value}, above the annual cap {bound}",
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        self.years = sorted(set(data.commitment_year().tolist()))
        # expected committed money per year: a proposal Japan may decline counts (1 - p) of it
        self.by_year = (indicator(data.commitment_year(), self.years) @ expected(data)).tocsr()
        super().__init__(data, config)

    def precheck(self, config: RunConfig) -> list[str]:
        d, out = self.data, []
        committed, budget = d.f_max[d.committed].sum(), float(self.bounds["budget"].value)
        if exceeds(committed, budget, budget):
            out.append(
                f"capital: the committed tranche alone needs {money(committed)}, the budget is"
                f" {money(budget)}: raise the budget by {money(committed - budget)}"
            )
        least, most = float(self.bounds["min_deployment"].value), _most_expected(d)
        if exceeds(least, most, least):
            out.append(
                f"capital: {deployment_floor(config)} {money(least)} is above what all"
                f" candidates can take, {money(most)}: lower it by {money(least - most)}"
            )
        return out

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        d, out = self.data, []
        committed = d.f_max[d.committed].sum()
        if "budget" in give:
            out.append(
                f"capital: the budget {money(config.model.budget_usd / BILLION)} is"
                f" {money(float(give['budget'].sum()))} short of what the other groups"
                f" force in (committed tranche alone: {money(committed)})"
            )
        if "min_deployment" in give:
            out.append(
                f"capital: {deployment_floor(config)}"
                f" {money(config.model.min_deployment_usd / BILLION)}"
                f" is out of reach while the other groups named here hold: lower it by"
                f" {money(float(give['min_deployment'].sum()))} (the committed tranche is"
                f" {money(committed)}, all candidates at their maximum share"
                f" {money(_most_expected(d))})"
            )
        if "annual_cap" in give:
            for t, g in zip(self.years, give["annual_cap"], strict=True):
                if g > 1e-5:
                    out.append(f"capital: commitments of {t} exceed the annual cap by {money(g)}")
        return out


class Recoupment(Term):
    """Japan's recoupment: CVaR of the PV shortfall and a floor on expected recovery.

    With per-dollar loss :math:`L_{is} = \\mathrm{pvdraw}_{is} - \\mathrm{pvjapan}_{is}`
    (Rockafellar–Uryasev, η free, u ≥ 0):

    .. math::

        u_s \\ge \\textstyle\\sum_i L_{is} f_i - \\eta, \\qquad
        \\eta + \\frac{1}{(1-\\alpha) S} \\sum_s u_s \\le \\varepsilon F, \\qquad
        \\sum_i f_i\\, \\mathbb{E}[\\mathrm{pvjapan}_i] \\ge
        \\rho \\sum_i f_i\\, \\mathbb{E}[\\mathrm{pvdraw}_i].

    Those are the rows of the full-scenario lowering (``compile``, S rows). The cut lowering
    (Künzi-Bay & Mayer 2006) writes the same bound as the family of rows
    :math:`(\\pi^\\top L - \\varepsilon \\mathbf 1) f \\le 0` over
    :math:`0 \\le \\pi_s \\le 1/((1-\\alpha) S)`, :math:`\\sum_s \\pi_s = 1`
    (:math:`\\mathrm{CVaR}_\\alpha(Lf) = \\max_\\pi \\pi^\\top L f`); :meth:`separate` returns the
    most violated one at a point, which puts the full weight on the worst scenarios of
    :math:`L f`. Both lowerings and the re-check read :meth:`cvar_value`.
    """

    name = "recoupment"
    scenario_sized = True
    knobs = (
        Knob(
            "model.groups.recoupment.min_expected_recovery",
            True,
            Loosen(
                "expected-recovery floor",
                0.01,
                lambda c, d: 0.0,
                "{:.2f}".format,
                lambda c, now: f"expected recovery floor {now:.2f} is out of reach",
            ),
        ),
        Knob(
            "model.groups.recoupment.max_shortfall_share",
            False,
            Loosen(
                "CVaR shortfall tolerance",
                0.01,
                lambda c, d: 2.0,
                "{:.0%}".format,
                lambda c, now: (
                    f"CVaR{c.model.groups.recoupment.alpha:.0%} of Japan's shortfall"
                    f" must stay within {now:.1%} of capital"
                ),
            ),
        ),
    )
    meanings: ClassVar[dict[str, RowMeaning]] = {
        "cvar": RowMeaning(
            "per point (0.01) of shortfall tolerance ε",
            "Japan's risk limit binds: in the worst scenarios Japan's loss is at its cap. The"
            " price is the coverage one more point of loss tolerance (share of capital) would"
            " buy.",
        ),
        "expected": RowMeaning(
            "per point (0.01) lower recovery floor",
            "Japan's expected recovery floor binds. The price is the coverage one point less of"
            " required recovery would buy.",
        ),
    }
    parameter_keys = (
        "model.groups.recoupment.max_shortfall_share",
        "model.groups.recoupment.min_expected_recovery",
        "model.groups.recoupment.alpha",
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        self.eps = cp.Parameter(nonneg=True, name="shortfall_share")
        self.floor = cp.Parameter(nonneg=True, name="recovery_floor")
        self.tail = cp.Parameter(nonneg=True, name="cvar_tail_weight")
        self.cut_dual = 0.0
        super().__init__(data, config)

    def update(self, config: RunConfig) -> None:
        g = config.model.groups.recoupment
        self.alpha = g.alpha
        self.eps.value = g.max_shortfall_share
        self.floor.value = g.min_expected_recovery or 0.0
        self.tail.value = 1.0 / ((1.0 - g.alpha) * self.data.n_scen)

    def compile(self, v: Vars, slack: Slack) -> list[cp.Constraint]:
        d = self.data
        self.eta = cp.Variable(name="shortfall_var")
        self.u = cp.Variable(d.n_scen, nonneg=True, name="shortfall_excess")
        self.rows = {
            "tail": self.u >= d.loss @ v.f - self.eta,
            "cvar": self.eta + self.tail * cp.sum(self.u) - self.eps * v.total
            <= slack.add(self.name, "cvar"),
            "expected": self._expected(v, slack),
        }
        return list(self.rows.values())

    def compile_cut_form(self, v: Vars) -> list[cp.Constraint]:
        self.rows = {"expected": self._expected(v, Slack(active=False))}
        self.cut_dual = 0.0
        return list(self.rows.values())

    def _expected(self, v: Vars, slack: Slack) -> cp.Constraint:
        d = self.data
        return self.floor * (d.e_draw @ v.f) - d.e_japan @ v.f <= slack.add(self.name, "expected")

    @classmethod
    def steps(cls, config: RunConfig, binding: list[str]) -> list[tuple[str, str, str, object]]:
        g = config.model.groups.recoupment
        out: list[tuple[str, str, str, object]] = []
        if g.min_expected_recovery is not None:
            key = "model.groups.recoupment.min_expected_recovery"
            out.append(("recovery floor", key, "-0.01", max(0.0, g.min_expected_recovery - 0.01)))
        key = "model.groups.recoupment.max_shortfall_share"
        return [*out, ("CVaR tolerance", key, "+0.01", g.max_shortfall_share + 0.01)]

    def losses(self, f: np.ndarray) -> np.ndarray:
        """(S,) Japan's PV shortfall :math:`L f` of amounts ``f`` ($B), from the funded
        projects' columns only."""
        funded = np.flatnonzero(f)
        return np.einsum("i,ij->j", f[funded], self.data.loss_by_project[funded])

    def cvar_value(self, f: np.ndarray) -> float:
        """Exact :math:`\\mathrm{CVaR}_\\alpha(L f)` of amounts ``f`` ($B)."""
        return float(cvar(self.losses(f), self.alpha)) if f.sum() > 0 else 0.0

    def separate(self, f: np.ndarray, tol: float) -> np.ndarray | None:
        """:math:`\\pi^\\top L` of the most violated CVaR row at ``f`` (the cut is
        :math:`(\\pi^\\top L - \\varepsilon) f \\le 0`), or None when the CVaR exceeds
        :math:`\\varepsilon F` by at most ``tol`` relative to F."""
        F = float(f.sum())
        losses = self.losses(f)
        value = float(cvar(losses, self.alpha)) if F > 0 else 0.0
        if value - float(self.eps.value) * F <= tol * max(1.0, F):
            return None
        S = self.data.n_scen
        cap = 1.0 / ((1.0 - self.alpha) * S)
        order = np.argsort(-losses, kind="stable")
        pi = np.zeros(S)
        full = int(np.floor((1.0 - self.alpha) * S + 1e-9))
        pi[order[:full]] = cap
        if full < S:
            pi[order[full]] = max(0.0, 1.0 - cap * full)
        tail = order[: full + 1]  # π is zero elsewhere
        return np.einsum("s,si->i", pi[tail], self.data.loss[tail])

    @property
    def cut_shift(self) -> float:
        """ε: the cut rows are :math:`(\\pi^\\top L - \\varepsilon \\mathbf 1) f \\le 0`."""
        return float(self.eps.value)

    def _cvar_dual(self) -> float:
        """The CVaR bound's dual: its row's in the full lowering, else the sum of its cuts'
        (``cut_dual``, set by the cut model: relaxing ε by δ raises every cut by δF)."""
        if "cvar" in self.rows:
            return float(dual(self.rows["cvar"])[0])
        return self.cut_dual

    def check(self, sol: Solution, data: ModelData, config: RunConfig) -> list[str]:
        g, F, out = config.model.groups.recoupment, sol.f.sum(), []
        value = self.cvar_value(sol.f)
        if exceeds(value, g.max_shortfall_share * F, F):
            out.append(
                f"recoupment: CVaR{g.alpha:.0%} of Japan's shortfall {money(value)} is"
                f" above {g.max_shortfall_share:.0%} of capital"
                f" ({money(g.max_shortfall_share * F)})"
            )
        if g.min_expected_recovery is not None:
            got, need = data.e_japan @ sol.f, g.min_expected_recovery * (data.e_draw @ sol.f)
            if exceeds(need, got, need):
                out.append(
                    f"recoupment: expected recovery {got / max(data.e_draw @ sol.f, 1e-12):.3f}"
                    f" is below the floor {g.min_expected_recovery:.3f}"
                )
        return out

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        g, d, out = config.model.groups.recoupment, self.data, []
        F = max(sol.f.sum(), 1e-12)
        if "cvar" in give:
            per = np.array([float(cvar(d.loss[:, i], g.alpha)) for i in range(d.n)])
            best = per.min() if d.n else 0.0
            out.append(
                f"recoupment: CVaR{g.alpha:.0%} of Japan's shortfall must stay within"
                f" {g.max_shortfall_share:.1%} of capital; the portfolio forced in needs"
                f" {(g.max_shortfall_share * F + float(give['cvar'].sum())) / F:.1%}: raise"
                " the tolerance to that"
                f" (the least risky candidate alone has {best:.1%})"
            )
        if "expected" in give:
            ratio = d.e_japan / np.maximum(d.e_draw, 1e-12)
            out.append(
                f"recoupment: expected recovery floor {g.min_expected_recovery:.2f} is out"
                f" of reach; the best candidate recovers {ratio.max():.2f} per dollar"
                f" drawn, the portfolio forced in"
                f" {(d.e_japan @ sol.f) / max(d.e_draw @ sol.f, 1e-12):.2f}"
            )
        return out

    def shadow(self, sol: Solution, config: RunConfig) -> list[ShadowPrice]:
        g, F = config.model.groups.recoupment, sol.f.sum()
        value = self.cvar_value(sol.f)
        out = [
            self.price(
                "cvar",
                self._cvar_dual() * 0.01 * F,
                abs(value - g.max_shortfall_share * F) < 1e-5 * max(1, F),
            )
        ]
        if g.min_expected_recovery is not None:
            draw = self.data.e_draw @ sol.f
            out.append(
                self.price(
                    "expected",
                    dual(self.rows.get("expected"))[0] * 0.01 * draw,
                    abs(self.data.e_japan @ sol.f - g.min_expected_recovery * draw)
                    < 1e-5 * max(1, draw),
                )
            )
        return out


def _share_row(which: str, unit: str, meaning: str) -> Row:
    """The sectors' ``"max"`` or ``"min"`` share row: the expected committed $B in each sector
    against that bound times the expected committed capital."""
    return Row(
        which,
        lambda t, y, f: t.by_sector @ f,
        "model.groups.sector_shares.bounds",
        lambda t, c: t.share_bounds(c)[1 if which == "max" else 0],
        unit,
        meaning,
        sense="<=" if which == "max" else ">=",
        labels=lambda t: t.sectors,
        price=0.01,
        show="{:.1%}".format,
        breaks="{label} holds {value} of capital, {side} {bound}",
        where="{label} " + which,
        of=lambda t, y, f: t.data.expected_share @ f,
    )


class SectorShares(Term):
    """Each MOU sector's share of expected committed capital within its bounds.

    .. math:: \\ell_j F \\le \\sum_{i \\in j} (1 - p_i) f_i \\le h_j F,
              \\qquad F = \\sum_i (1 - p_i) f_i
    """

    name = "sector_shares"
    rows_declared = (
        _share_row(
            "max",
            "per point (0.01) more share",
            "A sector's share of capital is at its upper bound. The price is the coverage a"
            " one-point higher bound would buy.",
        ),
        _share_row(
            "min",
            "per point (0.01) less share",
            "A sector's share of capital is at its floor. The price is the coverage a one-point"
            " lower floor would buy.",
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        self.sectors = list(SECTORS)
        self.by_sector = (indicator(data.sector, self.sectors) @ expected(data)).tocsr()
        super().__init__(data, config)

    @classmethod
    def steps(cls, config: RunConfig, binding: list[str]) -> list[tuple[str, str, str, object]]:
        bounds = config.model.groups.sector_shares.bounds
        return [
            (
                f"sector maximum ({s})",
                f"model.groups.sector_shares.bounds.{s}",
                "+1 point",
                (bounds.get(s, (0.0, 1.0))[0], min(1.0, bounds.get(s, (0.0, 1.0))[1] + 0.01)),
            )
            for s in binding
        ]

    def share_bounds(self, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
        """(floors, maxima) of :attr:`sectors`' shares (0 and 1 where the config says none)."""
        b = config.model.groups.sector_shares.bounds
        lo = np.array([b.get(s, (0.0, 1.0))[0] for s in self.sectors])
        hi = np.array([b.get(s, (0.0, 1.0))[1] for s in self.sectors])
        return lo, hi

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        lo, hi = self.share_bounds(config)
        d, out = self.data, []
        F = float(d.expected_share @ sol.f)
        if lo.sum() > 1.0 + 1e-9:
            return [
                f"sector_shares: sector floors add up to {lo.sum():.0%} of capital: lower them"
                f" by {lo.sum() - 1.0:.0%} together"
            ]
        if hi.sum() < 1.0 - 1e-9:
            return [
                f"sector_shares: sector maximum shares add up to {hi.sum():.0%} of capital:"
                f" raise them by {1.0 - hi.sum():.0%} together"
            ]
        for j, s in enumerate(self.sectors):
            eligible = (d.expected_share * d.f_max)[d.sector == s].sum()
            if "min" in give and give["min"][j] > 1e-5:
                out.append(
                    f"sector_shares: {s.replace('_', ' ')} minimum share {lo[j]:.0%} needs"
                    f" {money(lo[j] * F)}; eligible {s.replace('_', ' ')} candidates total"
                    f" {money(eligible)}"
                )
            if "max" in give and give["max"][j] > 1e-5:
                forced = (d.expected_share * d.f_max)[(d.sector == s) & d.committed].sum()
                out.append(
                    f"sector_shares: {s.replace('_', ' ')} maximum share {hi[j]:.0%} allows"
                    f" {money(hi[j] * F)}; {money(hi[j] * F + give['max'][j])} is forced"
                    f" in (committed: {money(forced)})"
                )
        return out


class JapanContent(Term):
    """Japanese content, weighted by expected committed capital, at least the floor.

    .. math:: \\sum_i c_i (1 - p_i) f_i \\ge \\phi F, \\qquad F = \\sum_i (1 - p_i) f_i
    """

    name = "japan_content"
    rows_declared = (
        Row(
            "floor",
            lambda t, y, f: t.weights() @ f,
            "model.groups.japan_content.floor",
            lambda t, c: c.model.groups.japan_content.floor,
            "per point (0.01) lower content floor",
            "The Japanese content floor binds. The price is the coverage a one-point lower floor"
            " would buy.",
            sense=">=",
            give=lambda t: 0.01 * max(t.data.f_max.sum(), 1),  # a point of the most capital
            price=0.01,
            show="{:.1%}".format,
            breaks="capital-weighted Japanese content {value} is below the floor {bound}",
            of=lambda t, y, f: t.data.expected_share @ f,
            loosen=Loosen("Japanese-content floor", 0.01, lambda c, d: 0.0, "{:.0%}".format),
        ),
    )

    def weights(self) -> np.ndarray:
        """(n,) each column's content per proposed $B on the basis: :math:`c_i (1 - p_i)`."""
        return self.data.japan_content * self.data.expected_share

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        d, F = self.data, max(float(self.data.expected_share @ sol.f), 1e-12)
        floor = config.model.groups.japan_content.floor
        best = d.japan_content.max() if d.n else 0.0
        return [
            f"japan_content: floor {floor:.0%} of Japanese content is out of reach; the"
            f" portfolio forced in reaches {(self.weights() @ sol.f) / F:.1%}, the highest"
            f" candidate has {best:.0%}"
        ]


class PowerBalance(Term):
    """Per grid region r, data-centre load selected within firm generation selected + headroom.

    .. math:: \\sum_{i \\in r} (\\mathrm{dc}_i - \\mathrm{gen}_i) y_i \\le H_r   \\quad (GW)
    """

    name = "power_balance"
    selection_check = True
    rows_declared = (
        Row(
            "regions",
            lambda t, y, f: t.matrix @ y,
            "model.groups.power_balance.headroom_mw",
            lambda t, c: t.headroom_mw(c) / 1000.0,
            "per extra GW of headroom",
            "Data-centre load is at the firm power available in a grid region. The price is the"
            " coverage one more GW of headroom would buy.",
            labels=lambda t: t.regions,
            show=lambda gw: f"{gw * 1000:,.0f} MW",
            breaks="{label} data-centre load exceeds firm generation by {value}, above the"
            " headroom {bound}",
            every=True,
        ),
    )
    parameter_keys = (
        "model.groups.power_balance.headroom_mw",
        "model.groups.power_balance.default_headroom_mw",
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        need = data.dc_load_mw - data.firm_gen_mw
        self.regions = sorted({r for r, x in zip(data.region, need, strict=True) if x != 0})
        m = indicator(data.region, self.regions)
        self.matrix = (m @ sp.diags(need / 1000.0)).tocsr()
        super().__init__(data, config)

    def headroom_mw(self, config: RunConfig) -> np.ndarray:
        """Each region's headroom (MW): its own, else the default."""
        g = config.model.groups.power_balance
        return np.array([g.headroom_mw.get(r, g.default_headroom_mw) for r in self.regions])

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        out, head = [], dict(zip(self.regions, self.headroom_mw(config), strict=True))
        for r, need in self.needed("regions", give.get("regions", np.zeros(0)), config):
            sel = (self.data.region == r) & (sol.y > 0.5)
            out.append(
                f"power_balance: {r} needs {need * 1000 - head[r]:,.0f} MW more than its"
                f" {head[r]:,.0f} MW headroom: forced-in data-centre load"
                f" {self.data.dc_load_mw[sel].sum():,.0f} MW against firm generation"
                f" {self.data.firm_gen_mw[sel].sum():,.0f} MW"
            )
        return out


class Workforce(Term):
    """Construction person-years per region and calendar year within what is available.

    .. math:: \\sum_{i \\in r} \\tfrac{w_i}{4} \\,\\#\\{q \\in \\mathrm{build}_i : \\mathrm{year}(q)
              = t\\}\\; y_i \\le W_{rt}

    (thousands of person-years inside the model). ``available_per_region_year`` is keyed by
    region (every year) or ``REGION:YEAR``; otherwise ``default_available`` applies.
    """

    name = "workforce"
    selection_check = True
    rows_declared = (
        Row(
            "region_years",
            lambda t, y, f: t.matrix @ y,
            "model.groups.workforce.available_per_region_year",
            lambda t, c: t.available(c) / 1000.0,
            "per extra 1,000 person-years",
            "Construction work needed in a region and year is at what is available. The price is"
            " the coverage 1,000 more person-years would buy.",
            labels=lambda t: [f"{r} {year}" for r, year in t.keys],
            show=lambda k: f"{k * 1000:,.0f}",
            breaks="{label} needs {value} person-years, above {bound} available",
        ),
    )
    parameter_keys = (
        "model.groups.workforce.available_per_region_year",
        "model.groups.workforce.default_available",
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        rows, keys = [], []
        for year, need in data.build_years().items():
            for r in sorted(set(data.region[need > 0].tolist())):
                rows.append(np.where(data.region == r, need, 0.0) / 1000.0)
                keys.append((r, year))
        self.keys = keys
        self.matrix = sp.csr_matrix(np.array(rows)) if rows else sp.csr_matrix((0, data.n))
        super().__init__(data, config)

    def available(self, config: RunConfig) -> np.ndarray:
        """Person-years available in each (region, year) of :attr:`keys`."""
        g = config.model.groups.workforce
        table = g.available_per_region_year
        return np.array(
            [table.get(f"{r}:{t}", table.get(r, g.default_available)) for r, t in self.keys],
            dtype=float,
        )

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        row, avail = self.rows_declared[0], self.available(config)
        at = dict(zip(self.labels_of(row) or [], zip(self.keys, avail, strict=True), strict=True))
        return [
            f"workforce: {r} in {t} needs {need * 1000 - a:,.0f} person-years more than the"
            f" {a:,.0f} available"
            for where, need in self.needed(row.name, give.get(row.name, []), config)
            for (r, t), a in [at[where]]
        ]


class Dependencies(Term):
    r"""A project needing another is selected only with it, in a plan proposed no later:
    :math:`y_i \le \sum_{o \in q,\ \mathrm{round}_o \le \mathrm{round}_i} y_o` for each
    column i of a project that needs project q (with one column per project, :math:`y_i \le y_j`).
    """

    name = "dependencies"
    fact = True
    selection_check = True
    rows_declared = (
        Row(
            "links",
            lambda t, y, f: t.matrix @ y,
            None,  # a fact about the projects: its bound is no setting
            lambda t, c: 0.0,
            labels=lambda t: [
                f"{t.data.ids[i]} is selected without {t.data.projects[q]}"
                + (" proposed no later" if t.data.is_plan else "")
                for i, q in t.data.depends_on
            ],
            give=1e-3,  # a link is a fact about the projects, not a policy: give on it last
            breaks="{label}, which it needs",
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        rows, cols, vals = [], [], []
        for r, (i, q) in enumerate(data.depends_on):
            rows.append(r), cols.append(i), vals.append(1.0)
            for o in data.eligible(i, q):
                rows.append(r), cols.append(int(o)), vals.append(-1.0)
        self.matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(data.depends_on), data.n))
        super().__init__(data, config)

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        d = self.data
        return [
            f"dependencies: {d.ids[i]} (forced in) needs {d.projects[q]}, which cannot be selected"
            for (i, q), g in zip(d.depends_on, give.get("links", []), strict=False)
            if g > 1e-5
        ]


def _project_matrix(data: ModelData, groups: list[tuple[int, ...]]) -> sp.csr_matrix:
    """One row per tuple of projects: 1 on every column of those projects."""
    rows, cols = [], []
    for r, projects in enumerate(groups):
        for q in projects:
            c = data.columns_of(q)
            rows += [r] * c.size
            cols += c.tolist()
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(groups), data.n))


class Exclusions(Term):
    r"""Mutually exclusive projects, whichever rounds they are proposed in:
    :math:`\sum_{o \in q} y_o + \sum_{o \in r} y_o \le 1`."""

    name = "exclusions"
    fact = True
    selection_check = True
    rows_declared = (
        Row(
            "pairs",
            lambda t, y, f: t.matrix @ y,
            None,
            lambda t, c: 1.0,
            labels=lambda t: [f"{t.data.projects[a]} and {t.data.projects[b]}" for a, b in t.pairs],
            give=1e-3,
            breaks="{label} exclude each other but both are selected",
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        self.pairs = data.excludes
        self.matrix = _project_matrix(data, self.pairs)
        super().__init__(data, config)

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        return [
            f"exclusions: {pair} exclude each other but both are forced in"
            for pair, _ in self.needed("pairs", give.get("pairs", []), config)
        ]


class Proposals(Term):
    r"""Each project is proposed at most once, in one round: :math:`\sum_{o \in q} y_o \le 1`
    (no row for a project with a single column)."""

    name = "proposals"
    fact = True
    selection_check = True
    rows_declared = (
        Row(
            "once",
            lambda t, y, f: t.matrix @ y,
            None,
            lambda t, c: 1.0,
            labels=lambda t: [str(t.data.projects[q]) for q in t.multi],
            give=1e-3,
            show=count,
            breaks="{label} is proposed {value} times",
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        counts = np.bincount(data.project, minlength=len(data.projects))
        self.multi = [int(q) for q in np.flatnonzero(counts > 1)]
        self.matrix = _project_matrix(data, [(q,) for q in self.multi])
        super().__init__(data, config)

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        return [
            f"proposals: {project} would have to be proposed twice"
            for project, _ in self.needed("once", give.get("once", []), config)
        ]


class MaxProjects(Term):
    """At most N projects, committed ones included: :math:`\\sum_i y_i \\le N`."""

    name = "max_projects"
    selection_check = True
    rows_declared = (
        Row(
            "count",
            lambda t, y, f: t.ones @ y,
            "model.groups.max_projects.limit",
            lambda t, c: c.model.groups.max_projects.limit,
            "per extra project allowed",
            "The portfolio holds the maximum number of projects. The price is the coverage one"
            " more project would buy.",
            show=count,
            breaks="{value} projects selected, above the limit {bound}",
            loosen=Loosen("project limit", 1.0, _all_projects, count),
            step=Relax(
                "project count", "one more project", lambda c: c.model.groups.max_projects.limit + 1
            ),
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        self.ones = np.ones(data.n)
        super().__init__(data, config)

    def precheck(self, config: RunConfig) -> list[str]:
        limit, committed = config.model.groups.max_projects.limit, int(self.data.committed.sum())
        if committed <= limit:
            return []
        return [
            f"max_projects: the limit of {limit} projects is below the {committed} committed"
            f" projects: raise it by {committed - limit}"
        ]

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        limit = config.model.groups.max_projects.limit
        return [
            f"max_projects: the limit of {limit} projects is below the {round(need)} that must"
            f" be selected ({int(self.data.committed.sum())} committed)"
            for _, need in self.needed("count", give["count"].sum(), config)
        ]


class SponsorCap(Term):
    """Expected committed fund dollars per sponsor at most the cap:
    :math:`\\sum_{i \\in p} (1 - p_i) f_i \\le C`."""

    name = "sponsor_cap"
    selection_check = True
    rows_declared = (
        Row(
            "sponsors",
            lambda t, y, f: t.by_sponsor @ f,
            "model.groups.sponsor_cap.max_usd",
            lambda t, c: c.model.groups.sponsor_cap.max_usd / BILLION,
            "per extra $10B of sponsor cap",
            "A sponsor is at its cap. The price is the coverage another $10B for that sponsor"
            " would buy.",
            labels=lambda t: t.sponsors,
            price=10.0,
            show=money,
            breaks="{label} receives {value}, above the cap {bound}",
            loosen=Loosen("sponsor cap", 1e9, _budget, _usd),
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        self.sponsors = sorted(set(data.sponsor.tolist()))
        self.by_sponsor = (indicator(data.sponsor, self.sponsors) @ expected(data)).tocsr()
        super().__init__(data, config)

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        cap = config.model.groups.sponsor_cap.max_usd / BILLION
        return [
            f"sponsor_cap: {s} needs {money(need)} (committed projects), above the cap {money(cap)}"
            for s, need in self.needed("sponsors", give.get("sponsors", np.zeros(0)), config)
        ]


class ReviewCapacity(Term):
    """New (non-committed) proposals of round q at most Japan's review capacity per window.

    .. math:: \\sum_{i \\notin \\mathrm{committed},\\ \\mathrm{round}_i = q} y_i \\le R

    Without a plan a project's round is its start quarter.
    """

    name = "review_capacity"
    selection_check = True
    rows_declared = (
        Row(
            "quarters",
            lambda t, y, f: t.matrix @ y,
            "model.groups.review_capacity.per_quarter",
            lambda t, c: c.model.groups.review_capacity.per_quarter,
            "per extra review slot",
            "Japan's review capacity in a quarter is full. The price is the coverage one more"
            " review slot would buy.",
            labels=lambda t: [f"round {t.data.quarter_label(q)}" for q in t.quarters],
            show=count,
            breaks="{value} new projects are proposed in {label}, above {bound}",
            loosen=Loosen("review capacity a round", 1.0, _all_projects, count),
            step=Relax(
                "review capacity",
                "one more review slot a quarter",
                lambda c: c.model.groups.review_capacity.per_quarter + 1,
            ),
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        new = ~data.committed
        self.quarters = sorted(set(data.proposal_q[new].tolist()))
        self.matrix = indicator(np.where(new, data.proposal_q, -1), self.quarters)
        super().__init__(data, config)

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        limit = config.model.groups.review_capacity.per_quarter
        if limit == 0:
            need = round(float(sum(g.sum() for g in give.values())))
            return [
                f"review_capacity: a capacity of 0 reviews per quarter admits no candidate;"
                f" the other groups need {need} new project(s) reviewed"
            ]
        return [
            f"review_capacity: {where} needs {round(need)} reviews, above {limit}"
            for where, need in self.needed("quarters", give.get("quarters", np.zeros(0)), config)
        ]


class JbicCapacity(Term):
    """The fund's planned disbursements per Japanese fiscal year within JBIC's capacity.

    A column's amount is disbursed evenly over its planned build quarters from its
    construction start (the planned schedule, before delays), and counts its expected
    committed share :math:`1 - p_i`:

    .. math:: \\sum_i (1 - p_i)\\, f_i\\, \\frac{\\#\\{q \\in \\mathrm{build}_i :
              \\mathrm{FY}(q) = t\\}}{T_i} \\le A \\quad \\text{for each fiscal year } t

    (Japan's fiscal year runs April to March). The committed tranche counts too.
    """

    name = "jbic_capacity"
    selection_check = True
    rows_declared = (
        Row(
            "fiscal_years",
            lambda t, y, f: t.matrix @ f,
            "model.groups.jbic_capacity.per_fiscal_year_usd",
            lambda t, c: c.model.groups.jbic_capacity.per_fiscal_year_usd / BILLION,
            "per extra $10B of JBIC capacity (that fiscal year)",
            "JBIC's yearly funding capacity is fully used in a fiscal year. The price is the"
            " coverage another $10B of capacity that year would buy.",
            labels=lambda t: [f"FY{year}" for year in t.years],
            price=10.0,
            show=money,
            breaks="{label} plans {value} of disbursements, above JBIC's {bound}",
            loosen=Loosen("JBIC capacity a fiscal year", 1e9, _budget, _usd),
        ),
    )

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        share: dict[int, np.ndarray] = {}
        for i in range(data.n):
            start = data.quarter_label(int(data.start_q[i]))
            for fy, part in disbursement_shares(start, int(data.build_q[i])).items():
                share.setdefault(fy, np.zeros(data.n))[i] += data.expected_share[i] * part
        self.years = sorted(share)
        self.matrix = (
            sp.csr_matrix(np.array([share[t] for t in self.years]))
            if self.years
            else sp.csr_matrix((0, data.n))
        )
        super().__init__(data, config)

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        cap = config.model.groups.jbic_capacity.per_fiscal_year_usd / BILLION
        return [
            f"jbic_capacity: {fy} needs {money(need - cap)} more than JBIC's {money(cap)} a year"
            for fy, need in self.needed("fiscal_years", give.get("fiscal_years", []), config)
        ]


__all__ = [
    "GROUPS",
    "Capital",
    "Dependencies",
    "Exclusions",
    "JapanContent",
    "JbicCapacity",
    "MaxProjects",
    "PowerBalance",
    "Proposals",
    "Recoupment",
    "ReviewCapacity",
    "SectorShares",
    "SponsorCap",
    "Workforce",
]
