"""A plain, materialising NumPy implementation of docs/scenario-model.md: the benchmark baseline.

This is how the model reads when written the obvious way: draw every random number up front,
build every (scenario, project, quarter) array, filter the factor paths with ``lfilter``,
multiply the correlations in with a matrix product and reduce with ``sum``/``argmax``. It
computes the same numbers as ``portopt.engine.numpy_engine`` (to about 1e-12; summation
orders differ)
at a memory cost of several arrays of ``scenarios × projects × quarters`` doubles.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from portopt.engine.inputs import EngineInputs
from portopt.engine.philox import normals_of_words, philox_words, uniforms_of_words


def simulate(inputs: EngineInputs, scenarios: range) -> dict[str, np.ndarray]:
    """Every output of the model for ``scenarios``, as (scenarios, ...) arrays."""
    inp = inputs
    s = np.arange(scenarios.start, scenarios.stop, dtype=np.uint64)
    S, P, H = s.size, inp.n_projects, inp.horizon
    t = np.arange(H)

    # market: all draws at once, (S, H, purpose)
    w = philox_words(
        s[:, None, None],
        0,
        t[None, :, None].astype(np.uint64),
        np.arange(5, dtype=np.uint64)[None, None, :],
        inp.key,
    )
    za, zb = normals_of_words(tuple(np.ascontiguousarray(x[..., :4]) for x in w))
    z8 = np.stack([za, zb], axis=-1).reshape(S, H, 8)
    z = z8[..., :7]
    ua, ub = uniforms_of_words(tuple(np.ascontiguousarray(x[..., 4]) for x in w))
    e = z @ inp.chol.T
    x = np.empty((S, H, 7))
    for k in range(6):
        x[..., k] = lfilter([inp.ou_b[k]], [1.0, -inp.ou_a[k]], e[..., k], axis=1)
    r0 = np.full((S, 1), inp.ou_a[6] * (inp.sofr_r0 - inp.sofr_theta))
    dev, _ = lfilter([inp.ou_b[6]], [1.0, -inp.ou_a[6]], e[..., 6], axis=1, zi=r0)
    rate = np.maximum(inp.sofr_theta + dev, inp.sofr_floor)
    # inflation: pi - theta is OU on the shock b (rho e_6 + perp z_7); the CPI index compounds
    if inp.escalates:
        shock = inp.infl_b * (inp.infl_rho * e[..., 6] + inp.infl_perp * z8[..., 7])
        p0 = np.full((S, 1), inp.infl_a * (inp.infl_r0 - inp.infl_theta))
        pdev, _ = lfilter([1.0], [1.0, -inp.infl_a], shock, axis=1, zi=p0)
        cpi = np.cumprod(1.0 + (inp.infl_theta + pdev) / 4, axis=1)
    else:
        cpi = np.ones((S, H))
    c = np.zeros((S, H), dtype=bool)
    starts = np.zeros((S, H), dtype=bool)
    prev = np.zeros(S, dtype=bool)
    for q in range(H):
        starts[:, q] = ~prev & (ua[:, q] < inp.p_start)
        c[:, q] = np.where(prev, ub[:, q] >= inp.p_end, starts[:, q])
        prev = c[:, q]
    share = c[:, inp.w0 : inp.w1 + 1].sum(axis=1) / inp.window_len

    # per-scenario and per-project draws
    ents = np.concatenate([[1], np.arange(16, 24), inp.chokepoint_entity]).astype(np.uint64)
    z0, z1 = normals_of_words(philox_words(s[:, None], ents[None, :], 0, 0, inp.key))
    labour = z0[:, :1]
    backlog = np.maximum(inp.backlog_mean + inp.backlog_vol * z1[:, :1], 0.0)
    sector_f = z0[:, 1:9]
    stress = np.exp(inp.stress_vol * z0[:, 9:] - inp.stress_half_var) * (
        1 + inp.stress_uplift * inp.exposed * share[:, None]
    )
    pw = philox_words(
        s[:, None, None],
        inp.project_entity.astype(np.uint64)[None, :, None],
        0,
        np.arange(3, dtype=np.uint64)[None, None, :],
        inp.key,
    )
    pz0, pz1 = normals_of_words(tuple(np.ascontiguousarray(x[..., 0]) for x in pw))
    pz2, _ = normals_of_words(tuple(np.ascontiguousarray(x[..., 1]) for x in pw))
    pua, _ = uniforms_of_words(tuple(np.ascontiguousarray(x[..., 2]) for x in pw))

    zeta = inp.overrun_labour_corr * labour + inp.overrun_labour_perp * pz0
    overrun = (1 + inp.overrun_median) * np.exp(inp.overrun_sigma * zeta)
    dc = inp.delay_median * inp.permit_mult * np.exp(
        inp.permit_vol * pz1 + inp.labour_delay_beta * inp.intensity * labour
    ) + np.where(inp.backlog == 1, backlog, 0.0)
    build = inp.build_quarters + np.floor(np.minimum(dc, float(inp.max_delay))).astype(np.int64)
    failed = inp.sector_load * sector_f[:, inp.sector] + inp.sector_perp * pz2 < inp.fail_threshold
    comp = inp.q0 + build
    fq = inp.q0 + np.minimum(np.floor(pua * build).astype(np.int64), build - 1)
    last_draw = np.where(failed, fq, comp - 1)
    amount = overrun / build

    # every (scenario, project, quarter)
    tt = t[None, None, :]
    lev = inp.leverage[None, :, None]
    building = (tt >= inp.q0[None, :, None]) & (tt <= last_draw[..., None])
    draw = np.where(building, amount[..., None], 0.0)
    debt_draw = np.where(building, ((inp.leverage - 1.0) * amount)[..., None], 0.0)
    age = tt - comp[..., None]
    operating = ~failed[..., None] & (age >= 0) & (age < inp.life_quarters[None, :, None])
    ramp = np.where(operating, np.minimum(1.0, (age + 1) / inp.ramp_quarters), 0.0)
    log_price = x[..., :6] + inp.jump * c[..., None]
    factor = np.maximum(inp.factor, 0)
    price = np.where(
        (inp.factor >= 0)[None, :, None],
        np.exp(inp.beta[None, :, None] * log_price[:, :, factor].transpose(0, 2, 1)),
        1.0,
    )
    gi = (cpi - 1.0)[:, None, :]
    esc = 1.0 + inp.indexation[None, :, None] * gi
    price = price * esc
    phi = inp.offtake_share[None, :, None]
    floor = inp.offtake_floor[None, :, None] * (1.0 + inp.offtake_indexed[None, :, None] * gi)
    floored = np.where(age < inp.offtake_quarters[None, :, None], np.maximum(price, floor), price)
    unit = inp.unit[None, :, None]
    fuel = inp.fuel_share[None, :, None]
    gas = (np.exp(log_price[..., 1]) * cpi)[:, None, :]
    top = phi * (floored - price) * unit * ramp  # the floor's guarantor pays this
    ebitda = unit * ramp * ((1 - phi) * price + phi * floored) - inp.opex_share[
        None, :, None
    ] * unit * ramp * ((1 - fuel) * esc + fuel * gas)
    basis = (lev[..., 0] * overrun)[..., None]
    years = inp.dep_rates.shape[1]
    k = np.clip(age, 0, None) // 4
    rates = inp.dep_rates[inp.dep_row][None, :, :]
    dep_rate = np.where(
        k < years,
        np.take_along_axis(np.broadcast_to(rates, (S, P, years)), np.minimum(k, years - 1), 2),
        0.0,
    )
    bonus = inp.bonus_share[None, :, None]
    dep = np.where(age == 0, basis * bonus, 0.0) + basis * (1 - bonus) * dep_rate / 4
    credit = np.where(age == 0, inp.itc[None, :, None] * basis, 0.0) + np.where(
        age < inp.credit_quarters[None, :, None],
        inp.ptc_unit[None, :, None] * ramp * (1.0 + inp.credit_indexed[None, :, None] * gi),
        0.0,
    )
    salvage = inp.salvage_share * inp.leverage * amount * (fq - inp.q0 + 1)
    salvage_cash = np.where(failed[..., None] & (tt == fq[..., None]), salvage[..., None], 0.0)
    senior_i = (rate[:, None, :] + inp.senior_spread[None, :, None]) / 4
    add = rate[:, None, :] + inp.spread[None, :, None]
    growth = np.sqrt(1 + add / 2) if inp.semiannual else 1 + add / 4
    end = np.where(failed, fq, comp + inp.life_quarters - 1)
    growth = np.where(tt <= end[..., None], growth, 1.0)
    share_b = np.where(
        (tt - inp.q0[None, :, None]) >= inp.realloc_quarters, inp.realloc_share, inp.share_before
    )

    japan = np.empty((S, P, H))
    cash = np.empty((S, P, H))
    balance_path = np.empty((S, P, H))
    balance = np.zeros((S, P))
    claim = np.zeros((S, P))  # Japan's interest-bearing part when carried interest earns none
    unpaid = np.zeros((S, P))
    senior = np.zeros((S, P))
    nol = np.zeros((S, P))
    stack_due = np.zeros((S, P))
    stack_capital = np.zeros((S, P))
    senior_fund = inp.stack == 2
    omega, h = inp.fund_equity, inp.hurdle_growth
    for q in range(H):
        i = senior_i[:, :, q]
        interest = senior * i
        op = operating[:, :, q]
        taxable = ebitda[:, :, q] - dep[:, :, q] - interest
        use = np.minimum(nol, inp.nol_limit * np.maximum(taxable, 0))
        nol = np.where(op, nol + np.maximum(-taxable, 0) - use, nol)
        tax = inp.tax_rate * (np.maximum(taxable, 0) - use)
        avail = np.where(op, np.maximum(ebitda[:, :, q] - tax + credit[:, :, q], 0), 0)
        avail = avail + salvage_cash[:, :, q]
        m = np.maximum(inp.senior_tenor - age[:, :, q], 1)
        with np.errstate(all="ignore"):
            annuity = np.where(i > 0, senior * i / ((1 + i) ** m - 1), senior / m)
        principal = np.where(inp.annuity == 1, annuity, senior / m)
        due = np.where(op, interest + principal, 0.0)
        due = np.where(failed & (fq == q), senior + interest, due)
        paid = np.minimum(avail, due)
        senior = senior + interest - paid + debt_draw[:, :, q]
        cash[:, :, q] = avail - paid
        # the fund's priority over the sponsor: cash + (1 - omega) p, p = min(cash / omega, due)
        d = draw[:, :, q]
        due = np.where(senior_fund, stack_due * h + d, stack_due * h + stack_capital * (h - 1))
        stack_capital = np.where(senior_fund, stack_capital, stack_capital + d)
        pri = np.minimum(cash[:, :, q] / omega, due)
        rest = cash[:, :, q] - omega * pri
        stack_due = due - pri
        stack_capital = np.where(
            senior_fund, stack_capital, stack_capital - np.minimum(rest, stack_capital)
        )
        cash[:, :, q] = np.where(inp.stack != 0, cash[:, :, q] + (1 - omega) * pri, cash[:, :, q])
        if inp.shortfall_accrues:
            balance = balance * growth[:, :, q] + draw[:, :, q]
        else:  # J = claim + unpaid: deemed interest carried unpaid earns none
            unpaid = unpaid + claim * (growth[:, :, q] - 1)
            claim = claim + draw[:, :, q]
            balance = claim + unpaid
        sb = share_b[:, :, q] if share_b.ndim == 3 else share_b[0, :, q]
        part = sb * cash[:, :, q]
        keep = (balance > 0) & (part <= balance)
        clear = (balance > 0) & ~keep
        japan[:, :, q] = np.where(
            keep,
            part,
            np.where(
                clear,
                balance + inp.share_after * (cash[:, :, q] - balance / sb),
                inp.share_after * cash[:, :, q],
            ),
        )
        if not inp.shortfall_accrues:  # a payment clears the carried interest first
            paid_j = np.where(keep, part, np.where(clear, balance, 0.0))
            from_unpaid = np.minimum(paid_j, unpaid)
            unpaid = unpaid - from_unpaid
            claim = np.where(clear, 0.0, claim - (paid_j - from_unpaid))
        balance = np.where(keep, balance - part, np.where(clear, 0.0, balance))
        balance_path[:, :, q] = balance
    us = cash - japan

    disc = inp.discount[inp.funding][None, :, :]
    y = inp.yen_share[None, :, None]
    fx = np.exp(log_price[..., 5])[:, None, :]
    if inp.fx_parity:  # the yen-funded share at covered interest parity: swapped to dollars
        dfx = disc * (1 - y) + y * (inp.discount[3][None, None, :] * fx)
    else:
        dfx = disc * ((1 - y) + y * fx)
    recouped = (tt >= last_draw[..., None]) & (balance_path <= 0)
    return {
        "pv_draw": (draw * dfx).sum(axis=-1),
        "pv_japan": (japan * dfx).sum(axis=-1),
        "pv_us": (us * disc).sum(axis=-1),
        "pv_floor": (top * disc).sum(axis=-1),
        "recoup_q": np.where(recouped.any(axis=-1), recouped.argmax(axis=-1), -1).astype(np.int32),
        "complete_q": np.where(failed, -1, comp).astype(np.int32),
        "online_share": ramp[:, :, inp.w0 : inp.w1 + 1].sum(axis=-1) / inp.window_len,
        "balance_end": balance_path[:, :, -1],
        "stress": stress,
        "coercion_share": share,
        "coercion_episodes": starts.sum(axis=1).astype(np.int32),
    }
