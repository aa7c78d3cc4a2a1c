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
import scipy.sparse as sp


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
    """Coverage as a linear part and one concave :math:`g_k` per saturating chokepoint, with
    its pairs stacked in one sparse matrix so that separation is one product per point.

    ``rows`` (P, n) holds :math:`\\bar a_{ks}` of every saturating pair, ``c`` (P,) its
    weight :math:`c_{ks}`, ``owner`` (P,) its chokepoint's position among the saturating ones,
    ``who`` each such chokepoint's contributors and ``base`` (K', n) the coefficients
    :math:`\\sum_s c_{ks} \\bar a_{ks}` of its cut with :math:`A = \\emptyset`.
    ``starts`` (K',) is where each chokepoint's block of rows begins (the rows are grouped by
    chokepoint, so per-chokepoint sums are segment sums). ``columns`` is ``rows`` by column: a
    point's product :math:`\\bar A y` then costs the
    entries of its nonzero columns only (a MILP point selects a few dozen projects of a
    thousand, and an LP vertex is sparse too), where a row-wise product reads every entry.
    """

    c_lin: np.ndarray
    rows: sp.csr_matrix
    c: np.ndarray
    owner: np.ndarray
    who: list[np.ndarray]
    base: np.ndarray
    starts: np.ndarray
    columns: sp.csc_matrix

    @classmethod
    def build(
        cls, online: np.ndarray, ratio: np.ndarray, stress: np.ndarray, weights: np.ndarray
    ) -> CoverageCuts:
        n = ratio.shape[0]
        scale = 1.0 / (online.shape[0] * weights.sum())
        c_lin = np.zeros(n)
        blocks, cs, owners, who = [], [], [], []
        for part in chokepoint_parts(online, ratio, stress, weights):
            c = part.wm * scale
            sat = part.saturating
            c_lin[part.who] += c[~sat] @ part.a[~sat]
            if sat.any():
                a = part.a[sat]
                blocks.append(_spread(a, part.who, n))
                cs.append(c[sat])
                owners.append(np.full(a.shape[0], len(who)))
                who.append(part.who)
        rows = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n))
        c = np.concatenate(cs) if cs else np.zeros(0)
        owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        base = (_by_owner(owner, c, len(who)) @ rows).toarray() if who else np.zeros((0, n))
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if who else owner
        return cls(c_lin, rows, c, owner, who, base, starts, rows.tocsc())

    @property
    def count(self) -> int:
        """Number of saturating chokepoints (θ columns of the cut model)."""
        return len(self.who)

    def upper(self) -> np.ndarray:
        """(K',) the largest value of each :math:`g_k`, ``Σ_s c_ks``."""
        return np.bincount(self.owner, self.c, minlength=self.count)

    def products(self, y: np.ndarray) -> np.ndarray:
        """(P,) :math:`\\bar a_{ks} \\cdot y` of every saturating pair."""
        used = np.flatnonzero(y)
        return self.columns[:, used] @ y[used]

    def values(self, y: np.ndarray) -> np.ndarray:
        """(K',) exact :math:`g_k(y)`."""
        return self._per_chokepoint(self.products(y))

    def _per_chokepoint(self, x: np.ndarray) -> np.ndarray:
        """(K',) :math:`\\sum_s c_{ks} \\min(1, x_{ks})` from the pairs' products ``x``."""
        if not self.count:
            return np.zeros(0)
        return np.add.reduceat(self.c * np.minimum(1.0, x), self.starts)

    def value(self, y: np.ndarray) -> float:
        """Exact mean coverage score of a selection (the mean of :func:`coverage_score`)."""
        return float(self.c_lin @ y) + float(self.values(y).sum())

    def cuts(
        self, y: np.ndarray, theta: np.ndarray | None, tol: float
    ) -> list[tuple[int, float, np.ndarray]]:
        """``(k, constant, coefficients over who[k])`` of the cut tight at ``y`` for every
        :math:`\\theta_k` above :math:`g_k(y)` by more than ``tol`` (every k if ``theta`` is
        None); :meth:`products` is computed once for all chokepoints."""
        x = self.products(y)
        if theta is None:
            bad = np.arange(self.count)
        else:
            bad = np.flatnonzero(theta > self._per_chokepoint(x) + tol)
        if bad.size == 0:
            return []
        hit = np.flatnonzero(x >= 1.0)  # the saturated pairs: few, wherever y is
        const = np.bincount(self.owner[hit], self.c[hit], minlength=self.count)
        pos = np.full(self.count, -1)
        pos[bad] = np.arange(bad.size)
        sat = hit[pos[self.owner[hit]] >= 0]
        coef = self.base[bad]
        if sat.size:
            taken = _by_owner(pos[self.owner[sat]], self.c[sat], bad.size) @ self.rows[sat]
            coef = coef - taken.toarray()
        return [(int(k), float(const[k]), coef[j, self.who[k]]) for j, k in enumerate(bad.tolist())]


def _spread(a: np.ndarray, who: np.ndarray, n: int) -> sp.csr_matrix:
    """(rows, n) sparse matrix with the columns of dense ``a`` at positions ``who``."""
    r = a.shape[0]
    return sp.csr_matrix(
        (a.ravel(), (np.repeat(np.arange(r), who.size), np.tile(who, r))), shape=(r, n)
    )


def _by_owner(owner: np.ndarray, weight: np.ndarray, count: int) -> sp.csr_matrix:
    """(count, P) matrix summing weighted pairs into their chokepoint."""
    return sp.csr_matrix((weight, (owner, np.arange(owner.size))), shape=(count, owner.size))
