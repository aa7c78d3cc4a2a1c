"""Uncertain priorities: chokepoint weights and gaps drawn from the catalog's ranges.

Robust Portfolio Modeling (Liesiö, Mild and Salo, EJOR 2007) takes incomplete preference
statements, such as a weight known only to lie in an interval, as a set of *feasible weights*
and asks which projects the optimal portfolio holds over the whole set. The catalog's ranges
(``weight_low``/``weight_high``, ``us_gap_low``/``us_gap_high``; blank = the point value, see
docs/catalog-columns.md) are those statements. Batch b of ``portopt robustness`` draws one
instance of them, for chokepoint k,

.. math::

    w_k^{(b)} = w_k^{lo} + u_{bk}\\,(w_k^{hi} - w_k^{lo}), \\qquad
    g_k^{(b)} = g_k^{lo} + v_{bk}\\,(g_k^{hi} - g_k^{lo}),

with :math:`(u_{bk}, v_{bk})` the uniforms ``(ua, ub)`` of the Philox counter
``(b, entity_k, 0, PRIORITY_PURPOSE)`` under the run's seed (docs/scenario-model.md): each draw
is addressed by the seed, the batch and the chokepoint's id, so it is the same on any worker and
in any rerun, and adding a chokepoint changes no other chokepoint's draws.

Why independent uniforms on the box. The objective divides the weighted coverage by
:math:`\\sum_k w_k`, so only the normalised weights :math:`w / \\sum_k w_k` matter, and the
normalised image of the box is the set of feasible weights that the interval statements define.
Uniform draws on the box give every feasible weight vector a positive density and keep every
chokepoint inside the range the catalog states; a Dirichlet about the point weights would need
rejection to stay in the box and would seldom reach its corners, the extreme statements a
committee most wants tested. A
degenerate range (low = high) gives the point value exactly, so a catalog without ranges
reproduces the fixed-weight solves bit for bit. A gap range is all that the sources say, with
nothing on where inside it the truth lies: uniform is the maximum-entropy choice on an interval.

The sampled core index estimates RPM's: a project selected in every sampled instance is core
whatever the weights *as far as the sample reaches*, since an undrawn corner of the box could
still exclude it. The Wilson interval of :mod:`portopt.sweeps.robustness` bounds the share of
the draws that would.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from portopt.catalog import RANGED, Catalog, chokepoint_entity
from portopt.engine.philox import key_of_seed, uniforms


class Vary(NamedTuple):
    """A mode of ``portopt robustness`` in words, for the pages and the report."""

    drawn: str  # what the batches draw
    short: str  # the same in a few words, for a chart's title
    whatever: str  # what a core project is chosen whatever of


Mode = Literal["scenarios", "weights", "both"]
"""What a robustness batch varies: its scenarios only (the priorities at their point values),
its priorities only (the run's own optimisation scenarios), or both."""

VARY: dict[Mode, Vary] = {
    "scenarios": Vary(
        "independent scenario batches, with the chokepoint weights and gaps at their point values",
        "scenario batches",
        "the luck of the draw",
    ),
    "weights": Vary(
        "chokepoint weights and gaps drawn from their catalog ranges, on the run's own scenarios",
        "draws of the weights",
        "the weights",
    ),
    "both": Vary(
        "independent scenario batches, each with chokepoint weights and gaps drawn from their"
        " catalog ranges",
        "scenario batches with drawn weights",
        "the weights and the luck of the draw",
    ),
}
"""Each :data:`Mode` in words."""

PRIORITY_PURPOSE = 1
"""The Philox purpose of the priority draws in a chokepoint's counter (0 is its stress)."""


def vary_of(core_indices: pd.DataFrame) -> Vary:
    """The mode a core-index table was computed in: its ``vary`` column (``scenarios`` for a
    table without one, written before the modes existed)."""
    if "vary" not in core_indices or core_indices.empty:
        return VARY["scenarios"]
    return VARY[str(core_indices["vary"].iloc[0])]


def has_ranges(catalog: Catalog) -> bool:
    """Whether any chokepoint weight or gap has a range wider than its point."""
    return any(bool(np.any(lo < hi)) for lo, hi in map(catalog.chokepoint_range, RANGED))


def sample_priorities(catalog: Catalog, seed: int, batch: int) -> Catalog:
    """``catalog`` with batch ``batch``'s weights and gaps drawn from their ranges.

    The draws are those of the module docstring; only the ``weight`` and ``us_gap`` columns
    change, so the model reads the sampled priorities through the catalog as it reads the
    point values.
    """
    entities = np.array([chokepoint_entity(c) for c in catalog.chokepoint_ids], dtype=np.uint32)
    u, v = uniforms(batch, entities, 0, PRIORITY_PURPOSE, key_of_seed(seed))
    chokepoints = catalog.chokepoints.copy()
    for column, draw in (("weight", u), ("us_gap", v)):
        low, high = catalog.chokepoint_range(column)
        chokepoints[column] = low + draw * (high - low)
    return dataclasses.replace(catalog, chokepoints=chokepoints)


__all__ = ["PRIORITY_PURPOSE", "VARY", "Mode", "Vary", "has_ranges", "sample_priorities", "vary_of"]
