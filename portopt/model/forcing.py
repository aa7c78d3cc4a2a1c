"""Projects forced in or out of a solve (what-ifs, a plan's marginal values as full re-plans).

A project forced out has every column at zero. A project forced in has exactly one of its
columns chosen: :math:`\\sum_{o \\in q} y_o = 1` over its columns, or over its column in one
round when a quarter is given (the plan then proposes it in that round); every other choice of
the model stays free (a full re-plan, not a re-solve with the rest held). Applied to the cut
model's HiGHS instance after each build or re-target (:attr:`DirectSweep.forcing`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from portopt.errors import ConfigError, InfeasibleError, Problem, did_you_mean
from portopt.model.data import ModelData


@dataclass(frozen=True)
class Forcing:
    """``force_in``: project id -> proposal quarter (``YYYYQn``) or None (its best round);
    ``force_out``: project ids."""

    force_in: Mapping[str, str | None] = field(default_factory=dict)
    force_out: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.force_in or self.force_out)

    def describe(self) -> list[str]:
        """The forcing in words, one item per project."""
        out = [
            f"force {pid} in" + (f" at {q}" if q else " (its best round)")
            for pid, q in self.force_in.items()
        ]
        return out + [f"force {pid} out" for pid in self.force_out]

    def both_ways(self) -> list[Problem]:
        """A problem per project forced both in and out."""
        return [
            Problem("--force-in", None, None, f"'{pid}' is forced out too")
            for pid in self.force_in
            if pid in self.force_out
        ]

    def columns(self, d: ModelData) -> tuple[list[np.ndarray], np.ndarray]:
        """The column sets that must hold exactly one choice, and the columns fixed at zero.
        Raises :class:`ConfigError` naming an unknown project, a round it has no column in,
        or a project forced both ways."""
        problems = []
        index = {pid: q for q, pid in enumerate(d.projects)}
        rows: list[np.ndarray] = []
        zero: list[int] = []
        problems += self.both_ways()
        for pid, quarter in self.force_in.items():
            if pid in self.force_out:
                continue
            if pid not in index:
                problems.append(_unknown("--force-in", pid, d.projects))
                continue
            cols = d.columns_of(index[pid])
            if quarter:
                at = [int(c) for c in cols if d.quarter_label(int(d.proposal_q[c])) == quarter]
                if not at:
                    rounds = [d.quarter_label(int(d.proposal_q[c])) for c in cols]
                    problems.append(not_proposable(pid, quarter, rounds))
                    continue
                zero += [int(c) for c in cols if int(c) not in at]
                cols = np.asarray(at)
            rows.append(np.asarray(cols, dtype=np.int64))
        for pid in self.force_out:
            if pid not in index:
                problems.append(_unknown("--force-out", pid, d.projects))
                continue
            zero += [int(c) for c in d.columns_of(index[pid])]
        if problems:
            raise ConfigError(problems, "bad forcing")
        return rows, np.asarray(sorted(set(zero)), dtype=np.int64)

    def apply(self, model: Any) -> None:
        """Add the forcing to ``model`` (a built :class:`~portopt.model.direct.DirectModel`):
        its forced-out columns' bounds at zero, a row per forced-in project."""
        rows, zero = self.columns(model.data)
        yc = np.asarray(model.ycol, dtype=np.int32)
        if zero.size:
            cols = yc[zero]
            z = np.zeros(cols.size)
            model.h.changeColsBounds(cols.size, cols, z, z)
        for cols in rows:
            model.h.addRow(1.0, 1.0, cols.size, yc[cols], np.ones(cols.size))

    def attach(self, model: Any) -> None:
        """Force ``model`` (a :class:`~portopt.model.direct.DirectSweep`) on every solve.
        Raises :class:`ConfigError` for another formulation (it has no forcing)."""
        if not hasattr(model, "forcing"):
            raise ConfigError(
                [
                    Problem(
                        "solver.name",
                        None,
                        None,
                        "forcing projects in or out needs the cut model (auto or highs_direct)",
                    )
                ],
                "bad forcing",
            )
        self.columns(model.data)  # an unknown project or round: refused before the solve
        model.forcing = self

    def check(self, model: Any, y: np.ndarray) -> None:
        """Raise :class:`InfeasibleError` when the plan ``y`` breaks the forcing (the cut
        model found no plan that keeps it, and another formulation answered without it)."""
        rows, zero = self.columns(model.data)
        chosen = np.asarray(y) > 0.5
        if chosen[zero].any() or any(chosen[cols].sum() != 1 for cols in rows):
            raise InfeasibleError(
                "no plan satisfies every rule with " + ", ".join(self.describe()), []
            )


def not_proposable(pid: str, quarter: str, rounds: Collection[str]) -> Problem:
    """The problem of ``pid`` forced in at ``quarter``, none of its ``rounds``."""
    shown = ", ".join(sorted(set(rounds))) or "none (it is committed or not open)"
    return Problem(
        "--force-in", None, None, f"'{pid}' cannot be proposed in {quarter}; its rounds are {shown}"
    )


def _unknown(option: str, pid: str, ids: list[str]) -> Problem:
    return Problem(option, None, None, f"unknown project '{pid}'{did_you_mean(pid, ids)}")


def parse_force_in(items: list[str] | None) -> dict[str, str | None]:
    """``["ID", "ID@2027Q3"]`` to ``{ID: None, ID: "2027Q3"}``; a malformed quarter raises
    :class:`ConfigError` naming the option."""
    from portopt.config import quarter_index

    out: dict[str, str | None] = {}
    problems = []
    for item in items or []:
        pid, at, quarter = item.partition("@")
        pid, quarter = pid.strip(), quarter.strip()
        if not pid or (at and not quarter):
            problems.append(Problem("--force-in", None, None, f"'{item}' is not ID[@QUARTER]"))
            continue
        if quarter:
            try:
                quarter_index(quarter, "2000Q1")
            except ValueError:
                problems.append(
                    Problem("--force-in", None, None, f"'{quarter}' is not a quarter like 2027Q3")
                )
                continue
        out[pid] = quarter or None
    if problems:
        raise ConfigError(problems, "bad --force-in")
    return out


__all__ = ["Forcing", "parse_force_in"]
