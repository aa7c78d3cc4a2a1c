"""The NumPy engine's quarter, compiled by Numba: the same doubles in two passes over the cells.

:meth:`portopt.engine.numpy_engine._Quarterly.step` does a quarter in about a hundred NumPy
calls, each a pass over every active (project, scenario) cell, so the engine is bound by memory
traffic more than by arithmetic. :meth:`~portopt.engine.numpy_engine._Quarterly.step_compiled`
does the same quarter cell by cell, each cell's numbers in registers:

1. :func:`pre_step`: the cash available after tax and credits (docs/scenario-model.md, "Per
   quarter"), and the base and exponent of each senior loan's annuity factor;
2. NumPy: the annuity factor ``(1 + i) ** m`` (NumPy's ``power``, whose last bit depends on the
   CPU's vector unit: kept NumPy's, as every exponential is);
3. :func:`post_step`: the senior debt service and balance, the fund's place in the stack, the
   MOU waterfall, the discounted cash, the zero-balance count; :func:`portfolio_sums` with a
   portfolio.

What is per scenario is computed once per quarter before the passes. The market path is
:func:`market_uniforms` (its Philox words and uniforms) and :func:`market_step` (the factors,
the rate, inflation and coercion), around NumPy's Box-Muller normals; the prices of each price
group, gas, the yen and the deemed growth stay NumPy's. Each cell gets the NumPy
engine's operations in its order: sums, products, quotients and square roots are IEEE's
correctly rounded ones in both; maxima and minima take NumPy's rule (NaN from either side, the
second operand on a tie); Numba compiles without fast-math, so no multiply-add is fused. The
outputs equal the NumPy engine's bit for bit (tests/engine/test_engine_compiled.py, every
branch of the quarter). :func:`philox` is Philox4x32-10 on the same integers.

Speed, on the 2-core machine (bench/RESULTS.md, "The compiled quarter"): 2.2 times NumPy's on
one thread. The first run on a machine compiles the kernels (about 2 s) into Numba's cache next
to this file (or the user's cache folder); later runs load them. ``PORTOPT_NUMBA=0`` in the
environment runs the NumPy calls instead; :data:`AVAILABLE` is False then, or without Numba.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

try:  # Numba is a dependency; the engine still runs (slower) where it cannot be imported
    from numba import njit as _numba_jit

    AVAILABLE = os.environ.get("PORTOPT_NUMBA", "1") != "0"
except ImportError:  # pragma: no cover - numba is installed with portopt
    _numba_jit = None
    AVAILABLE = False

_JIT = {"nogil": True, "fastmath": False, "error_model": "numpy"}


def njit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` compiled by Numba (lazily, at its first call), its machine code cached on disk
    where Numba finds a writable folder (next to this file, else the user's cache folder), not
    cached where it finds none (a read-only install without a home folder: each process then
    compiles, about 2 s); ``fn`` itself without Numba."""
    if _numba_jit is None:  # pragma: no cover
        return fn
    try:
        return _numba_jit(cache=True, **_JIT)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return _numba_jit(cache=False, **_JIT)(fn)


@njit
def _max(a: float, b: float) -> float:
    """NumPy's ``maximum``: NaN from either side, the second operand on a tie (+0.0 vs -0.0)."""
    if a > b or a != a:
        return a
    return b


@njit
def _min(a: float, b: float) -> float:
    """NumPy's ``minimum``: NaN from either side, the second operand on a tie."""
    if a < b or a != a:
        return a
    return b


@njit
def pre_step(
    t: int,
    m: int,
    op_on: bool,
    online_on: bool,
    fail_on: bool,
    escalates: bool,
    fuels: bool,
    # the schedule, per cell
    comp: np.ndarray,
    op_last: np.ndarray,
    fq: np.ndarray,
    salvage: np.ndarray,
    scheduled: np.ndarray,
    bonus_amount: np.ndarray,
    itc_amount: np.ndarray,
    # per row
    senior_spread: np.ndarray,
    debt_pos: np.ndarray,
    tenor: np.ndarray,
    group: np.ndarray,
    unit: np.ndarray,
    opex_unit: np.ndarray,
    phi: np.ndarray,
    one_minus_phi: np.ndarray,
    floor: np.ndarray,
    offtake_q: np.ndarray,
    iota: np.ndarray,
    iota_floor: np.ndarray,
    iota_credit: np.ndarray,
    fuel: np.ndarray,
    one_minus_fuel: np.ndarray,
    dep_flat: np.ndarray,
    dep_width: int,
    dep_base: np.ndarray,
    ptc_unit: np.ndarray,
    credit_q: np.ndarray,
    ramp_quarters: int,
    nol_limit: float,
    tax_rate: float,
    # per scenario
    rate: np.ndarray,
    prices: np.ndarray,
    cpi: np.ndarray,
    gas: np.ndarray,
    # state
    senior: np.ndarray,
    nol: np.ndarray,
    pv_floor: np.ndarray,
    discount: np.ndarray,
    # out
    avail_out: np.ndarray,
    ramp_out: np.ndarray,
    base_out: np.ndarray,
    power_out: np.ndarray,
) -> None:
    """Quarter ``t`` of the first ``m`` rows up to the senior debt service
    (:meth:`~portopt.engine.numpy_engine._Quarterly.step` to ``_senior_paid``): the cash
    available (``avail_out``), the ramp (``ramp_out``, when ``online_on``: the quarter is in
    the strategic window) and, for each operating
    cell of a row with senior debt (``debt_pos[r] >= 0``, its row in ``base_out``), the base
    ``1 + i`` and exponent ``m`` of the annuity factor ``(1 + i) ** m``; updates ``nol`` and
    ``pv_floor`` (the offtake floor's top-up at the row's ``discount`` of quarter t) in place.
    ``op_on``: some row may operate; ``fail_on``: some row fails this quarter."""
    n = rate.shape[0]
    t1 = float(t + 1)
    for r in range(m):
        sp_r = senior_spread[r]
        g_r = group[r]
        dp = debt_pos[r]
        for j in range(n):
            c = comp[r, j]
            age = t - c
            operating = age >= 0 and op_last[r, j] >= t
            if dp >= 0 and operating:
                left = tenor[r] - age
                if left < 1:
                    left = 1
                base_out[dp, j] = (sp_r + rate[j]) * 0.25 + 1.0
                power_out[dp, j] = float(left)
            cfads = 0.0
            if op_on:
                ramp = (t1 - float(c)) / ramp_quarters
                ramp = _min(_max(ramp, 0.0), 1.0)
                ramp = ramp * (1.0 if operating else 0.0)
                if online_on:
                    ramp_out[r, j] = ramp
                if operating:
                    interest = senior[r, j] * ((sp_r + rate[j]) * 0.25)
                    price = prices[g_r, j]
                    fl = floor[r]
                    esc = 1.0
                    gi = 0.0
                    if escalates:
                        gi = cpi[j] - 1.0
                        esc = iota[r] * gi + 1.0
                        price = price * esc
                        fl = (iota_floor[r] * gi + 1.0) * floor[r]
                    floored = _max(price, fl)
                    if age >= offtake_q[r]:
                        floored = price
                    top = floored - price
                    top = top * phi[r]
                    floored = floored * phi[r]
                    price = price * one_minus_phi[r]
                    price = price + floored
                    rev = unit[r] * ramp
                    top = top * rev
                    pv_floor[r, j] = pv_floor[r, j] + discount[r] * top
                    rev = rev * price
                    ebitda = opex_unit[r] * ramp
                    if escalates or fuels:
                        om = one_minus_fuel[r] * esc if escalates else one_minus_fuel[r]
                        if fuels:
                            om = om + fuel[r] * gas[j]
                        ebitda = ebitda * om
                    ebitda = rev - ebitda
                    k = age >> 2
                    if k > dep_width:
                        k = dep_width
                    dep = scheduled[r, j] * dep_flat[k + dep_base[r]]
                    if age == 0:
                        dep = dep + bonus_amount[r, j]
                    taxable = ebitda - dep
                    taxable = taxable - interest
                    gain = _max(taxable, 0.0)
                    loss = _max(-taxable, 0.0)
                    use = _min(nol[r, j], nol_limit * gain)
                    nol[r, j] = (nol[r, j] + loss) - use
                    tax = (gain - use) * tax_rate
                    credit = ptc_unit[r] * ramp
                    if escalates:
                        credit = credit * (iota_credit[r] * gi + 1.0)
                    if age >= credit_q[r]:
                        credit = 0.0
                    if age == 0:
                        credit = credit + itc_amount[r, j]
                    cfads = ebitda - tax
                    cfads = cfads + credit
                    cfads = _max(cfads, 0.0)
            if fail_on and fq[r, j] == t:
                cfads = cfads + salvage[r, j]
            avail_out[r, j] = cfads


@njit
def post_step(
    t: int,
    m: int,
    building_on: bool,
    online_on: bool,
    fail_on: bool,
    stack_on: bool,
    accrues: bool,
    keep: bool,
    # the schedule, per cell
    comp: np.ndarray,
    op_last: np.ndarray,
    fq: np.ndarray,
    last_draw: np.ndarray,
    draw_amount: np.ndarray,
    debt_draw_amount: np.ndarray,
    end: np.ndarray,
    # per cell, from pre_step and NumPy's power
    avail: np.ndarray,
    ramp: np.ndarray,
    powered: np.ndarray,
    # per row
    q0: np.ndarray,
    senior_spread: np.ndarray,
    debt_pos: np.ndarray,
    tenor: np.ndarray,
    level_row: np.ndarray,
    spread_row: np.ndarray,
    fx_row: np.ndarray,
    d_t: np.ndarray,
    stack_code: np.ndarray,
    omega: np.ndarray,
    hurdle: np.ndarray,
    realloc_quarters: int,
    realloc_share: float,
    share_before: float,
    share_after: float,
    # per scenario, and per (group, scenario)
    rate: np.ndarray,
    growth_of: np.ndarray,
    dfx_of: np.ndarray,
    # state
    senior: np.ndarray,
    online: np.ndarray,
    stack_due: np.ndarray,
    stack_capital: np.ndarray,
    balance: np.ndarray,
    unpaid: np.ndarray,
    pv_japan: np.ndarray,
    pv_us: np.ndarray,
    pv_draw: np.ndarray,
    zero_quarters: np.ndarray,
    # out, per cell
    japan_out: np.ndarray,
    us_out: np.ndarray,
    draw_out: np.ndarray,
) -> None:
    """Quarter ``t`` of the first ``m`` rows from the senior debt service on
    (:meth:`~portopt.engine.numpy_engine._Quarterly._debt_service` and the rest of ``step``):
    every state array in place; Japan's and the US's cash and the draw of the quarter into
    ``japan_out``, ``us_out`` and ``draw_out`` (for the portfolio's sums). ``building_on``
    False: no row draws (the draws are 0.0, ``pv_draw`` is left alone); ``online_on``: the
    quarter is in the window and some row may operate; ``fail_on``: some row fails this
    quarter; ``stack_on``: some row is not pari passu; ``accrues``: ``unpaid`` is unused (the
    carried interest earns the deemed rate); ``keep``: write the ``*_out`` arrays (a portfolio's
    cash is summed)."""
    n = avail.shape[1]
    for r in range(m):
        after = t - q0[r] >= realloc_quarters
        share = realloc_share if after else share_before
        q0_r = q0[r]
        sp_r = senior_spread[r]
        dp = debt_pos[r]
        level_r = level_row[r]
        sr = spread_row[r]
        fr = fx_row[r]
        dr = d_t[r]
        stacked = stack_on and stack_code[r] != 0
        for j in range(n):
            b = senior[r, j]
            i = (sp_r + rate[j]) * 0.25
            interest = b * i
            cash = avail[r, j]
            paid_s = 0.0
            if dp >= 0:
                # the senior debt service (_debt_service) of a row with debt: interest plus
                # the annuity or level principal, everything in a failed project's last quarter
                age = t - comp[r, j]
                due = 0.0
                if age >= 0 and op_last[r, j] >= t:
                    left = tenor[r] - age
                    if left < 1:
                        left = 1
                    level = b / float(left)
                    principal = (b * i) / (powered[dp, j] - 1.0) if i > 0.0 else level
                    if level_r:
                        principal = level
                    due = interest + principal
                if fail_on and fq[r, j] == t:
                    due = b + interest
                paid_s = _min(cash, due)
            s = b + interest
            s = s - paid_s
            if building_on:
                bw = 1.0 if (t <= last_draw[r, j] and q0_r <= t) else 0.0
                dw = bw * draw_amount[r, j]
                dd = bw * debt_draw_amount[r, j]
            else:
                dw = 0.0
                dd = 0.0
            senior[r, j] = s + dd
            cash = cash - paid_s
            if online_on:
                online[r, j] = online[r, j] + ramp[r, j]
            if stacked:
                om = omega[r]
                h = hurdle[r]
                due = stack_due[r, j]
                capital = stack_capital[r, j]
                grown = due * h
                if stack_code[r] == 2:
                    due = grown + dw
                else:
                    due = grown + capital * (h - 1.0)
                    capital = capital + dw
                p = _min(cash / om, due)
                due = due - p
                rest = cash - om * p
                if stack_code[r] != 2:
                    capital = capital - _min(rest, capital)
                stack_due[r, j] = due
                stack_capital[r, j] = capital
                cash = cash + (1.0 - om) * p
            growth = growth_of[sr, j]
            if end[r, j] < t:
                growth = 1.0
            bal = balance[r, j]
            if accrues:
                bal = bal * growth
                bal = bal + dw
                owed = bal
                u = 0.0
            else:
                u = unpaid[r, j] + bal * (growth - 1.0)
                bal = bal + dw
                owed = bal + u
            paid = _min(share * cash, owed)
            japan = _max(cash - owed / share, 0.0)
            japan = japan * share_after
            japan = japan + paid
            if accrues:
                bal = bal - paid
            else:
                from_unpaid = _min(paid, u)
                u = u - from_unpaid
                bal = bal - (paid - from_unpaid)
                if paid >= owed:
                    bal = 0.0
                unpaid[r, j] = u
            balance[r, j] = bal
            us = cash - japan
            dfx = dfx_of[fr, j]
            pv_japan[r, j] = pv_japan[r, j] + dfx * japan
            pv_us[r, j] = pv_us[r, j] + dr * us
            if building_on:
                pv_draw[r, j] = pv_draw[r, j] + dfx * dw
            owed_now = bal if accrues else bal + u
            if owed_now <= 0.0:
                zero_quarters[r, j] += 1
            if keep:
                japan_out[r, j] = japan
                us_out[r, j] = us
                draw_out[r, j] = dw


@njit
def portfolio_sums(
    amount: np.ndarray,
    pos: np.ndarray,
    weights: np.ndarray,
    padded: bool,
    acc: np.ndarray,
    out: np.ndarray,
    col: int,
) -> None:
    """``out[:, col] = sum_k weights[k] amount[pos[k], :]``, the rows ``pos`` (catalog order)
    added one after the other (the NumPy engine's running row, in ``acc``), then ``+ 0.0``
    when ``padded`` (some row has ended: it turns a -0.0 into the +0.0 of the full sum)."""
    n = amount.shape[1]
    first = pos[0]
    w = weights[0]
    for j in range(n):
        acc[j] = amount[first, j] * w
    for k in range(1, pos.shape[0]):
        row = pos[k]
        w = weights[k]
        for j in range(n):
            acc[j] = acc[j] + amount[row, j] * w
    for j in range(n):
        out[j, col] = acc[j] + 0.0 if padded else acc[j]


_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@njit
def philox(
    x0: np.ndarray, x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, keys: np.ndarray
) -> None:
    """Philox4x32-10 in place on the counters ``x0 .. x3`` (1-d uint64 arrays holding 32-bit
    values), ``keys`` the (10, 2) uint64 round keys: :func:`portopt.engine.philox.philox_words`
    cell by cell (integer arithmetic, so the same words)."""
    for e in range(x0.shape[0]):
        x0[e], x1[e], x2[e], x3[e] = _rounds(x0[e], x1[e], x2[e], x3[e], keys)


@njit
def _rounds(
    a0: np.uint64, a1: np.uint64, a2: np.uint64, a3: np.uint64, keys: np.ndarray
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    """Philox4x32-10's ten rounds on one counter (32-bit words held in uint64)."""
    for rnd in range(10):
        p0 = a0 * _M0
        p1 = a2 * _M1
        a0 = (p1 >> _S32) ^ a1 ^ keys[rnd, 0]
        a2 = (p0 >> _S32) ^ a3 ^ keys[rnd, 1]
        a1 = p1 & _LO
        a3 = p0 & _LO
    return a0, a1, a2, a3


_TWO_M53 = 1.1102230246251565e-16  # 2^-53


@njit
def market_uniforms(
    scen: np.ndarray,
    entity: int,
    t: int,
    first: int,
    stop: int,
    keys: np.ndarray,
    ua: np.ndarray,
    ub: np.ndarray,
) -> None:
    """The market's uniforms of quarter ``t``: for each purpose ``p`` in ``[first, stop)`` and
    scenario ``e``, Philox4x32-10 of the counter ``(scen[e], entity, t, p)`` (``keys`` as in
    :func:`philox`), ``ua[p, e]`` from its words 0 and 1 and ``ub[p, e]`` from 2 and 3:
    :func:`portopt.engine.philox.philox_words` then ``uniforms_of_words``, cell by cell (the
    same integers, and the same exact conversion to doubles)."""
    for p in range(first, stop):
        for e in range(scen.shape[0]):
            a0, a1, a2, a3 = _rounds(scen[e], np.uint64(entity), np.uint64(t), np.uint64(p), keys)
            na = ((a0 >> np.uint64(5)) << np.uint64(26)) | (a1 >> np.uint64(6))
            nb = ((a2 >> np.uint64(5)) << np.uint64(26)) | (a3 >> np.uint64(6))
            ua[p, e] = (np.float64(na) + 0.5) * _TWO_M53
            ub[p, e] = (np.float64(nb) + 0.5) * _TWO_M53


@njit
def market_step(
    factors: bool,
    in_window: bool,
    za: np.ndarray,
    zb: np.ndarray,
    uc: np.ndarray,
    vc: np.ndarray,
    chol: np.ndarray,
    ou_a: np.ndarray,
    ou_b: np.ndarray,
    escalates: bool,
    infl_theta: float,
    infl_a: float,
    infl_b: float,
    infl_rho: float,
    infl_perp: float,
    sofr_theta: float,
    sofr_floor: float,
    p_start: float,
    p_end: float,
    jump: np.ndarray,
    x: np.ndarray,
    r: np.ndarray,
    infl: np.ndarray,
    cpi: np.ndarray,
    coerced: np.ndarray,
    episodes: np.ndarray,
    window: np.ndarray,
    rate: np.ndarray,
    log_price: np.ndarray,
) -> None:
    """One quarter of the market path, scenario by scenario: the NumPy engine's
    ``_Market.step`` after its normals (``za``, ``zb``: rows 0..3 of the Box-Muller pairs, so
    ``z_k`` is ``za[k // 2]`` for even k, ``zb[k // 2]`` for odd) and the coercion uniforms
    ``uc``, ``vc``, in its order of operations. ``factors`` False: the coercion state alone (the
    quarters past a chunk's last step, where only the episodes are still counted)."""
    nf = x.shape[0]
    for e in range(r.shape[0]):
        if factors:
            for j in range(nf + 1):
                v = chol[j, 0] * za[0, e]
                for k in range(1, j + 1):
                    zk = za[k // 2, e] if k % 2 == 0 else zb[k // 2, e]
                    v = v + chol[j, k] * zk
                if j < nf:
                    v = v * ou_b[j]
                    x[j, e] = x[j, e] * ou_a[j] + v
                else:
                    if escalates:
                        shock = infl_rho * v
                        shock = shock + infl_perp * zb[3, e]
                        shock = shock * infl_b
                        pi = infl[e] - infl_theta
                        pi = pi * infl_a
                        pi = pi + infl_theta
                        pi = pi + shock
                        infl[e] = pi
                        grow = pi * 0.25
                        grow = grow + 1.0
                        cpi[e] = cpi[e] * grow
                    v = v * ou_b[j]
                    rr = r[e] - sofr_theta
                    rr = rr * ou_a[j]
                    rr = rr + sofr_theta
                    r[e] = rr + v
        was = coerced[e]
        started = (not was) and (uc[e] < p_start)
        now = (vc[e] >= p_end) if was else started
        coerced[e] = now
        if started:
            episodes[e] += 1
        if in_window and now:
            window[e] = window[e] + 1.0
        if factors:
            rate[e] = _max(r[e], sofr_floor)
            jumped = 1.0 if now else 0.0
            for j in range(nf):
                log_price[j, e] = x[j, e] + jump[j] * jumped
