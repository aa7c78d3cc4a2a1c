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
"""

from __future__ import annotations

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
    selection_check: bool = False
    fact: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            GROUPS.append(cls)

    def __init__(self, data: ModelData, config: RunConfig) -> None:
        self.data = data
        self.rows: dict[str, cp.Constraint] = {}
        self.update(config)

    def enabled(self, config: RunConfig) -> bool:
        return bool(getattr(config.model.groups, self.name).enabled)

    def update(self, config: RunConfig) -> None:
        """Set this term's Parameter values from ``config``."""

    def compile(self, v: Vars, slack: Slack) -> list[cp.Constraint]:
        """CVXPY constraints over ``v`` (the full-scenario lowering); once per problem variant."""
        raise NotImplementedError

    def compile_cut_form(self, v: Vars) -> list[cp.Constraint]:
        """The rows the cut model keeps; a group whose rows grow with the scenarios leaves
        those out here and adds them as cuts (``Recoupment.separate``)."""
        return self.compile(v, Slack(active=False))

    def check(self, sol: Solution, data: ModelData, config: RunConfig) -> list[str]:
        """Violations of this group by ``sol``, computed from the numbers."""
        raise NotImplementedError

    def holds(self, sol: Solution, config: RunConfig) -> bool:
        """Whether ``sol`` satisfies the group; a fast test for the greedy (same meaning)."""
        return not self.check(sol, self.data, config)

    def explain(self, give: dict[str, np.ndarray], sol: Solution, config: RunConfig) -> list[str]:
        """Plain-words lines for the rows that needed slack ``give`` (row -> amounts)."""
        return [f"{self.name}: {row} had to give {float(np.sum(a)):.3g}" for row, a in give.items()]

    def precheck(self, config: RunConfig) -> list[str]:
        """Impossibilities of this group visible without a solve (each line names the group)."""
        return []

    def shadow(self, sol: Solution, config: RunConfig) -> list[ShadowPrice]:
        """Duals of the rows compiled last, in the user's units (after an LP solve)."""
        return []

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


def money(b: float) -> str:
    """$B amount as words: ``$27.5B``."""
    return f"${b:,.1f}B" if abs(b) >= 0.05 else f"${b * 1000:,.0f}M"
