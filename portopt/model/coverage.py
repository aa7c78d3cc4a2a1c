"""Strategic coverage, said once: its exact value, its saturating split, and its cut lowering.

Coverage of chokepoint k in scenario s by a selection y, and the score of scenario s,

.. math::

    c_{ks}(y) = \\min\\Big(1, \\sum_i a_{iks} y_i\\Big), \\quad
    a_{iks} = \\frac{\\mathrm{cap}_{ik}\\,\\mathrm{online}_{is}}{\\mathrm{gap}_k}, \\qquad
    \\mathrm{score}_s(y) = \\frac{\\sum_k w_k m_{ks} c_{ks}(y)}{\\sum_k w_k}.

:func:`chokepoint_coverage` and :func:`coverage_score` are that formula; the model's exact
objective, the greedy incumbent, the cut model and the out-of-sample evaluation all call them.

**The split.** A pair (k, s) is linear in y where it can never saturate (``Σ_i a_iks <= 1``)
or where only one project contributes (then ``c = min(1, a) y_i``); the others are
*saturating*. For binary y, ``min(1, Σ a y) = min(1, Σ ā y)`` with the clipped
:math:`\\bar a = \\min(1, a)`, which tightens both lowerings' relaxations at no cost.
:func:`chokepoint_parts` yields each chokepoint's split; the full-scenario lowering (one aux
per saturating pair, :mod:`portopt.model.objective` over ``ModelData``) and the cut lowering
(:class:`CoverageCuts`) are both built from it.

**The cut lowering.** With :math:`c_{ks} = w_k m_{ks} / (S \\sum_k w_k)`, chokepoint k's
saturating scenarios :math:`\\mathcal S_k` contribute the concave
:math:`g_k(y) = \\sum_{s \\in \\mathcal S_k} c_{ks} \\min(1, \\bar a_{ks} \\cdot y)`, bounded
above by one cut per subset :math:`A \\subseteq \\mathcal S_k`,

.. math:: \\theta_k \\le \\sum_{s \\in A} c_{ks}
          + \\Big(\\sum_{s \\notin A} c_{ks} \\bar a_{ks}\\Big) \\cdot y ,

valid for every y and tight at :math:`\\hat y` for :math:`A = \\{s : \\bar a_{ks} \\cdot \\hat y
\\ge 1\\}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def chokepoint_coverage(online: np.ndarray, ratio: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(S, K) coverage ``min(1, Σ_i online_is ratio_ik y_i)`` of a selection (or amounts) y."""
    return np.minimum(1.0, (online * np.asarray(y, float)[None, :]) @ ratio)


def coverage_score(cov: np.ndarray, stress: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(S,) score ``Σ_k w_k m_ks cov_ks / Σ_k w_k`` of an (S, K) coverage."""
    return (cov * stress) @ weights / weights.sum()


@dataclass
class ChokepointPart:
    """Chokepoint ``k``'s coverage over its contributors ``who``: clipped ratios ``a`` (S, m),
    stress weights ``wm`` = :math:`w_k m_{ks}` (S,), and which scenarios saturate (S,)."""

    k: int
    who: np.ndarray
    a: np.ndarray
    wm: np.ndarray
    saturating: np.ndarray


def chokepoint_parts(
    online: np.ndarray, ratio: np.ndarray, stress: np.ndarray, weights: np.ndarray
) -> Iterator[ChokepointPart]:
    """The split of every chokepoint some project contributes to (module docstring)."""
    for k in range(ratio.shape[1]):
        who = np.flatnonzero(ratio[:, k] > 0)
        if who.size == 0:
            continue
        a = np.minimum(1.0, online[:, who] * ratio[who, k][None, :])
        saturating = ((a > 0).sum(axis=1) >= 2) & (a.sum(axis=1) > 1.0)
        yield ChokepointPart(k, who, a, weights[k] * stress[:, k], saturating)


@dataclass
class CoverageCuts:
    """Coverage as a linear part and one concave :math:`g_k` per saturating chokepoint.

    For each saturating chokepoint (position j among them): ``blocks[j]`` (S_j, m_j) holds
    :math:`\\bar a_{ks}` of its saturating scenarios over its contributors ``who[j]``, stored
    by column, ``weights[j]`` (S_j,) the :math:`c_{ks}`, and ``base[j]`` (m_j,) the coefficients
    :math:`\\sum_s c_{ks} \\bar a_{ks}` of its cut with :math:`A = \\emptyset`. A point's
    products :math:`\\bar a_{ks} \\cdot y` are computed once (:meth:`products`) from the
    columns of the projects it selects only: a MILP point selects a few dozen of a thousand,
    and an LP vertex is sparse too. The values and the cuts of every chokepoint come from them.
    """

    c_lin: np.ndarray
    blocks: list[np.ndarray]
    weights: list[np.ndarray]
    who: list[np.ndarray]
    base: list[np.ndarray]

    @classmethod
    def build(
        cls, online: np.ndarray, ratio: np.ndarray, stress: np.ndarray, weights: np.ndarray
    ) -> CoverageCuts:
        scale = 1.0 / (online.shape[0] * weights.sum())
        c_lin = np.zeros(ratio.shape[0])
        blocks, cs, who, base = [], [], [], []
        for part in chokepoint_parts(online, ratio, stress, weights):
            c = part.wm * scale
            sat = part.saturating
            c_lin[part.who] += c[~sat] @ part.a[~sat]
            if sat.any():
                blocks.append(np.asfortranarray(part.a[sat]))
                cs.append(c[sat])
                who.append(part.who)
                base.append(c[sat] @ part.a[sat])
        return cls(c_lin, blocks, cs, who, base)

    @property
    def count(self) -> int:
        """Number of saturating chokepoints (θ columns of the cut model)."""
        return len(self.who)

    def upper(self) -> np.ndarray:
        """(K',) the largest value of each :math:`g_k`, ``Σ_s c_ks``."""
        return np.array([c.sum() for c in self.weights])

    def products(self, y: np.ndarray) -> list[np.ndarray]:
        """:math:`\\bar a_{ks} \\cdot y` of every saturating pair, per chokepoint."""
        out = []
        for a, who in zip(self.blocks, self.who, strict=True):
            yk = y[who]
            used = np.flatnonzero(yk)
            # a dense point (an LP's) reads every column anyway: copying them would cost more.
            # einsum, not BLAS, in the whole separation: OpenBLAS wakes its threads for every
            # product of this size, which on a busy 2-core machine cost milliseconds each
            if 4 * used.size < yk.size:
                out.append(np.einsum("ij,j->i", a[:, used], yk[used]))
            else:
                out.append(np.einsum("ij,j->i", a, yk))
        return out

    def values(self, y: np.ndarray) -> np.ndarray:
        """(K',) exact :math:`g_k(y)`."""
        return self._values(self.products(y))

    def _values(self, x: list[np.ndarray]) -> np.ndarray:
        return np.array(
            [
                np.einsum("s,s->", c, np.minimum(1.0, xk))
                for c, xk in zip(self.weights, x, strict=True)
            ]
        )

    def value(self, y: np.ndarray) -> float:
        """Exact mean coverage score of a selection (the mean of :func:`coverage_score`)."""
        return float(self.c_lin @ y) + float(self.values(y).sum())

    def cuts(
        self, y: np.ndarray, theta: np.ndarray | None, tol: float
    ) -> list[tuple[int, float, np.ndarray]]:
        """``(k, constant, coefficients over who[k])`` of the cut tight at ``y`` for every
        :math:`\\theta_k` above :math:`g_k(y)` by more than ``tol`` (every k if ``theta`` is
        None), from one :meth:`products` of the point."""
        x = self.products(y)
        bad = range(self.count) if theta is None else np.flatnonzero(theta > self._values(x) + tol)
        out = []
        for k in bad:
            hit = np.flatnonzero(x[k] >= 1.0)  # the saturated scenarios: A of the cut
            c = self.weights[k][hit]
            taken = np.einsum("s,sm->m", c, self.blocks[k][hit]) if hit.size else 0.0
            coef = self.base[k] - taken
            out.append((int(k), float(c.sum()), coef))
        return out
