"""What every model term shares: variables, slack bookkeeping, and the term life cycle.

A term (cvxportfolio style) sizes its ``cp.Parameter``s once in ``__init__``, compiles to CVXPY
once per problem variant (``compile``), and afterwards only has its parameter values set from a
config (``update``). Each constraint group also re-checks a solution from the numbers
(``check``), explains the slack it needed when the model is infeasible (``explain``) and
states its duals in the user's units (``shadow``).

What each of a group's rows means is said once, on the class (``meanings``: row name ->
:class:`RowMeaning`); the shadow prices carry it to the report, so no table elsewhere is keyed
by a group's name. Defining a subclass with a ``name`` registers it (:data:`GROUPS`): the
model, the re-check, the greedy and the explainer take every registered group.

A group whose rows are linear in (y, f) with the user's number on the right declares them as
data (``rows_declared``: :class:`Row`): its left side written once (the same function gives the
CVXPY expression on :class:`Vars` and the numbers on a :class:`Solution`), its sense, its bound
from the config, its unit and meaning, its labels and its one-step relaxation (:class:`Relax`).
The :class:`Term` then compiles it, re-checks a solution, says whether it holds, which entries
bind and their shadow prices, gives the explainer its numbers (:meth:`Term.needed`) and the
limits it loosens (:class:`Loosen`), and the marginal stage its one-step relaxations, all
from that declaration; only the wording of an explanation stays with the group. Every group
but the recoupment CVaR is declared so. A group whose rows grow with the scenarios says so
(``scenario_sized``) and lowers itself by cuts (:meth:`Term.separate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cvxpy as cp
import numpy as np

from portopt.config import RunConfig
from portopt.model.data import ModelData

TOL = 1e-6
"""Relative tolerance of the re-checks (the solver's feasibility tolerance is 1e-7)."""


@dataclass
class Vars:
    """The decision variables: y (selected, binary or relaxed) and f (fund, $B)."""

    y: cp.Variable
    f: cp.Variable

    @property
    def total(self) -> cp.Expression:
        return cp.sum(self.f)


ROOM = 1e6
"""Slack upper bound of a group that the explainer drops: unbounded in every row's units."""


@dataclass
class Slack:
    """Nonnegative slack added to a group's rows when the model is solved to explain infeasibility.

    ``add(group, row, size, scale)`` returns a slack variable in slack mode and 0 otherwise;
    ``scale`` is the size of a unit of give in the row's units (so 1 in the penalty is "one
    meaningful unit": $1B, one project, one point of share), which keeps the penalty balanced.
    Each group's slack has two Parameters, set per solve without a recompile: ``weight[group]``
    (its weight in the penalty) and ``room[group]`` (its upper bound: 0 enforces the group,
    :data:`ROOM` drops it), so one compiled variant answers "is this subset of groups feasible?"
    and "how much must this group give?".

    .. math:: \\min \\sum_g w_g \\sum_r s_{gr} / \\sigma_{gr}
              \\quad\\text{s.t.}\\quad 0 \\le s_{gr} \\le \\rho_g
    """

    active: bool
    variables: dict[tuple[str, str], cp.Variable] = field(default_factory=dict)
    scales: dict[tuple[str, str], float] = field(default_factory=dict)
    weight: dict[str, cp.Parameter] = field(default_factory=dict)
    room: dict[str, cp.Parameter] = field(default_factory=dict)

    def add(self, group: str, row: str, size: int | None = None, scale: float = 1.0) -> Any:
        if not self.active:
            return 0.0
        var = (
            cp.Variable(size, nonneg=True, name=f"slack_{group}_{row}")
            if size
            else cp.Variable(nonneg=True, name=f"slack_{group}_{row}")
        )
        self.variables[(group, row)] = var
        self.scales[(group, row)] = scale
        if group not in self.weight:
            self.weight[group] = cp.Parameter(nonneg=True, value=1.0, name=f"give_weight_{group}")
            self.room[group] = cp.Parameter(nonneg=True, value=ROOM, name=f"give_room_{group}")
        return var

    def bounds(self) -> list[cp.Constraint]:
        """The rows ``s_gr <= room[g]``."""
        return [v <= self.room[group] for (group, _), v in self.variables.items()]

    def penalty(self) -> cp.Expression:
        terms = [
            self.weight[key[0]] * cp.sum(v) / self.scales[key] for key, v in self.variables.items()
        ]
        return cp.sum(cp.hstack(terms)) if terms else cp.Constant(0.0)

    def set(self, enforced: set[str], weighted: set[str]) -> None:
        """Enforce the groups ``enforced`` (no slack), drop the others; weigh ``weighted``."""
        for group in self.weight:
            self.room[group].value = 0.0 if group in enforced else ROOM
            self.weight[group].value = 1.0 if group in weighted else 0.0

    def values(self) -> dict[tuple[str, str], np.ndarray]:
        return {
            key: np.atleast_1d(np.asarray(v.value, dtype=float))
            for key, v in self.variables.items()
            if v.value is not None
        }


@dataclass
class Solution:
    """A candidate solution as numbers: selection y (0/1) and fund amounts f ($B)."""

    y: np.ndarray
    f: np.ndarray


@dataclass(frozen=True)
class RowMeaning:
    """One row of a group, said once: the unit its shadow price is quoted in, and what a binding
    row means for a reader who is not an optimiser."""

    unit: str
    meaning: str


@dataclass(frozen=True)
class Relax:
    """A rule's one-step relaxation, which the marginal stage re-solves with
    (:func:`portopt.model.marginal.relaxations`)."""

    rule: str
    """The rule in words ("project count")."""
    step: str
    """The step in words ("one more project")."""
    value: Callable[[RunConfig], object]
    """The row's ``key``'s relaxed value under a config."""


@dataclass(frozen=True)
class Loosen:
    """How the infeasibility explainer loosens a row's limit to find its largest feasible give
    (:class:`portopt.model.explain.CutExplainer`)."""

    words: str
    """The limit in words ("project limit")."""
    step: float
    """The answer's resolution, in the config key's units (1: a count)."""
    loosest: Callable[[RunConfig, ModelData], float]
    """(config, data) -> the loosest value tried."""
    show: Callable[[float], str]
    """A value of the config key in the user's units."""
    head: Callable[[RunConfig, float], str] | None = None
    """(config, the value now) -> "<the limit> is out of reach" in the group's own words;
    None: "the <words> <value> is out of reach"."""


@dataclass(frozen=True)
class Knob:
    """A group's scalar limit the explainer loosens: its config ``key``, whether loosening
    lowers it (a floor), and how (:class:`Loosen`)."""

    key: str
    lower: bool
    how: Loosen


@dataclass(frozen=True)
class Row:
    """One row of a group (a vector row: one entry per label), declared once.

    .. math:: \\mathrm{lhs}(y, f) \\le b \\quad (\\text{or} \\ge b)

    ``lhs(term, y, f)`` is written with ``@`` over matrices, so the same function gives the
    CVXPY expression on the variables and the numbers on a solution (f in $B).
    """

    name: str
    lhs: Callable[[Any, Any, Any], Any]
    """(term, y, f) -> the left side."""
    key: str | None
    """The dotted config key the bound is read from (a Parameter: a re-solve sets it); None
    for a row that states a fact about the projects (a dependency): its bound is a constant,
    it has no shadow price, and ``unit`` and ``meaning`` are left empty."""
    bound: Callable[[Any, RunConfig], Any]
    """(term, config) -> the right side, in the left side's units: a scalar for every entry,
    or one number per entry (a region's own headroom)."""
    unit: str = ""
    """The shadow price's unit."""
    meaning: str = ""
    """What a binding row means, for a reader who is not an optimiser."""
    sense: str = "<="
    labels: Callable[[Any], list[str]] | None = None
    """(term) -> what each entry is (a sector, a round); None for a scalar row."""
    give: float | Callable[[Any], float] = 1.0
    """One unit of give in the slack's penalty (one project, $1B), or (term) -> it."""
    price: float = 1.0
    """Shadow price per unit of ``unit`` = dual x ``price`` (10: "per $10B" of a $B row)."""
    show: Callable[[float], str] = "{:g}".format
    """A value of the left side in words (a count, ``money``)."""
    breaks: str = "{row} {label} is {value}, {side} the bound {bound}"
    """The re-check's words for a broken entry (after "<group>: "), with ``{label}``,
    ``{value}`` and ``{bound}`` (shown), ``{row}`` and ``{side}`` (above or below)."""
    step: Relax | None = None
    every: bool = False
    """Report every entry's shadow price, not only those with a positive dual."""
    loosen: Loosen | None = None
    """How the explainer loosens the row's limit (a scalar ``key``); None: it says what the
    row must give instead."""
    where: str = "{label}"
    """How a shadow price names an entry (``{label}``, ``{row}``)."""
    of: Callable[[Any, Any, Any], Any] | None = None
    """(term, y, f) -> the quantity the bound is a share of (deployed capital ``f.sum()``),
    or None. With it the row is :math:`\\mathrm{lhs} \\le b \\cdot \\mathrm{of}` (or
    :math:`\\ge`), compiled as :math:`\\mathrm{lhs} - b \\cdot \\mathrm{of} \\le s`; the
    re-check shows ``lhs / of`` against b, and the shadow price is ``price`` x dual x ``of``
    at the solution (``price`` 0.01: per point of share)."""


@dataclass
class ShadowPrice:
    """A group's dual in the user's units: ``value`` objective points per ``unit``.

    ``row`` says where (a sector, a region, a quarter); ``meaning`` is the row's
    :class:`RowMeaning` text.
    """

    group: str
    row: str
    unit: str
    value: float
    binding: bool
    meaning: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "row": self.row,
            "unit": self.unit,
            "coverage_per_unit": self.value,
            "binding": self.binding,
            "meaning": self.meaning,
        }


GROUPS: list[type[Term]] = []
"""Every constraint group, in the order they are defined (compiled and reported in that order):
a subclass of :class:`Term` with a ``name`` joins by being defined."""


class Term:
    """Base class of the model's constraint groups.

    Class attributes say what the group is: ``name`` (its config key under
    ``model.groups``), ``parameter_keys``, ``meanings`` (each row's unit and meaning),
    ``selection_check`` (whether :meth:`holds` can judge a selection at its minimum amounts:
    the greedy keeps such groups satisfied) and ``fact`` (rows that state facts about the
    projects, not a policy: the infeasibility explainer never drops them).
    """

    name: str = ""
    parameter_keys: tuple[str, ...] = ()
    """Dotted config keys whose new values are Parameter updates (no rebuild)."""
    meanings: ClassVar[dict[str, RowMeaning]] = {}
    rows_declared: ClassVar[tuple[Row, ...]] = ()
    """The group's rows as data (:class:`Row`); a group that declares them needs no
    ``compile``, ``update``, ``check``, ``holds`` or ``shadow`` of its own, and its
    ``meanings`` and ``parameter_keys`` come from them."""
    knobs: ClassVar[tuple[Knob, ...]] = ()
    """The limits the explainer loosens (from the rows' ``loosen``)."""
    selection_check: bool = False
    fact: bool = False
    scenario_sized: ClassVar[bool] = False
    """Whether some of the group's rows grow with the scenarios (the recoupment CVaR). The cut
    model (:mod:`portopt.model.direct`) finds such a group by this flag and lowers it through
    the cut protocol: it compiles :meth:`compile_cut_form` in every variant (no slack), asks
    :meth:`separate` for the most violated row at each point (a row
    :math:`(a - \\sigma \\mathbf 1) f \\le 0`, :math:`\\sigma` = :attr:`cut_shift`), and gives
    the cut rows' dual back in ``cut_dual``."""
    cut_dual: float = 0.0
    """The summed dual of the rows the cut model added for this group (scenario-sized only)."""

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        """Register a group (a class with a ``name``) unless ``register=False``."""
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("rows_declared", ())
        if declared and "meanings" not in cls.__dict__:
            cls.meanings = {r.name: RowMeaning(r.unit, r.meaning) for r in declared if r.key}
        if declared and "parameter_keys" not in cls.__dict__:
            cls.parameter_keys = tuple(dict.fromkeys(r.key for r in declared if r.key))
        if declared and "knobs" not in cls.__dict__:
            cls.knobs = tuple(
                Knob(r.key, r.sense == ">=", r.loosen) for r in declared if r.key and r.loosen
            )
        if cls.name and register:
            GROUPS.append(cls)

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        self.data = data
        self.rows: dict[str, cp.Constraint] = {}
        self.bounds: dict[str, Any] = {
            r.name: cp.Parameter(np.shape(r.bound(self, config)), name=f"{self.name}_{r.name}")
            if r.key
            else self.bound(r, config)  # a fact's constant
            for r in self.rows_declared
        }
        self.update(config)

    def enabled(self, config: RunConfig) -> bool:
        return bool(getattr(config.model.groups, self.name).enabled)

    def update(self, config: RunConfig) -> None:
        """Set this term's Parameter values from ``config`` (a declared row's bound)."""
        for r in self.rows_declared:
            if r.key:
                self.bounds[r.name].value = self.bound(r, config)

    def compile(self, v: Vars, slack: Slack) -> list[cp.Constraint]:
        """CVXPY constraints over ``v`` (the full-scenario lowering); once per problem variant."""
        if not self.rows_declared:
            raise NotImplementedError
        self.rows = {}
        for r in self.rows_declared:
            labels = self.labels_of(r)
            if labels is not None and not labels:
                continue
            lhs, b = r.lhs(self, v.y, v.f), self.bounds[r.name]
            give = r.give(self) if callable(r.give) else r.give
            s = slack.add(self.name, r.name, None if labels is None else len(labels), give)
            if r.of is not None:
                share = cp.multiply(b, r.of(self, v.y, v.f))
                self.rows[r.name] = lhs - share <= s if r.sense == "<=" else share - lhs <= s
            else:
                self.rows[r.name] = lhs <= b + s if r.sense == "<=" else lhs >= b - s
        return list(self.rows.values())

    def bound(self, row: Row, config: RunConfig) -> Any:
        """``row``'s right side under ``config``: a float, or one float per entry."""
        b = np.asarray(row.bound(self, config), dtype=float)
        return float(b) if b.ndim == 0 else b

    def labels_of(self, row: Row) -> list[str] | None:
        """What each entry of ``row`` is; None for a scalar row."""
        return None if row.labels is None else list(row.labels(self))

    def values(self, row: Row, sol: Solution) -> np.ndarray:
        """``row``'s left side at ``sol``, one number per entry."""
        return np.atleast_1d(np.asarray(row.lhs(self, sol.y, sol.f), dtype=float))

    def scale(self, row: Row, sol: Solution) -> float:
        """What ``row``'s bound multiplies at ``sol`` (1 without ``of``)."""
        return 1.0 if row.of is None else float(row.of(self, sol.y, sol.f))

    def violations(
        self, row: Row, sol: Solution, config: RunConfig
    ) -> list[tuple[str, float, float]]:
        """(label, value, bound) of each entry of ``row`` that ``sol`` breaks, beyond
        :data:`TOL`."""
        got, sign, F = self.values(row, sol), 1.0 if row.sense == "<=" else -1.0, 1.0
        b = np.broadcast_to(self.bound(row, config), got.shape)
        labels = self.labels_of(row) or [""] * got.size
        if row.of is not None:  # a share: checked against b x of, shown as lhs / of
            F = self.scale(row, sol)
            broken = [exceeds(sign * x, sign * bj * F, F) for x, bj in zip(got, b, strict=True)]
            return [
                (lab, x / max(F, 1e-12), bj)
                for lab, x, bj, no in zip(labels, got, b, broken, strict=True)
                if no
            ]
        return [
            (lab, x, bj)
            for lab, x, bj in zip(labels, got, b, strict=True)
            if exceeds(sign * x, sign * bj)
        ]

    def binding(self, row: Row, sol: Solution, config: RunConfig) -> np.ndarray:
        """Whether each entry of ``row`` is at its bound at ``sol``."""
        got, F = self.values(row, sol), self.scale(row, sol)
        b = np.broadcast_to(self.bound(row, config), got.shape) * F
        return np.abs(got - b) < 1e-6 * (
            np.maximum(1.0, np.abs(b)) if row.of is None else max(1.0, F)
        )

    def needed(self, row: str, give: np.ndarray, config: RunConfig) -> list[tuple[str, float]]:
        """The explainer's numbers: (label, the bound each entry of ``row`` would need) for
        the entries that had to give (``give``, in the row's units; a row without ``of``)."""
        r = next(x for x in self.rows_declared if x.name == row)
        sign, labels = 1.0 if r.sense == "<=" else -1.0, self.labels_of(r) or [""]
        b = np.broadcast_to(self.bound(r, config), (len(labels),))
        return [
            (lab, bj + sign * float(g))
            for lab, bj, g in zip(labels, b, np.atleast_1d(give), strict=False)
            if g > 1e-5
        ]

    def compile_cut_form(self, v: Vars) -> list[cp.Constraint]:
        """The rows the cut model keeps; a group whose rows grow with the scenarios leaves
        those out here and adds them as cuts (:meth:`separate`)."""
        return self.compile(v, Slack(active=False))

    def separate(self, f: np.ndarray, tol: float) -> np.ndarray | None:
        """A scenario-sized group's cut at amounts ``f`` ($B): the coefficients :math:`a` of
        its most violated row :math:`(a - \\sigma \\mathbf 1) f \\le 0` (the part that does not
        depend on a Parameter, so a cut pool stays valid across re-solves), or None when no
        row is violated by more than ``tol`` relative to :math:`\\sum f`."""
        raise NotImplementedError(f"{self.name} is not scenario-sized")

    @property
    def cut_shift(self) -> float:
        """:math:`\\sigma` of the cut rows (:meth:`separate`) under the current Parameter values."""
        raise NotImplementedError(f"{self.name} is not scenario-sized")

    def check(self, sol: Solution, data: ModelData, config: RunConfig) -> list[str]:
        """Violations of this group by ``sol``, computed from the numbers."""
        if not self.rows_declared:
            raise NotImplementedError
        out = []
        for r in self.rows_declared:
            out += [self.words(r, lab, x, b) for lab, x, b in self.violations(r, sol, config)]
        return out

    def words(self, row: Row, label: str, value: float, bound: float) -> str:
        """``row``'s ``breaks`` for the entry ``label`` at ``value`` against ``bound``."""
        side = "above" if row.sense == "<=" else "below"
        said = row.breaks.format(
            row=row.name, label=label, value=row.show(value), side=side, bound=row.show(bound)
        )
        return f"{self.name}: " + " ".join(said.split())

    def holds(self, sol: Solution, config: RunConfig) -> bool:
        """Whether ``sol`` satisfies the group; a fast test for the greedy (same meaning)."""
        return not self.check(sol, self.data, config)

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        """Plain-words lines for the rows that needed slack ``give`` (row -> amounts): by
        default a declared row's ``breaks`` at the bound each entry would need
        (:meth:`needed`; a share row, whose give is in the left side's units, says what it
        had to give); a group words its own explanation by overriding this."""
        declared = [r for r in self.rows_declared if r.of is None]
        out = [
            f"{self.name}: {row} had to give {float(np.sum(a)):.3g}"
            for row, a in give.items()
            if row not in {r.name for r in declared}
        ]
        for r in declared:
            labels = self.labels_of(r) or [""]
            at = dict(zip(labels, np.broadcast_to(self.bound(r, config), len(labels)), strict=True))
            needs = self.needed(r.name, give.get(r.name, []), config)
            out += [self.words(r, label, need, at[label]) for label, need in needs]
        return out

    @classmethod
    def steps(cls, config: RunConfig, binding: list[str]) -> list[tuple[str, str, str, object]]:
        """The one-step relaxations of the rows written by hand, as (rule, config key, step in
        words, the relaxed value) (a declared row says its own: :attr:`Row.step`); ``binding``:
        the entries the job found at their bound (the sectors at their maximum share)."""
        return []

    def precheck(self, config: RunConfig) -> list[str]:
        """Impossibilities of this group visible without a solve (each line names the group)."""
        return []

    def shadow(self, sol: Solution, config: RunConfig) -> list[ShadowPrice]:
        """Duals of the rows compiled last, in the user's units (after an LP solve): every
        scalar row, and the entries of a vector row with a positive dual."""
        out = []
        for r in self.rows_declared:
            if not r.key or (r.name not in self.rows and r.labels is not None):
                continue
            duals, bind = dual(self.rows.get(r.name)), self.binding(r, sol, config)
            labels, F = self.labels_of(r), self.scale(r, sol)  # F: 1.0 (exact) without `of`
            if labels is None:
                out.append(self.price(r.name, r.price * duals[0] * F, bool(bind[0])))
                continue
            out += [
                self.price(
                    r.name,
                    r.price * duals[j] * F if j < duals.size else 0.0,
                    bool(bind[j]),
                    r.where.format(label=lab, row=r.name),
                )
                for j, lab in enumerate(labels)
                if r.every or (j < duals.size and duals[j] > 1e-9)
            ]
        return out

    def price(self, row: str, value: float, binding: bool, where: str | None = None) -> ShadowPrice:
        """The :class:`ShadowPrice` of row ``row`` (a key of ``meanings``), shown as ``where``."""
        said = self.meanings[row]
        return ShadowPrice(
            self.name, where or row, said.unit, float(value), bool(binding), said.meaning
        )


def exceeds(value: float, limit: float, scale: float = 1.0) -> bool:
    """``value > limit`` beyond the re-check tolerance, relative to ``scale``."""
    return value > limit + TOL * max(1.0, abs(scale), abs(limit))


def dual(row: cp.Constraint | None) -> np.ndarray:
    """The dual of a compiled row (0 where the solver gave none)."""
    if row is None or row.dual_value is None:
        return np.zeros(1)
    return np.atleast_1d(np.asarray(row.dual_value, dtype=float))


def count(x: float) -> str:
    """A count in words: ``3``."""
    return f"{x:.0f}"


def money(b: float) -> str:
    """$B amount as words: ``$27.5B``."""
    return f"${b:,.1f}B" if abs(b) >= 0.05 else f"${b * 1000:,.0f}M"
