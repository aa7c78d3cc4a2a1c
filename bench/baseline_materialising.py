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

from portopt.engine.inputs import DELAY_CAP_QUARTERS, EngineInputs
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
    z = np.stack([za, zb], axis=-1).reshape(S, H, 8)[..., :7]
    ua, ub = uniforms_of_words(tuple(np.ascontiguousarray(x[..., 4]) for x in w))
    e = z @ inp.chol.T
    x = np.empty((S, H, 7))
    for k in range(6):
        x[..., k] = lfilter([inp.ou_b[k]], [1.0, -inp.ou_a[k]], e[..., k], axis=1)
    r0 = np.full((S, 1), inp.ou_a[6] * (inp.sofr_r0 - inp.sofr_theta))
    dev, _ = lfilter([inp.ou_b[6]], [1.0, -inp.ou_a[6]], e[..., 6], axis=1, zi=r0)
    rate = np.maximum(inp.sofr_theta + dev, inp.sofr_floor)
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
    build = inp.build_quarters + np.floor(np.minimum(dc, DELAY_CAP_QUARTERS)).astype(np.int64)
    failed = inp.sector_load * sector_f[:, inp.sector] + inp.sector_perp * pz2 < inp.fail_threshold
    comp = inp.q0 + build
    fq = inp.q0 + np.minimum(np.floor(pua * build).astype(np.int64), build - 1)
    last_draw = np.where(failed, fq, comp - 1)
    amount = overrun / build

    # every (scenario, project, quarter)
    tt = t[None, None, :]
    draw = np.where(
        (tt >= inp.q0[None, :, None]) & (tt <= last_draw[..., None]), amount[..., None], 0.0
    )
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
    phi, floor = inp.offtake_share[None, :, None], inp.offtake_floor[None, :, None]
    unit = inp.unit[None, :, None]
    rev = unit * ramp * ((1 - phi) * price + phi * np.maximum(price, floor))
    cash = np.maximum(rev - inp.opex_share[None, :, None] * unit * ramp, 0.0) * (1 - inp.tax_rate)
    salvage = inp.salvage_share * amount * (fq - inp.q0 + 1)
    cash = cash + np.where(failed[..., None] & (tt == fq[..., None]), salvage[..., None], 0.0)
    growth = 1 + (rate[:, None, :] + inp.spread[None, :, None]) / 4

    japan = np.empty((S, P, H))
    balance_path = np.empty((S, P, H))
    balance = np.zeros((S, P))
    for q in range(H):
        balance = balance * growth[:, :, q] + draw[:, :, q]
        half = 0.5 * cash[:, :, q]
        keep = (balance > 0) & (half <= balance)
        clear = (balance > 0) & ~keep
        japan[:, :, q] = np.where(
            keep,
            half,
            np.where(clear, balance + 0.1 * (cash[:, :, q] - 2 * balance), 0.1 * cash[:, :, q]),
        )
        balance = np.where(keep, balance - half, np.where(clear, 0.0, balance))
        balance_path[:, :, q] = balance
    us = cash - japan

    disc = inp.discount
    recouped = (tt >= last_draw[..., None]) & (balance_path <= 0)
    return {
        "pv_draw": (draw * disc).sum(axis=-1),
        "pv_japan": (japan * disc).sum(axis=-1),
        "pv_us": (us * disc).sum(axis=-1),
        "recoup_q": np.where(recouped.any(axis=-1), recouped.argmax(axis=-1), -1).astype(np.int32),
        "complete_q": np.where(failed, -1, comp).astype(np.int32),
        "online_share": ramp[:, :, inp.w0 : inp.w1 + 1].sum(axis=-1) / inp.window_len,
        "balance_end": balance_path[:, :, -1],
        "stress": stress,
        "coercion_share": share,
        "coercion_episodes": starts.sum(axis=1).astype(np.int32),
    }
