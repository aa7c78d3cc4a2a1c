"""The NumPy scenario engine: the reference implementation of docs/scenario-model.md.

It loops over quarters with (projects, scenarios) arrays, in scenario chunks sized to a memory
budget; nothing of shape scenarios × projects × quarters is ever built. Every operation that
feeds an output is elementwise, or an explicit accumulation in the order the model page gives
(no BLAS, no axis reductions), so each scenario's numbers are the same double whatever the chunk
it is computed in: bitwise invariant to chunking, batching and to the other projects in the
catalog. The CUDA kernel (``portopt/engine/cupy_engine.py``) reproduces this to 1e-9 relative.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

from portopt.engine.inputs import DELAY_CAP_QUARTERS, EngineInputs
from portopt.engine.philox import normals_of_words, philox_words, uniforms_of_words
from portopt.engine.scenario_set import CASH_FIELDS, PROJECT_FIELDS, SCENARIO_FIELDS, EngineResult
from portopt.engine.waterfall import waterfall_step
from portopt.errors import ScenarioError

_N_FACTORS = 6
_MARKET, _LABOUR, _SECTOR0 = 0, 1, 16
_N_SECTORS = 8
_PROJECT_ARRAYS = 32
"""Live (projects, chunk) 8-byte arrays at the engine's peak (the project draws), for sizing."""
_MAX_CHUNK = 2048
"""Upper bound on a chunk: past about 2,000 scenarios the (projects, chunk) arrays spill out of
the caches and throughput drops (measured: 1,024-2,048 best on the 2-core CI machine), so larger
chunks only cost memory."""


def chunk_size(inputs: EngineInputs, memory_mb: float, weighted: bool = False) -> int:
    """Scenarios per chunk so that the engine's working arrays fit in ``memory_mb``.

    Per scenario the engine holds about :data:`_PROJECT_ARRAYS` float64 values per project,
    its market state and Philox words (about 200 values), the chokepoints and, with a
    portfolio, three cash paths of ``H`` quarters.
    """
    per = 8 * (
        _PROJECT_ARRAYS * inputs.n_projects
        + 200
        + 8 * inputs.n_chokepoints
        + (3 * inputs.horizon if weighted else 0)
    )
    return int(max(1, min(_MAX_CHUNK, memory_mb * 2**20 // per)))


def run(
    inputs: EngineInputs,
    scenarios: range,
    weights: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int | None = None,
    memory_mb: float = 256.0,
    workers: int = 1,
) -> EngineResult:
    """Simulate ``scenarios`` (a range of scenario indices) for every project of ``inputs``.

    ``weights`` (fund dollars per project) adds per (scenario, quarter) portfolio cash;
    ``progress(done, total)`` is called after each chunk; ``chunk`` overrides the chunk size
    that ``memory_mb`` implies. ``workers > 1`` runs chunks on that many threads (NumPy releases
    the GIL inside its loops), sharing ``memory_mb`` between them; the numbers do not change.
    """
    if scenarios.step != 1:
        raise ScenarioError("scenarios must be a contiguous range (step 1)")
    if scenarios.start < 0 or scenarios.stop > 2**32:
        raise ScenarioError(f"scenario indices must lie in [0, 2^32), got {scenarios}")
    n, p, c, h = len(scenarios), inputs.n_projects, inputs.n_chokepoints, inputs.horizon
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (p,):
            raise ScenarioError(
                f"weights must have one entry per project ({p}), got shape {weights.shape}"
            )
    workers = max(1, int(workers))
    size = chunk or chunk_size(inputs, memory_mb / workers, weights is not None)
    out = EngineResult(
        project={k: np.empty((n, p), dtype=d) for k, d in PROJECT_FIELDS.items()},
        stress=np.empty((n, c), dtype=np.float64),
        scenario={k: np.empty(n, dtype=d) for k, d in SCENARIO_FIELDS.items()},
        cash={k: np.empty((n, h), dtype=np.float64) for k in CASH_FIELDS}
        if weights is not None
        else {},
    )
    bounds = [(lo, min(n, lo + size)) for lo in range(0, n, size)]

    def work(lo: int, hi: int) -> int:
        idx = np.arange(scenarios.start + lo, scenarios.start + hi, dtype=np.uint64)
        with np.errstate(all="ignore"):  # a NaN or inf is reported by check_finite instead
            _chunk(inputs, idx, weights, out, slice(lo, hi))
        return hi - lo

    done = 0
    if workers == 1 or len(bounds) == 1:
        for lo, hi in bounds:
            done += work(lo, hi)
            if progress is not None:
                progress(done, n)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in as_completed([pool.submit(work, lo, hi) for lo, hi in bounds]):
            done += future.result()
            if progress is not None:
                progress(done, n)
    return out


def _chunk(
    inp: EngineInputs,
    s: np.ndarray,
    weights: np.ndarray | None,
    out: EngineResult,
    rows: slice,
) -> None:
    """Simulate the scenarios ``s`` and write their outputs at ``rows`` of ``out``.

    Inside a chunk the per-(scenario, project) arrays are laid out (projects, scenarios), so a
    project's row is contiguous; outputs are transposed to (scenarios, projects) at the end.
    """
    n, h, key = s.shape[0], inp.horizon, inp.key

    # per-scenario draws at quarter 0: labour and backlog, sector factors, chokepoints
    ents = np.concatenate(
        [
            np.array([_LABOUR], dtype=np.uint64),
            np.arange(_SECTOR0, _SECTOR0 + _N_SECTORS, dtype=np.uint64),
            inp.chokepoint_entity.astype(np.uint64),
        ]
    )[:, None]
    z0, z1 = normals_of_words(philox_words(s[None, :], ents, 0, 0, key))
    labour = z0[0]
    backlog = np.maximum(inp.backlog_mean + inp.backlog_vol * z1[0], 0.0)
    sector_z = z0[1 : 1 + _N_SECTORS]
    choke_z = z0[1 + _N_SECTORS :]

    sched = _Schedule(inp, s, labour, backlog, sector_z)
    state = _Quarterly(inp, sched, n, weights)
    market = _Market(inp, s)
    for t in range(h):
        rate, log_price = market.step(t)
        state.step(t, rate, log_price, out, rows)

    share = market.in_window / inp.window_len
    out.scenario["coercion_share"][rows] = share
    out.scenario["coercion_episodes"][rows] = market.episodes
    # m_k = exp(sigma_m z0 - h) (1 + (u exposed_k) share)
    m = inp.stress_vol * choke_z
    m -= inp.stress_half_var
    np.exp(m, out=m)
    uplift = (inp.stress_uplift * inp.exposed)[:, None] * share[None, :]
    uplift += 1.0
    m *= uplift
    out.stress[rows] = m.T
    state.finish(out, rows)


class _Market:
    """The market path of a chunk of scenarios, advanced one quarter at a time."""

    def __init__(self, inp: EngineInputs, s: np.ndarray) -> None:
        n = s.shape[0]
        self.inp = inp
        self.scen = s[None, :]
        self.purposes = np.arange(5, dtype=np.uint64)[:, None]
        self.x = [np.zeros(n) for _ in range(_N_FACTORS)]
        self.r = np.full(n, inp.sofr_r0)
        self.coerced = np.zeros(n, dtype=bool)
        self.episodes = np.zeros(n, dtype=np.int32)
        self.in_window = np.zeros(n)

    def step(self, t: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Advance to quarter ``t``; returns ``rate[t]`` and the log prices ``x_k + J_k c``."""
        inp, L = self.inp, self.inp.chol
        # normals z[0..7] from purposes 0..3, coercion uniforms from purpose 4
        w = philox_words(self.scen, _MARKET, t, self.purposes, inp.key)
        za, zb = normals_of_words(tuple(wi[:4] for wi in w))
        z = (za[0], zb[0], za[1], zb[1], za[2], zb[2], za[3])
        ua, ub = uniforms_of_words(tuple(wi[4] for wi in w))
        for j in range(_N_FACTORS + 1):
            e = L[j, 0] * z[0]  # e_j = sum_k L[j, k] z_k, increasing k
            for k in range(1, j + 1):
                e += L[j, k] * z[k]
            e *= inp.ou_b[j]
            if j < _N_FACTORS:  # x = a x + b e
                xj = self.x[j]
                xj *= inp.ou_a[j]
                xj += e
            else:  # r = theta + a_r (r - theta) + b_r e
                r = self.r
                r -= inp.sofr_theta
                r *= inp.ou_a[j]
                r += inp.sofr_theta
                r += e
        started = ~self.coerced & (ua < inp.p_start)
        self.coerced = np.where(self.coerced, ub >= inp.p_end, started)
        self.episodes += started
        if inp.w0 <= t <= inp.w1:
            self.in_window += self.coerced
        rate = np.maximum(self.r, inp.sofr_floor)
        jumped = self.coerced.astype(np.float64)
        log_price = [xj + inp.jump[j] * jumped for j, xj in enumerate(self.x)]
        return rate, log_price


class _Schedule:
    """Overrun, delay, failure and the resulting schedule of every (project, scenario)."""

    def __init__(
        self,
        inp: EngineInputs,
        s: np.ndarray,
        labour: np.ndarray,
        backlog: np.ndarray,
        sector_z: np.ndarray,
    ) -> None:
        ent = inp.project_entity.astype(np.uint64)[None, :, None]
        purpose = np.arange(3, dtype=np.uint64)[:, None, None]
        w = philox_words(s[None, None, :], ent, 0, purpose, inp.key)
        z0, z1 = normals_of_words(tuple(wi[0] for wi in w))
        z2, _ = normals_of_words(tuple(wi[1] for wi in w))
        ua, _ = uniforms_of_words(tuple(wi[2] for wi in w))
        col = _column_of(inp)

        # M = (1 + med) exp(sigma_o (rho_ol L + sqrt(1 - rho_ol^2) z0))
        zeta = inp.overrun_labour_corr * labour[None, :]
        zeta = zeta + inp.overrun_labour_perp * z0
        zeta *= col("overrun_sigma")
        np.exp(zeta, out=zeta)
        overrun = col("overrun_median") + 1.0
        overrun = overrun * zeta

        # Dc = (dm mult) exp(vol z1 + (beta_L intensity) L) + B [backlog sector]
        expo = col("permit_vol") * z1
        expo += (inp.labour_delay_beta * inp.intensity)[:, None] * labour[None, :]
        np.exp(expo, out=expo)
        dc = (inp.delay_median * inp.permit_mult)[:, None] * expo
        dc += np.where(inp.backlog.astype(bool)[:, None], backlog[None, :], 0.0)
        np.minimum(dc, DELAY_CAP_QUARTERS, out=dc)
        delay = np.floor(dc).astype(np.int64)

        # X = sqrt(rho) F_sector + sqrt(1 - rho) z2 < Phi^-1(p)
        xf = inp.sector_load * sector_z[inp.sector]
        xf += inp.sector_perp * z2
        self.failed = xf < col("fail_threshold")

        build = inp.build_quarters[:, None] + delay  # T
        q0 = inp.q0.astype(np.int64)[:, None]
        self.comp = q0 + build
        fq = q0 + np.minimum(np.floor(ua * build).astype(np.int64), build - 1)
        self.draw_amount = overrun / build
        self.q0 = inp.q0
        self.last_draw = np.where(self.failed, fq, self.comp - 1)
        self.salvage = (inp.salvage_share * self.draw_amount) * (fq - q0 + 1)
        self.fq = np.where(self.failed, fq, -1)
        # operating quarters comp .. comp + life - 1, never for a failed project
        self.comp_f = self.comp.astype(np.float64)
        self.op_last = np.where(self.failed, -1, self.comp + inp.life_quarters[:, None] - 1)
        self.first_op = int(np.where(self.failed, np.iinfo(np.int64).max, self.comp).min())
        self.last_op = int(self.op_last.max())
        self.last_draw_max = int(self.last_draw.max())
        self.salvage_quarters = set(np.unique(self.fq[self.failed]).tolist())


def _column_of(inp: EngineInputs) -> Callable[[str], np.ndarray]:
    return lambda name: getattr(inp, name)[:, None]


def _price_groups(inp: EngineInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Distinct (factor, beta) pairs, and each project's pair.

    Projects sharing a factor and a beta have the same ``exp(beta y)``; computing it once per
    pair gives the same doubles with fewer exponentials. A project without a price factor gets
    ``exp(0 · y) = 1`` exactly. ``group`` is None when every project is its own pair, in order.
    """
    pairs_of = [
        (int(f), float(b)) if f >= 0 else (0, 0.0)
        for f, b in zip(inp.factor, inp.beta, strict=True)
    ]
    pairs = sorted(set(pairs_of))
    index = {pair: g for g, pair in enumerate(pairs)}
    group = np.array([index[pair] for pair in pairs_of], dtype=np.intp)
    factors = np.array([f for f, _ in pairs], dtype=np.intp)
    betas = np.array([b for _, b in pairs], dtype=np.float64)
    if np.array_equal(group, np.arange(len(pairs_of))):
        return factors, betas, None
    return factors, betas, group


class _Quarterly:
    """The per-(project, scenario) state carried through the quarters, and one quarter's step."""

    def __init__(
        self, inp: EngineInputs, sched: _Schedule, n: int, weights: np.ndarray | None
    ) -> None:
        p = inp.n_projects
        self.inp = inp
        self.sch = sched
        self.weights = weights
        self.balance = np.zeros((p, n))
        self.pv_draw = np.zeros((p, n))
        self.pv_japan = np.zeros((p, n))
        self.pv_us = np.zeros((p, n))
        self.online = np.zeros((p, n))
        self.zero_quarters = np.zeros((p, n), dtype=np.int32)
        self.unit = inp.unit[:, None]
        self.opex_unit = (inp.opex_share * inp.unit)[:, None]
        self.phi = inp.offtake_share[:, None]
        self.one_minus_phi = (1.0 - inp.offtake_share)[:, None]
        self.floor = inp.offtake_floor[:, None]
        self.one_minus_tax = 1.0 - inp.tax_rate
        self.factors, self.betas, self.group = _price_groups(inp)
        spreads, group = np.unique(inp.spread, return_inverse=True)
        self.spreads = spreads[:, None]
        same = np.array_equal(group, np.arange(group.size))
        self.spread_group = None if same else group
        self.y = np.empty((self.betas.size, n))

    def _prices(self, log_price: list[np.ndarray]) -> np.ndarray:
        """``Pb = exp(beta (x_k + J_k c))`` per (project, scenario)."""
        y = self.y
        for g in range(self.betas.size):
            np.multiply(log_price[self.factors[g]], self.betas[g], out=y[g])
        np.exp(y, out=y)
        return y.copy() if self.group is None else y[self.group]

    def _cash(self, t: int, log_price: list[np.ndarray]) -> tuple[np.ndarray | float, np.ndarray]:
        """Distributable cash of quarter ``t`` and the ramp (zeros when nothing operates)."""
        sch = self.sch
        if not sch.first_op <= t <= sch.last_op:
            return 0.0, None
        # ramp = min(1, (age + 1) / ramp_quarters) while operating (age + 1 <= 0 gives 0)
        ramp = float(t + 1) - sch.comp_f
        ramp /= self.inp.ramp_quarters
        np.clip(ramp, 0.0, 1.0, out=ramp)
        ramp *= t <= sch.op_last
        # rev = (unit ramp) ((1 - phi) Pb + phi max(Pb, f)); ebitda = rev - (o unit) ramp
        price = self._prices(log_price)
        floored = np.maximum(price, self.floor)
        floored *= self.phi
        price *= self.one_minus_phi
        price += floored
        rev = self.unit * ramp
        rev *= price
        np.multiply(self.opex_unit, ramp, out=floored)
        rev -= floored
        np.maximum(rev, 0.0, out=rev)
        rev *= self.one_minus_tax
        return rev, ramp

    def step(
        self,
        t: int,
        rate: np.ndarray,
        log_price: list[np.ndarray],
        out: EngineResult,
        rows: slice,
    ) -> None:
        inp, sch = self.inp, self.sch
        # draw = M / T in quarters q0 .. last draw quarter
        if t <= sch.last_draw_max:
            draw = (t <= sch.last_draw) & (sch.q0 <= t)[:, None]
            draw = draw * sch.draw_amount
        else:
            draw = 0.0
        cash, ramp = self._cash(t, log_price)
        if t in sch.salvage_quarters:
            if np.isscalar(cash):
                cash = np.zeros_like(self.balance)
            np.add(cash, sch.salvage, out=cash, where=sch.fq == t)
        if ramp is not None and inp.w0 <= t <= inp.w1:
            self.online += ramp

        # waterfall at the deemed rate: growth = 1 + (rate + spread) / 4
        growth = self.spreads + rate[None, :]
        growth *= 0.25
        growth += 1.0
        if self.spread_group is not None:
            growth = growth[self.spread_group]
        d = inp.discount[t]
        if np.isscalar(cash):  # nothing is paid out: the balance only accrues and draws
            self.balance *= growth
            self.balance += draw
            japan = us = None
        else:
            japan, us = waterfall_step(self.balance, cash, growth, draw)
            self.pv_japan += d * japan
            self.pv_us += d * us
        if not np.isscalar(draw):
            self.pv_draw += d * draw
        # Japan's balance is 0 before the first draw, positive from it to the last draw, and
        # stays 0 once cleared after it: counting its zero quarters gives the recoup quarter.
        self.zero_quarters += self.balance <= 0.0
        if self.weights is not None:
            self._portfolio(t, japan, us, draw, out, rows)

    def _portfolio(
        self,
        t: int,
        japan: np.ndarray | None,
        us: np.ndarray | None,
        draw: np.ndarray | float,
        out: EngineResult,
        rows: slice,
    ) -> None:
        """Portfolio cash of quarter ``t``: sum_i w_i amount_i in increasing i from 0."""
        w = self.weights
        for name, amount in zip(CASH_FIELDS, (japan, us, draw), strict=True):
            if amount is None or np.isscalar(amount):
                out.cash[name][rows, t] = 0.0
                continue
            acc = w[0] * amount[0]
            for i in range(1, w.size):
                acc += w[i] * amount[i]
            out.cash[name][rows, t] = acc

    def finish(self, out: EngineResult, rows: slice) -> None:
        inp, sch, pr = self.inp, self.sch, out.project
        pr["pv_draw"][rows] = self.pv_draw.T
        pr["pv_japan"][rows] = self.pv_japan.T
        pr["pv_us"][rows] = self.pv_us.T
        before = np.minimum(inp.q0, inp.horizon)[:, None]
        after = self.zero_quarters - before  # zero quarters from the recoup quarter to H - 1
        recoup = np.where(after > 0, inp.horizon - after, -1)
        pr["recoup_q"][rows] = recoup.T
        pr["complete_q"][rows] = np.where(sch.failed, -1, sch.comp).T
        pr["online_share"][rows] = (self.online / inp.window_len).T
        pr["balance_end"][rows] = self.balance.T
