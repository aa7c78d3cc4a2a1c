"""Conditional value at risk, computed exactly from samples (the numbers the model re-checks)."""

from __future__ import annotations

import math

import numpy as np


def cvar(losses: np.ndarray, alpha: float, axis: int = 0) -> np.ndarray:
    """Upper-tail CVaR_alpha of equally likely ``losses`` (Rockafellar–Uryasev, exact).

    .. math::

        \\mathrm{CVaR}_\\alpha(L) = \\min_\\eta\\; \\eta + \\frac{1}{(1-\\alpha) S}
        \\sum_s (L_s - \\eta)_+ ,

    a convex piecewise-linear function of η whose minimum lies at the sample
    ``L_(⌈αS⌉)`` (the α-quantile), so evaluating it there is exact. This is the same quantity
    the model's linear constraint bounds, so a re-check compares like with like.
    """
    x = np.sort(np.asarray(losses, dtype=float), axis=axis)
    S = x.shape[axis]
    k = min(max(math.ceil(alpha * S) - 1, 0), S - 1)
    eta = np.take(x, [k], axis=axis)
    return np.squeeze(eta, axis) + np.maximum(x - eta, 0.0).sum(axis=axis) / ((1 - alpha) * S)


def lower_cvar(gains: np.ndarray, alpha: float, axis: int = 0) -> np.ndarray:
    """Lower-tail CVaR_alpha of ``gains``: the mean of the worst ``1 - alpha`` share."""
    return -cvar(-np.asarray(gains, dtype=float), alpha, axis=axis)
