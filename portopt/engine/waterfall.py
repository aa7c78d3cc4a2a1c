"""The MOU cash waterfall between Japan and the United States, one quarter at a time.

The order a project's cash is paid in (docs/scenario-model.md, "The financing stack"): taxes
(after depreciation, the loss carried forward and credits sold at their transfer price), then
**senior debt** service, then this split of what is left on the junior capital (the fund and
the sponsor's equity, pari passu).

Japan's balance :math:`J` (its Deemed Allocation Amount still owed, per fund dollar) grows at
the deemed rate, by the quarter's capital draw, and is paid down by Japan's share :math:`s_b`
(50%) of the distributable cash until it is cleared; afterwards Japan gets :math:`s_a` (10%):

.. math::
    J \\leftarrow J g_t + d_t, \\qquad
    j_t = \\begin{cases}
        s_b c_t                 & J > 0,\\ s_b c_t \\le J \\quad (J \\leftarrow J - s_b c_t)\\\\
        J + s_a (c_t - J / s_b) & J > 0,\\ s_b c_t > J \\quad (J \\leftarrow 0)\\\\
        s_a c_t                 & J \\le 0
    \\end{cases},
    \\qquad u_t = c_t - j_t ,

with :math:`g_t = 1 + (r_t + s)/4` (quarterly) or :math:`\\sqrt{1 + (r_t + s)/2}` (semi-annual,
the default) and :math:`g_t = 1` after the project's end, when a balance left is lost.
:func:`daa_schedule` is the MOU's own statement of the due per period (interest on the
outstanding amount plus straight-line principal), which this balance convention reproduces when
the cash is exactly twice the due (see docs/scenario-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def waterfall_step(
    balance: np.ndarray,
    cash: np.ndarray,
    growth: np.ndarray | float,
    draw: np.ndarray | float,
    share_before: np.ndarray | float = 0.5,
    share_after: float = 0.1,
    unpaid: np.ndarray | None = None,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Advance Japan's balance one quarter **in place** and return ``(japan, us)`` cash.

    ``balance`` is a float64 array (0-d for one project) updated to the balance after the
    payment; ``growth`` is the deemed rate's growth factor of the quarter; ``draw`` and ``cash``
    are the quarter's capital draw and distributable cash; ``share_before`` (``s_b``) and
    ``share_after`` (``s_a``) are Japan's splits until and after recovery. Requires
    ``balance >= 0`` and ``cash >= 0`` (always so in the model), under which the three cases
    are the single expression
    :math:`j = \\min(s_b c, J) + s_a \\max(c - J / s_b, 0)`,
    :math:`J \\leftarrow J - \\min(s_b c, J)`; every element gets the same operations, so the
    result is the same double whatever the array's shape.

    With ``unpaid`` (``deal.shortfall_accrues: false``) ``balance`` is the interest-bearing part
    :math:`P` and ``unpaid`` the deemed interest carried unpaid, :math:`U`, which earns none:
    :math:`U \\leftarrow U + P (g - 1)`, :math:`P \\leftarrow P + d`, :math:`J = P + U`, and
    a payment clears :math:`U` first. Both are updated in place.

    ``out``: three float64 arrays of ``cash``'s shape (2-d calls only) that receive Japan's
    payment on its claim, ``japan`` and ``us`` (the returned arrays), instead of new ones: the
    same operations, so the same doubles.
    """
    if balance.ndim == 0:  # one project: work on a 1-element view so every op stays an array
        carried = None if unpaid is None else unpaid.reshape(1)
        japan, us = _step(
            balance.reshape(1),
            np.reshape(cash, 1),
            growth,
            draw,
            share_before,
            share_after,
            carried,
        )
        return japan.reshape(()), us.reshape(())
    return _step(balance, np.asarray(cash), growth, draw, share_before, share_after, unpaid, out)


def _step(
    balance: np.ndarray,
    cash: np.ndarray,
    growth: np.ndarray | float,
    draw: np.ndarray | float,
    share_before: np.ndarray | float,
    share_after: float,
    unpaid: np.ndarray | None,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    # With J >= 0 and cash >= 0 the three branches are one expression:
    #   japan = min(s_b cash, J) + s_a max(cash - J / s_b, 0),  J = J - min(s_b cash, J)
    # (J / 0.5 is 2 J exactly), with no masks or branches.
    if unpaid is None:
        balance *= growth
        balance += draw
        owed = balance
    else:
        unpaid += balance * (growth - 1.0)
        balance += draw
        owed = balance + unpaid
    paid_out, japan_out, us_out = (None, None, None) if out is None else out
    paid = np.multiply(share_before, cash, out=paid_out)
    np.minimum(paid, owed, out=paid)
    japan = np.divide(owed, share_before, out=japan_out)
    np.subtract(cash, japan, out=japan)
    np.maximum(japan, 0.0, out=japan)
    japan *= share_after
    japan += paid
    if unpaid is None:
        balance -= paid
    else:  # the carried interest first; a cleared claim is exactly 0, with no rounding left
        from_unpaid = np.minimum(paid, unpaid)
        unpaid -= from_unpaid
        balance -= paid - from_unpaid
        np.copyto(balance, 0.0, where=paid >= owed)
    us = np.subtract(cash, japan, out=us_out)
    return japan, us


@dataclass(frozen=True)
class DaaSchedule:
    """The MOU's amortising Deemed Allocation Amount: one entry per period.

    ``outstanding`` is the principal at the start of the period, ``interest`` the deemed interest
    on it, ``principal`` the straight-line repayment, ``due = interest + principal``.
    """

    outstanding: np.ndarray
    interest: np.ndarray
    principal: np.ndarray
    due: np.ndarray


def daa_schedule(
    principal: float, annual_rate: float, years: int, periods_per_year: int = 1
) -> DaaSchedule:
    """The MOU's due per period: interest on the outstanding amount plus straight-line principal.

    .. math:: n = \\text{years} \\cdot \\text{periods}, \\quad
              P_k = P (1 - k/n), \\quad
              \\text{due}_k = P_k \\, r / \\text{periods} + P / n, \\quad k = 0 .. n-1

    $10B at 5.5% over 20 years owes $0.55B + $0.50B = $1.05B in the first year.
    """
    n = int(years) * int(periods_per_year)
    if n < 1:
        raise ValueError("years and periods_per_year must give at least one period")
    k = np.arange(n, dtype=np.float64)
    outstanding = principal * (1.0 - k / n)
    interest = outstanding * (annual_rate / periods_per_year)
    repay = np.full(n, principal / n)
    return DaaSchedule(outstanding, interest, repay, interest + repay)
