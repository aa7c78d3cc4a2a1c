"""The NumPy scenario engine: the reference implementation of docs/scenario-model.md.

It loops over quarters with (projects, scenarios) arrays, in scenario chunks sized to a memory
budget; nothing of shape scenarios × projects × quarters is ever built. Inside a chunk the rows
are sorted by their last active quarter so that each quarter steps only the prefix of rows
still active (docs/scenario-model.md, "Start options (common random numbers) and the active
rows"), into scratch arrays allocated once per chunk. Every operation that
feeds an output is elementwise, or an explicit accumulation in the order the model page gives
(no BLAS, no axis reductions), so each scenario's numbers are the same double whatever the chunk
it is computed in: bitwise invariant to chunking, batching and to the other projects in the
catalog. The CUDA kernel (``portopt/engine/cupy_engine.py``) reproduces this to 1e-9 relative.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from types import SimpleNamespace

import numpy as np

from portopt.config import SCENARIO_INDICES
from portopt.engine import compiled as _compiled
from portopt.engine.inputs import EngineInputs
from portopt.engine.philox import (
    box_muller,
    normals_of_words,
    philox_words,
    round_keys,
    uniforms_of_words,
)
from portopt.engine.scenario_set import CASH_FIELDS, PROJECT_FIELDS, SCENARIO_FIELDS, EngineResult
from portopt.engine.waterfall import waterfall_step
from portopt.errors import ScenarioError

_N_FACTORS = 6
_USDJPY = 5
"""Index of the USD/JPY log factor (``config.FACTORS``)."""
_GAS = 1
"""Index of the gas log factor (``config.FACTORS``): the fuel of fuel-burning rows."""
_MARKET, _LABOUR, _SECTOR0 = 0, 1, 16
_N_SECTORS = 8
PROJECT_ARRAYS = 52
"""Live (projects, chunk) 8-byte arrays at the engine's peak (the project draws, and the
scratch of nominal escalation and fuel), for sizing."""
MAX_CELLS = 300_000
"""Upper bound on a chunk's (project, scenario) cells, the length of each working array. Past
it the arrays spill out of the caches; far below it NumPy's per-call cost dominates, above all
in the late quarters where only the longest-lived rows are still stepped. Measured on the
2-core machine, 2 threads (bench/RESULTS.md, issue 17): the plan's 589 engine columns over
2,000 scenarios took 6.1, 5.6, 5.35 and 5.8 s at 250, 334, 500 and 1,000 scenarios a chunk
(500: 295,000 cells); 44 projects over 20,000 scenarios with cash paths 8.0 s at 2,048 a chunk
(90,000 cells), 7.1 s at 3,334 and 6.1 s at 5,000. The cap was 2,048 scenarios before,
whatever the projects; ``chunk_memory_mb`` still bounds the chunk first."""


def chunk_size(inputs: EngineInputs, memory_mb: float, weighted: bool = False) -> int:
    """Scenarios per chunk so that the engine's working arrays fit in ``memory_mb``.

    Per scenario the engine holds about :data:`PROJECT_ARRAYS` float64 values per project,
    its market state and Philox words (about 200 values), the chokepoints and, with a
    portfolio, three cash paths of ``H`` quarters.
    """
    per = 8 * (
        PROJECT_ARRAYS * inputs.n_projects
        + 200
        + 8 * inputs.n_chokepoints
        + (3 * inputs.horizon if weighted else 0)
    )
    cap = max(1, MAX_CELLS // max(1, inputs.n_projects))
    return int(max(1, min(cap, memory_mb * 2**20 // per)))


def run(
    inputs: EngineInputs,
    scenarios: range,
    weights: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int | None = None,
    memory_mb: float = 256.0,
    workers: int = 1,
    compiled: bool | None = None,
) -> EngineResult:
    """Simulate ``scenarios`` (a range of scenario indices) for every project of ``inputs``.

    ``weights`` (fund dollars per project) adds per (scenario, quarter) portfolio cash;
    ``progress(done, total)`` is called after each chunk; ``chunk`` overrides the chunk size
    that ``memory_mb`` implies. ``workers > 1`` runs chunks on that many threads (NumPy releases
    the GIL inside its loops), sharing ``memory_mb`` between them; the numbers do not change.
    ``compiled``: step the quarters with the Numba kernels of :mod:`portopt.engine.compiled`
    (the same doubles; None: when Numba is available).
    """
    if scenarios.step != 1:
        raise ScenarioError("scenarios must be a contiguous range (step 1)")
    if scenarios.start < 0 or scenarios.stop > SCENARIO_INDICES:
        raise ScenarioError(f"scenario indices must lie in [0, 2^32), got {scenarios}")
    n, p, c, h = len(scenarios), inputs.n_projects, inputs.n_chokepoints, inputs.horizon
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (p,):
            raise ScenarioError(
                f"weights must have one entry per project ({p}), got shape {weights.shape}"
            )
    workers = max(1, int(workers))
    compiled = _compiled.AVAILABLE if compiled is None else bool(compiled)
    size = chunk or chunk_size(inputs, memory_mb / workers, weights is not None)
    if chunk is None and workers > 1 and n > 0:
        # a multiple of `workers` chunks of equal size, so every thread has the same work
        # (2,000 scenarios of 92 projects fit one chunk, which would leave a core idle)
        count = -(-n // size)
        count = -(-count // workers) * workers
        size = max(1, -(-n // count))
    out = EngineResult(
        project={k: np.empty((n, p), dtype=d) for k, d in PROJECT_FIELDS.items()},
        stress=np.empty((n, c), dtype=np.float64),
        scenario={k: np.empty(n, dtype=d) for k, d in SCENARIO_FIELDS.items()},
        cash={k: np.empty((n, h), dtype=np.float64) for k in CASH_FIELDS}
        if weights is not None
        else {},
    )
    bounds = [(lo, min(n, lo + size)) for lo in range(0, n, size)]
    halt = threading.Event()

    def work(lo: int, hi: int) -> int:
        idx = np.arange(scenarios.start + lo, scenarios.start + hi, dtype=np.uint64)
        with np.errstate(all="ignore"):  # a NaN or inf is reported by check_finite instead
            _chunk(inputs, idx, weights, out, slice(lo, hi), halt, compiled)
        return hi - lo

    done = 0
    if workers == 1 or len(bounds) == 1:
        for lo, hi in bounds:
            done += work(lo, hi)
            if progress is not None:
                progress(done, n)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(work, lo, hi) for lo, hi in bounds]
        try:
            for future in as_completed(futures):
                done += future.result()
                if progress is not None:
                    progress(done, n)
        except BaseException:
            # Ctrl-C (or a failed chunk): drop the queued chunks and stop the running ones at
            # their next quarter, instead of finishing every chunk before the pool closes
            halt.set()
            for future in futures:
                future.cancel()
            raise
    return out


def _chunk(
    inp: EngineInputs,
    s: np.ndarray,
    weights: np.ndarray | None,
    out: EngineResult,
    rows: slice,
    halt: threading.Event | None = None,
    compiled: bool = False,
) -> None:
    """Simulate the scenarios ``s`` and write their outputs at ``rows`` of ``out``; when
    ``halt`` is set, raise :class:`_Stopped` at the next quarter. ``compiled``: each quarter
    by the Numba kernels (:meth:`_Quarterly.step_compiled`, the same doubles).

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
    # A project row is active until its last draw or its end, whichever is later, in any of the
    # chunk's scenarios; past it every amount it adds is exactly 0.0 and its state is frozen.
    # Rows sorted by that quarter, latest first (stable), make the active rows of quarter t a
    # prefix [:m(t)] of the arrays, so each quarter computes only those (views, no copies).
    last = np.maximum(sched.end, sched.last_draw).max(axis=1)
    row_stop = np.minimum(h, last + 1)  # a row is stepped in quarters t < row_stop
    order = np.argsort(-row_stop, kind="stable")
    sched.permute(order)
    state = _Quarterly(inp.subset(order), sched, n, weights, order)
    step = state.step_compiled if compiled else state.step
    market = _Market(inp, s, compiled)
    ranked = row_stop[order]
    stop = int(ranked[0]) if ranked.size else 0
    for t in range(h):
        if halt is not None and halt.is_set():
            raise _Stopped
        if t >= stop:  # no row is stepped: only the coercion episodes are still counted
            market.coerce(t)
            continue
        rate, log_price = market.step(t)
        state.cpi = market.cpi
        step(t, int(np.searchsorted(-ranked, -t, side="left")), rate, log_price, out, rows)
    for name in out.cash:
        out.cash[name][rows, stop:] = 0.0
    state.freeze(h - ranked)

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


class _Stopped(Exception):
    """A chunk abandoned because the run is stopping (its caller raises the real cause)."""


class _Market:
    """The market path of a chunk of scenarios, advanced one quarter at a time."""

    def __init__(self, inp: EngineInputs, s: np.ndarray, compiled: bool = False) -> None:
        n = s.shape[0]
        self.inp = inp
        self.scen = s[None, :]
        self.purposes = np.arange(5, dtype=np.uint64)[:, None]
        self.compiled = compiled
        if compiled:  # the kernels' arrays: the factors one row each, the quarter's outputs
            self.keys = round_keys(inp.key)
            self.words = np.ascontiguousarray(s, dtype=np.uint64)
            self.ua, self.ub = np.empty((5, n)), np.empty((5, n))
            self.rate, self.log_price = np.empty(n), np.empty((_N_FACTORS, n))
        self.x = np.zeros((_N_FACTORS, n)) if compiled else [np.zeros(n) for _ in range(_N_FACTORS)]
        self.r = np.full(n, inp.sofr_r0)
        self.infl = np.full(n, inp.infl_r0)
        self.cpi = np.ones(n)
        self.coerced = np.zeros(n, dtype=bool)
        self.episodes = np.zeros(n, dtype=np.int32)
        self.in_window = np.zeros(n)

    def step(self, t: int) -> tuple[np.ndarray, list[np.ndarray] | np.ndarray]:
        """Advance to quarter ``t``; returns ``rate[t]`` and the log prices ``x_k + J_k c``
        (the CPI index of quarter t is then :attr:`cpi`)."""
        if self.compiled:
            return self._step_compiled(t, True)
        inp, L = self.inp, self.inp.chol
        # normals z[0..7] from purposes 0..3, coercion uniforms from purpose 4
        w = philox_words(self.scen, _MARKET, t, self.purposes, inp.key)
        za, zb = normals_of_words(tuple(wi[:4] for wi in w))
        z = (za[0], zb[0], za[1], zb[1], za[2], zb[2], za[3], zb[3])
        ua, ub = uniforms_of_words(tuple(wi[4] for wi in w))
        for j in range(_N_FACTORS + 1):
            e = L[j, 0] * z[0]  # e_j = sum_k L[j, k] z_k, increasing k
            for k in range(1, j + 1):
                e += L[j, k] * z[k]
            if j < _N_FACTORS:  # x = a x + b e
                e *= inp.ou_b[j]
                xj = self.x[j]
                xj *= inp.ou_a[j]
                xj += e
            else:  # r = theta + a_r (r - theta) + b_r e
                if inp.escalates:
                    # inflation: pi = ((pi - theta) a + theta) + b (rho e_6 + perp z_7)
                    shock = inp.infl_rho * e
                    shock += inp.infl_perp * z[7]
                    shock *= inp.infl_b
                    pi = self.infl
                    pi -= inp.infl_theta
                    pi *= inp.infl_a
                    pi += inp.infl_theta
                    pi += shock
                    # the index I[t] = I[t-1] (pi 0.25 + 1)
                    grow = pi * 0.25
                    grow += 1.0
                    self.cpi *= grow
                e *= inp.ou_b[j]
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

    def coerce(self, t: int) -> None:
        """Advance the coercion state alone to quarter ``t`` (its episodes and window share):
        past a chunk's last step nothing else of the market is read. The same draws as
        :meth:`step` (purpose 4 of the quarter's counters), so the same counts."""
        if self.compiled:
            self._step_compiled(t, False)
            return
        inp = self.inp
        ua, ub = uniforms_of_words(philox_words(self.scen[0], _MARKET, t, 4, inp.key))
        started = ~self.coerced & (ua < inp.p_start)
        self.coerced = np.where(self.coerced, ub >= inp.p_end, started)
        self.episodes += started
        if inp.w0 <= t <= inp.w1:
            self.in_window += self.coerced

    def _step_compiled(self, t: int, factors: bool) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`step` (``factors`` False: :meth:`coerce`) by the kernels of
        :mod:`portopt.engine.compiled`: the words and uniforms, NumPy's normals (as
        :func:`~portopt.engine.philox.normals_of_words` makes them: the same calls on the same
        (4, n) arrays), then the factors and the coercion cell by cell; the same doubles."""
        inp, ua, ub = self.inp, self.ua, self.ub
        first = 0 if factors else 4
        _compiled.market_uniforms(self.words, _MARKET, t, first, 5, self.keys, ua, ub)
        za, zb = box_muller(ua[:4], ub[:4]) if factors else (ua[:4], ub[:4])
        _compiled.market_step(
            factors, inp.w0 <= t <= inp.w1, za, zb, ua[4], ub[4],
            inp.chol, inp.ou_a, inp.ou_b, bool(inp.escalates), inp.infl_theta, inp.infl_a,
            inp.infl_b, inp.infl_rho, inp.infl_perp, inp.sofr_theta, inp.sofr_floor,
            inp.p_start, inp.p_end, inp.jump,
            self.x, self.r, self.infl, self.cpi, self.coerced, self.episodes, self.in_window,
            self.rate, self.log_price,
        )  # fmt: skip
        return self.rate, self.log_price


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
        np.minimum(dc, float(inp.max_delay), out=dc)
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
        lev = inp.leverage[:, None]
        self.debt_draw = (lev - 1.0) * self.draw_amount
        self.salvage = ((inp.salvage_share * lev) * self.draw_amount) * (fq - q0 + 1)
        self.fq = np.where(self.failed, fq, -1)
        # operating quarters comp .. comp + life - 1, never for a failed project
        self.comp_f = self.comp.astype(np.float64)
        self.op_last = np.where(self.failed, -1, self.comp + inp.life_quarters[:, None] - 1)
        self.end = np.where(self.failed, fq, self.op_last)  # Japan's claim is lost after it
        self.first_op = int(np.where(self.failed, np.iinfo(np.int64).max, self.comp).min())
        self.last_op = int(self.op_last.max())
        self.last_draw_max = int(self.last_draw.max())
        self.salvage_quarters = set(np.unique(self.fq[self.failed]).tolist())
        # tax basis lambda M, expensed share b at once, the rest by the schedule's rates
        basis = lev * overrun
        self.bonus_amount = basis * inp.bonus_share[:, None]
        self.scheduled = basis * (1.0 - inp.bonus_share)[:, None]
        self.itc_amount = inp.itc[:, None] * basis

    def permute(self, order: np.ndarray) -> None:
        """Reorder every per-project array's rows to ``order`` (the quarter bounds stay)."""
        p = order.size
        for name, value in list(vars(self).items()):
            if isinstance(value, np.ndarray) and value.shape[:1] == (p,):
                setattr(self, name, value[order])

    def prefix(self, m: int) -> SimpleNamespace:
        """The schedule of the first ``m`` rows: views of the per-project arrays."""
        p = self.q0.shape[0]
        return SimpleNamespace(
            **{
                name: value[:m]
                if isinstance(value, np.ndarray) and value.shape[:1] == (p,)
                else value
                for name, value in vars(self).items()
            }
        )


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


_ROW_ARRAYS = (
    "balance",
    "unpaid",
    "senior",
    "nol",
    "pv_draw",
    "pv_japan",
    "pv_us",
    "pv_floor",
    "online",
    "zero_quarters",
    "unit",
    "opex_unit",
    "phi",
    "one_minus_phi",
    "floor",
    "offtake_q",
    "group",
    "senior_spread",
    "tenor",
    "level",
    "dep_base",
    "ptc_unit",
    "credit_q",
    "discount",
    "spread_row",
    "fx_row",
    "iota",
    "iota_floor",
    "iota_credit",
    "fuel",
    "one_minus_fuel",
)
"""The :class:`_Quarterly` arrays with one row per project (state and constants), narrowed to
the active prefix of the rows each quarter."""


class _Quarterly:
    """The per-(project, scenario) state carried through the quarters, and one quarter's step
    (docs/scenario-model.md, "Per quarter", in that order).

    Its rows are the projects in the order ``order`` (catalog positions; latest last active
    quarter first), so that a quarter's active rows are a prefix; :meth:`step` works on views
    of that prefix and :meth:`finish` writes the outputs back in catalog order.
    """

    def __init__(
        self,
        inp: EngineInputs,
        sched: _Schedule,
        n: int,
        weights: np.ndarray | None,
        order: np.ndarray,
    ) -> None:
        p = inp.n_projects
        self.inp = inp
        self.full_sch = sched
        self.sch: _Schedule | SimpleNamespace = sched
        self.weights = weights
        self.order = order
        self.inv = np.argsort(order)
        self.m = p
        self._cat: tuple[np.ndarray, np.ndarray] | None = None
        self.balance = np.zeros((p, n))
        # with shortfall_accrues off, balance is the interest-bearing part, unpaid the rest
        self.unpaid = None if inp.shortfall_accrues else np.zeros((p, n))
        self.senior = np.zeros((p, n))
        self.nol = np.zeros((p, n))
        self.pv_draw = np.zeros((p, n))
        self.pv_japan = np.zeros((p, n))
        self.pv_us = np.zeros((p, n))
        self.pv_floor = np.zeros((p, n))
        self.online = np.zeros((p, n))
        self.zero_quarters = np.zeros((p, n), dtype=np.int32)
        self.unit = inp.unit[:, None]
        self.opex_unit = (inp.opex_share * inp.unit)[:, None]
        self.phi = inp.offtake_share[:, None]
        self.one_minus_phi = (1.0 - inp.offtake_share)[:, None]
        self.floor = inp.offtake_floor[:, None]
        self.offtake_q = inp.offtake_quarters[:, None]
        self.factors, self.betas, self.group = _price_groups(inp)
        self.senior_spread = inp.senior_spread[:, None]
        self.tenor = inp.senior_tenor[:, None]
        self.level = ~inp.annuity.astype(bool)[:, None]
        # quarterly rate per tax year, flat, with a 0.0 after each table: row r's rate of tax
        # year k is dep_flat[dep_base_r + min(k, dep_width)]
        width = inp.dep_rates.shape[1]
        table = np.zeros((inp.dep_rates.shape[0], width + 1))
        table[:, :width] = inp.dep_rates * 0.25
        self.dep_flat = table.ravel()
        self.dep_width = width
        self.dep_base = (inp.dep_row.astype(np.int64) * (width + 1))[:, None]
        self.ptc_unit = inp.ptc_unit[:, None]
        self.credit_q = inp.credit_quarters[:, None]
        self.discount = inp.discount[inp.funding]
        self.y = np.empty((self.betas.size, n))
        self.balance_shape = (p, n)
        values, row = np.unique(inp.spread, return_inverse=True)
        self.spread_values, self.spread_row = values[:, None], row.reshape(-1).astype(np.intp)
        self.spread_growth = np.empty((values.size, n))
        pairs = sorted(set(zip(inp.funding.tolist(), inp.yen_share.tolist(), strict=True)))
        where = {pair: k for k, pair in enumerate(pairs)}
        self.fx_row = np.array(
            [
                where[pair]
                for pair in zip(inp.funding.tolist(), inp.yen_share.tolist(), strict=True)
            ],
            dtype=np.intp,
        )
        yen = np.array([y for _, y in pairs], dtype=np.float64)
        self.fx_yen = yen[:, None]
        self.fx_one_minus_yen = (1.0 - yen)[:, None]
        self.fx_discount = inp.discount[[f for f, _ in pairs]]
        self.fx_values = np.empty((len(pairs), n))
        # nominal money: escalation by CPI (skipped, as x 1.0, when the index is 1 throughout)
        self.escalates = bool(inp.escalates)
        self.cpi = np.ones(n)
        self.iota = inp.indexation[:, None]
        self.iota_floor = inp.offtake_indexed[:, None]
        self.iota_credit = inp.credit_indexed[:, None]
        self.fuels = bool((inp.fuel_share != 0.0).any())
        self.fuel = inp.fuel_share[:, None]
        self.one_minus_fuel = (1.0 - inp.fuel_share)[:, None]
        # the fund's place in the stack: only rows not pari passu carry a priority account
        self.has_stack = inp.stack != 0
        self.stack_rows = np.flatnonzero(self.has_stack)
        self.stack_code = inp.stack
        # senior: a; preferred: the unpaid preferred return u and the capital not returned k
        shape = (p, n) if self.stack_rows.size else (0, n)
        self.stack_due = np.zeros(shape)
        self.stack_capital = np.zeros(shape)
        self.hurdle = inp.hurdle_growth
        self.omega = inp.fund_equity
        self.parity = bool(inp.fx_parity)
        if self.parity:
            self.fx_parity_discount = inp.discount[3:4]
        self.full = {name: getattr(self, name) for name in _ROW_ARRAYS}
        self.scratch: dict[str, np.ndarray] = {}
        # a project without senior debt (leverage 1) keeps a senior balance of exactly +0.0,
        # its debt service due is +0.0 and what it pays min(avail, +0.0) = +0.0 (avail is
        # never -0.0): only the rows with debt need the annuity arithmetic
        self.has_debt = inp.leverage != 1.0
        self.debt_rows = np.flatnonzero(self.has_debt)
        self._kernel: SimpleNamespace | None = None

    def _narrow(self, m: int) -> None:
        """Point every per-project array (and the schedule) at its first ``m`` rows."""
        for name, value in self.full.items():
            setattr(self, name, None if value is None else value[:m])
        self.sch = self.full_sch.prefix(m)
        self.m = m
        self._cat = None
        self.debt_rows = np.flatnonzero(self.has_debt[:m])
        self.stack_rows = np.flatnonzero(self.has_stack[:m])

    def _group_prices(self, log_price: list[np.ndarray]) -> np.ndarray:
        """``exp(beta (x_k + J_k c))`` of each price group (the rows' pairs of factor and
        beta), the first rows of :attr:`y` (the active prefix's without groups)."""
        # without groups row g is group g, so the active prefix needs the first m only
        used = self.m if self.group is None else self.betas.size
        y = self.y[:used]
        for g in range(used):
            np.multiply(log_price[self.factors[g]], self.betas[g], out=y[g])
        np.exp(y, out=y)
        return y

    def _prices(self, log_price: list[np.ndarray], out: np.ndarray) -> np.ndarray:
        """``Pb = exp(beta (x_k + J_k c))`` per (project, scenario), into ``out``."""
        y = self._group_prices(log_price)
        if self.group is None:
            np.copyto(out, y)
            return out
        return np.take(y, self.group, axis=0, out=out)

    def _buf(self, name: str, dtype: type = np.float64) -> np.ndarray:
        """Scratch array ``name`` of the active prefix's shape, allocated once per chunk (fresh
        temporaries each quarter cost more than the arithmetic: page faults)."""
        full = self.scratch.get(name)
        if full is None:
            full = self.scratch[name] = np.empty(self.balance_shape, dtype=dtype)
        return full[: self.m]

    def _operating(
        self,
        t: int,
        log_price: list[np.ndarray],
        interest: np.ndarray,
        age: np.ndarray,
        operating: np.ndarray,
        idle: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Quarter ``t``'s cash available after tax and credits, the ramp and the offtake
        floor's top-up ``(fl - Pn) phi (unit ramp)`` (None when nothing operates). Every
        temporary is a scratch array; the operations and their order are those of
        docs/scenario-model.md, so the doubles are the same."""
        inp, sch, buf = self.inp, self.sch, self._buf
        if not sch.first_op <= t <= sch.last_op:
            return None
        flag = buf("flag", bool)
        # ramp = min(1, (age + 1) / ramp_quarters) while operating (age + 1 <= 0 gives 0)
        ramp = np.subtract(float(t + 1), sch.comp_f, out=buf("ramp"))
        ramp /= inp.ramp_quarters
        np.clip(ramp, 0.0, 1.0, out=ramp)
        ramp *= operating
        # rev = (unit ramp) (Pb (1 - phi) + fl phi), fl = max(Pb, f) within the floor's term
        price = self._prices(log_price, buf("price"))
        floor = self.floor
        esc = None
        if self.escalates:
            # esc = iota (I - 1) + 1; Pn = Pb esc; fn = f (iota_f (I - 1) + 1)
            gi = self.cpi - 1.0
            esc = np.multiply(self.iota, gi[None, :], out=buf("esc"))
            esc += 1.0
            price *= esc
            floor = np.multiply(self.iota_floor, gi[None, :], out=buf("floor_nom"))
            floor += 1.0
            floor *= self.floor
        floored = np.maximum(price, floor, out=buf("floored"))
        np.copyto(floored, price, where=np.greater_equal(age, self.offtake_q, out=flag))
        # the floor's guarantor pays the contracted share's price up to the floor
        top = np.subtract(floored, price, out=buf("top"))
        top *= self.phi
        floored *= self.phi
        price *= self.one_minus_phi
        price += floored
        rev = np.multiply(self.unit, ramp, out=floored)
        top *= rev
        rev *= price
        ebitda = np.multiply(self.opex_unit, ramp, out=price)
        if esc is not None or self.fuels:
            # opex x ((1 - fs) esc + fs (G I)), G = exp(x_gas + J c): the fuel follows gas
            om = buf("om")
            if esc is None:
                om[...] = self.one_minus_fuel
            else:
                np.multiply(self.one_minus_fuel, esc, out=om)
            if self.fuels:
                gas = np.exp(log_price[_GAS])
                gas *= self.cpi
                om += self.fuel * gas[None, :]
            ebitda *= om
        np.subtract(rev, ebitda, out=ebitda)
        # dep = bonus [age = 0] + scheduled (rate_k / 4), k = age div 4 (rate 0 past the table)
        k = np.maximum(age, 0, out=buf("k", np.int64))
        k >>= 2
        np.minimum(k, self.dep_width, out=k)
        k += self.dep_base
        rate = np.take(self.dep_flat, k, out=buf("rate"))
        first = np.equal(age, 0, out=buf("first", bool))
        dep = np.multiply(sch.scheduled, rate, out=rate)
        # where(first, bonus, 0.0) + dep: dep >= +0.0, so 0.0 + dep is dep
        np.add(dep, sch.bonus_amount, out=dep, where=first)
        taxable = np.subtract(ebitda, dep, out=dep)
        taxable -= interest
        gain = np.maximum(taxable, 0.0, out=rev)
        loss = np.negative(taxable, out=taxable)
        np.maximum(loss, 0.0, out=loss)
        use = np.multiply(inp.nol_limit, gain, out=buf("use"))
        np.minimum(self.nol, use, out=use)
        nol = np.add(self.nol, loss, out=loss)
        nol -= use
        np.copyto(self.nol, nol, where=operating)
        tax = np.subtract(gain, use, out=gain)
        tax *= inp.tax_rate
        # credit = itc [age = 0] + ptc ramp [age < credit quarters]; both terms >= +0.0
        credit = np.multiply(self.ptc_unit, ramp, out=use)
        if self.escalates:  # x (iota_c (I - 1) + 1): 45Y and 45Q follow CPI, 45X does not
            credit_esc = np.multiply(self.iota_credit, gi[None, :], out=buf("credit_esc"))
            credit_esc += 1.0
            credit *= credit_esc
        np.copyto(credit, 0.0, where=np.greater_equal(age, self.credit_q, out=flag))
        np.add(credit, sch.itc_amount, out=credit, where=first)
        cfads = np.subtract(ebitda, tax, out=ebitda)
        cfads += credit
        np.maximum(cfads, 0.0, out=cfads)
        np.copyto(cfads, 0.0, where=idle)
        return cfads, ramp, top

    def _senior_paid(
        self,
        interest: np.ndarray,
        i: np.ndarray,
        avail: np.ndarray,
        age: np.ndarray,
        idle: np.ndarray,
        fails_now: np.ndarray | None,
    ) -> np.ndarray:
        """:meth:`_debt_service` of the active rows: computed on the rows with senior debt
        only (gathered when they are not all of them), +0.0 on the others."""
        rows, m = self.debt_rows, self.m
        if rows.size == m:
            return self._debt_service(
                self.senior, self.tenor, self.level, interest, i, avail, age, idle, fails_now
            )
        paid = self._buf("paid")
        paid.fill(0.0)
        if rows.size:
            paid[rows] = self._debt_service(
                self.senior[rows],
                self.tenor[rows],
                self.level[rows],
                interest[rows],
                i[rows],
                avail[rows],
                age[rows],
                idle[rows],
                None if fails_now is None else fails_now[rows],
            )
        return paid

    def _debt_service(
        self,
        b: np.ndarray,
        tenor: np.ndarray,
        level_rows: np.ndarray,
        interest: np.ndarray,
        i: np.ndarray,
        avail: np.ndarray,
        age: np.ndarray,
        idle: np.ndarray,
        fails_now: np.ndarray | None,
    ) -> np.ndarray:
        """Senior debt paid this quarter (before the MOU split) on the balances ``b`` of some
        rows (the other arguments of the same rows): interest plus the annuity or level
        principal over the tenor's remaining quarters; everything at the tenor's end and in a
        failed project's last quarter (``fails_now``, None when no project fails this
        quarter)."""

        def buf(name: str, dtype: type = np.float64) -> np.ndarray:
            return self._buf(name, dtype)[: b.shape[0]]

        left = np.subtract(tenor, age, out=buf("left", np.int64))
        np.maximum(left, 1, out=left)
        m = buf("m")
        np.copyto(m, left)
        level = np.divide(b, m, out=buf("level"))
        grown = np.add(i, 1.0, out=buf("grown"))
        np.power(grown, m, out=grown)
        grown -= 1.0
        positive = np.greater(i, 0.0, out=buf("positive", bool))
        np.copyto(grown, 1.0, where=np.logical_not(positive, out=buf("flag", bool)))
        annuity = np.multiply(b, i, out=buf("annuity"))
        np.divide(annuity, grown, out=annuity)
        np.copyto(annuity, level, where=np.logical_not(positive, out=positive))
        principal = annuity
        np.copyto(principal, level, where=level_rows)
        due = np.add(interest, principal, out=principal)
        np.copyto(due, 0.0, where=idle)
        if fails_now is not None:
            np.copyto(due, np.add(b, interest, out=level), where=fails_now)
        return np.minimum(avail, due, out=due)

    def _deemed_growth(self, rate: np.ndarray) -> np.ndarray:
        """The deemed rate's growth of the quarter per distinct spread: ``g = 1 + (sp + rate) /
        4``, or ``sqrt(1 + (sp + rate) / 2)`` semi-annually (copied to the rows after)."""
        g = np.add(self.spread_values, rate[None, :], out=self.spread_growth)
        if self.inp.semiannual:
            g *= 0.5
            g += 1.0
            np.sqrt(g, out=g)
        else:
            g *= 0.25
            g += 1.0
        return g

    def _fx_discounts(self, t: int, log_price: list[np.ndarray]) -> np.ndarray:
        """Japan's discount of quarter ``t`` per distinct (funding, yen share), copied to the
        rows after: ``dfx = d (1 - y + y e^x)``; at parity ``dfx = d (1 - y) + y (d_p e^x)``,
        ``d_p`` the swapped yen's discount."""
        if self.parity:
            f = np.multiply(self.fx_parity_discount[:, t : t + 1], np.exp(log_price[_USDJPY]))
            np.multiply(self.fx_yen, f, out=self.fx_values)
            f = self.fx_values
            f += self.fx_one_minus_yen * self.fx_discount[:, t : t + 1]
            return f
        f = np.multiply(self.fx_yen, np.exp(log_price[_USDJPY]), out=self.fx_values)
        np.add(self.fx_one_minus_yen, f, out=f)
        f *= self.fx_discount[:, t : t + 1]
        return f

    def step(
        self,
        t: int,
        m: int,
        rate: np.ndarray,
        log_price: list[np.ndarray],
        out: EngineResult,
        rows: slice,
    ) -> None:
        """Quarter ``t`` of the first ``m`` rows (the rows after them have ended)."""
        if m != self.m:
            self._narrow(m)
        inp, sch, buf = self.inp, self.sch, self._buf
        # draw = M / T in quarters q0 .. last draw quarter
        if t <= sch.last_draw_max:
            building = (t <= sch.last_draw) & (sch.q0 <= t)[:, None]
            draw = building * sch.draw_amount
            debt_draw = building * sch.debt_draw
        else:
            draw = debt_draw = 0.0
        age = np.subtract(t, sch.comp, out=buf("age", np.int64))
        operating = np.greater_equal(age, 0, out=buf("operating", bool))
        operating &= np.greater_equal(sch.op_last, t, out=buf("flag", bool))
        idle = np.logical_not(operating, out=buf("idle", bool))
        # senior interest i = (SOFR + senior spread) / 4 on the balance before this quarter
        i = np.add(self.senior_spread, rate[None, :], out=buf("i"))
        i *= 0.25
        interest = np.multiply(self.senior, i, out=buf("interest"))
        op = self._operating(t, log_price, interest, age, operating, idle)
        if op is None:
            avail = buf("cfads")
            avail.fill(0.0)
        else:
            avail = op[0]
        fails_now = None
        if t in sch.salvage_quarters:
            fails_now = np.equal(sch.fq, t, out=buf("fails_now", bool))
            np.add(avail, sch.salvage, out=avail, where=fails_now)
        paid_senior = self._senior_paid(interest, i, avail, age, idle, fails_now)
        self.senior += interest
        self.senior -= paid_senior
        self.senior += debt_draw
        cash = np.subtract(avail, paid_senior, out=avail)
        if op is not None and inp.w0 <= t <= inp.w1:
            self.online += op[1]
        if self.stack_rows.size:
            self._stack(cash, draw)

        # deemed growth g = 1 + (sp + rate) / 4, or sqrt(1 + (sp + rate) / 2) semi-annually;
        # Japan's claim stops growing after the project's end (it is lost then)
        # computed once per distinct spread, then copied to its rows (the same doubles)
        g = self._deemed_growth(rate)
        growth = np.take(g, self.spread_row, axis=0, out=buf("growth"))
        np.copyto(growth, 1.0, where=np.less(sch.end, t, out=buf("flag", bool)))
        after = (t - sch.q0 >= inp.realloc_quarters)[:, None]
        share = np.where(after, inp.realloc_share, inp.share_before)
        japan, us = waterfall_step(
            self.balance,
            cash,
            growth,
            draw,
            share,
            inp.share_after,
            self.unpaid,
            (buf("paid_japan"), buf("japan"), buf("us")),
        )

        d = self.discount[:, t : t + 1]
        f = self._fx_discounts(t, log_price)
        dfx = np.take(f, self.fx_row, axis=0, out=buf("dfx"))
        term = np.multiply(dfx, japan, out=growth)
        self.pv_japan += term
        self.pv_us += np.multiply(d, us, out=term)
        if op is not None:
            self.pv_floor += np.multiply(d, op[2], out=term)
        if not np.isscalar(draw):
            self.pv_draw += np.multiply(dfx, draw, out=term)
        # Japan's balance is 0 before the first draw, positive from it to the last draw, and
        # stays 0 once cleared after it (and frozen after the end): counting its zero quarters
        # gives the recoup quarter.
        self.zero_quarters += np.less_equal(self.owed(), 0.0, out=buf("flag", bool))
        if self.weights is not None:
            self._portfolio(t, japan, us, draw, out, rows)

    def _stack(self, cash: np.ndarray, draw: np.ndarray | float) -> None:
        """The fund's priority over the sponsor's equity, in place on ``cash`` (per fund
        dollar) of the rows not pari passu: ``cash + (1 - ω) p``, ``p = min(cash / ω, due)``;
        senior: ``due = a``, ``a = a h + draw`` (capital and hurdle first); preferred: ``due =
        u``, ``u = u h + k (h - 1)``, ``k = k + draw`` (the hurdle first), the fund's pro-rata
        rest ``cash - ω p`` returning ``k``."""
        rows = self.stack_rows
        c = cash[rows]
        omega = self.omega[rows][:, None]
        h = self.hurdle[rows][:, None]
        d = draw if np.isscalar(draw) else draw[rows]
        senior = (self.stack_code[rows] == 2)[:, None]
        due = self.stack_due[rows]
        capital = self.stack_capital[rows]
        # senior: a = a h + draw; preferred: u = u h + k (h - 1), then k = k + draw
        grown = due * h
        accrued = grown + capital * (h - 1.0)
        due = np.where(senior, grown + d, accrued)
        capital = np.where(senior, capital, capital + d)
        p = np.minimum(c / omega, due)
        due = due - p
        rest = c - omega * p
        capital = np.where(senior, capital, capital - np.minimum(rest, capital))
        self.stack_due[rows] = due
        self.stack_capital[rows] = capital
        cash[rows] = c + (1.0 - omega) * p

    def _catalog_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The active rows in increasing catalog order (their positions in this state's rows)
        and their weights as a column, computed once per active prefix."""
        if self._cat is None:
            cat = np.sort(self.order[: self.m])
            self._cat = (self.inv[cat], self.weights[cat][:, None])
        return self._cat

    def _portfolio(
        self,
        t: int,
        japan: np.ndarray,
        us: np.ndarray,
        draw: np.ndarray | float,
        out: EngineResult,
        rows: slice,
    ) -> None:
        """Portfolio cash of quarter ``t``: sum_i w_i amount_i in increasing catalog order i.

        The rows that have ended add exactly 0.0 (their amounts are +0.0, the weights >= 0): the
        sum runs over the active rows only, in catalog order, and adds 0.0 once when some row
        was left out, which turns a -0.0 into the +0.0 the full sum would give.

        The rows are added one after the other into a running row (a loop over the rows, each
        add over the chunk's scenarios): the same doubles as ``np.add.accumulate(...)[-1]``,
        which it replaced at a twentieth of the time (``accumulate`` walks each scenario's
        column with a stride; it was a third of the evaluation stage; bench/RESULTS.md, issue
        17). Not ``np.add.reduce``: on a chunk of one scenario the rows are the contiguous
        axis, which NumPy sums pairwise, and the doubles would depend on the chunk."""
        pos, w = self._catalog_rows()
        for name, amount in zip(CASH_FIELDS, (japan, us, draw), strict=True):
            if np.isscalar(amount):
                out.cash[name][rows, t] = 0.0
                continue
            terms = amount[pos]
            terms *= w
            acc = terms[0]
            for row in terms[1:]:
                acc += row
            if self.m < self.weights.size:
                acc += 0.0
            out.cash[name][rows, t] = acc

    def _kernel_setup(self) -> SimpleNamespace:
        """The compiled step's per-row constants as contiguous 1-d arrays (all rows, in this
        state's row order) and its scratch arrays, made on first use."""
        if self._kernel is not None:
            return self._kernel
        full, sch = self.full, self.full_sch
        p, n = self.balance_shape

        def row(value: np.ndarray, dtype: type = np.float64) -> np.ndarray:
            return np.ascontiguousarray(np.asarray(value).reshape(p), dtype=dtype)

        floats = ("unit", "opex_unit", "phi", "one_minus_phi", "floor", "iota", "iota_floor")
        floats += ("iota_credit", "fuel", "one_minus_fuel", "ptc_unit", "senior_spread")
        ints = ("offtake_q", "credit_q", "dep_base", "tenor")
        debts = int(self.has_debt.sum())
        debt_pos = np.full(p, -1, dtype=np.intp)
        debt_pos[self.has_debt] = np.arange(debts)
        self._kernel = SimpleNamespace(
            # the schedule's quarters in 32 bits (they are below 2^31): half the memory read
            **{
                name: getattr(sch, name).astype(np.int32)
                for name in ("comp", "op_last", "fq", "last_draw", "end")
            },
            q0=row(sch.q0, np.int64),
            group=row(np.arange(p) if self.group is None else self.group, np.intp),
            **{name: row(full[name]) for name in floats},
            **{name: row(full[name], np.int64) for name in ints},
            level=row(full["level"], np.bool_),
            spread_row=row(full["spread_row"], np.intp),
            fx_row=row(full["fx_row"], np.intp),
            debt_pos=debt_pos,
            debt_count=np.cumsum(self.has_debt),
            stack_code=row(self.stack_code, np.int64),
            omega=row(self.omega),
            hurdle=row(self.hurdle),
            discount=np.ascontiguousarray(full["discount"].T),
            unpaid=self.unpaid if self.unpaid is not None else np.zeros((1, 1)),
            stack_due=self.stack_due if self.stack_rows.size else np.zeros((1, 1)),
            stack_capital=self.stack_capital if self.stack_rows.size else np.zeros((1, 1)),
            no_gas=np.zeros(0),
            acc=np.empty(n),
            **{name: np.empty((p, n)) for name in ("avail", "ramp", "japan", "us", "draw")},
            # the annuity factor's base and exponent (1.0 until a cell is first written)
            **{name: np.ones((debts, n)) for name in ("base", "exponent", "power")},
        )
        return self._kernel

    def step_compiled(
        self,
        t: int,
        m: int,
        rate: np.ndarray,
        log_price: list[np.ndarray],
        out: EngineResult,
        rows: slice,
    ) -> None:
        """:meth:`step` by the kernels of :mod:`portopt.engine.compiled`: the same operations
        on each cell in the same order, so the same doubles. What is per scenario (prices,
        gas, the yen, the deemed growth) and the annuity factor's power are NumPy's, as in
        :meth:`step`."""
        k = self._kernel_setup()
        if m != self.m:
            self._narrow(m)
        inp, sch, full = self.inp, self.sch, self.full_sch
        building = t <= sch.last_draw_max
        op_on = sch.first_op <= t <= sch.last_op
        fail_on = t in sch.salvage_quarters
        gas = k.no_gas
        if op_on:
            self._group_prices(log_price)
            if self.fuels:
                gas = np.exp(log_price[_GAS])
                gas *= self.cpi
        state = self.full
        online = op_on and inp.w0 <= t <= inp.w1
        _compiled.pre_step(
            t, m, op_on, online, fail_on, self.escalates, self.fuels,
            k.comp, k.op_last, k.fq, full.salvage, full.scheduled,
            full.bonus_amount, full.itc_amount,
            k.senior_spread, k.debt_pos, k.tenor, k.group, k.unit, k.opex_unit, k.phi,
            k.one_minus_phi, k.floor, k.offtake_q, k.iota, k.iota_floor, k.iota_credit, k.fuel,
            k.one_minus_fuel, self.dep_flat, self.dep_width, k.dep_base, k.ptc_unit, k.credit_q,
            inp.ramp_quarters, inp.nol_limit, inp.tax_rate,
            rate, self.y, self.cpi, gas,
            state["senior"], state["nol"], state["pv_floor"], k.discount[t],
            k.avail, k.ramp, k.base, k.exponent,
        )  # fmt: skip
        debt = int(k.debt_count[m - 1]) if op_on else 0
        if debt:  # (1 + i) ** m, NumPy's power as in _debt_service
            np.power(k.base[:debt], k.exponent[:debt], out=k.power[:debt])
        g = self._deemed_growth(rate)
        f = self._fx_discounts(t, log_price)
        _compiled.post_step(
            t, m, building, online, fail_on,
            self.stack_rows.size > 0, self.unpaid is None, self.weights is not None,
            k.comp, k.op_last, k.fq, k.last_draw, full.draw_amount, full.debt_draw, k.end,
            k.avail, k.ramp, k.power,
            k.q0, k.senior_spread, k.debt_pos, k.tenor, k.level, k.spread_row, k.fx_row,
            k.discount[t], k.stack_code, k.omega, k.hurdle,
            inp.realloc_quarters, float(inp.realloc_share), float(inp.share_before),
            float(inp.share_after),
            rate, g, f,
            state["senior"], state["online"], k.stack_due, k.stack_capital, state["balance"],
            k.unpaid, state["pv_japan"], state["pv_us"], state["pv_draw"],
            state["zero_quarters"],
            k.japan, k.us, k.draw,
        )  # fmt: skip
        if self.weights is not None:
            pos, w = self._catalog_rows()
            weights = np.ascontiguousarray(w[:, 0])
            padded = self.m < self.weights.size
            for name, amount in zip(CASH_FIELDS, (k.japan, k.us, k.draw), strict=True):
                if name == CASH_FIELDS[2] and not building:
                    out.cash[name][rows, t] = 0.0
                else:
                    _compiled.portfolio_sums(
                        amount, pos, weights, padded, k.acc, out.cash[name][rows], t
                    )

    def owed(self) -> np.ndarray:
        """Japan's balance ``J`` (with the carried interest when that is kept apart)."""
        return self.balance if self.unpaid is None else self.balance + self.unpaid

    def freeze(self, after: np.ndarray) -> None:
        """Count the zero quarters of each row's frozen balance in the ``after`` (per row)
        quarters past its last step, to H - 1, as if it had been stepped through them."""
        self._narrow(self.inv.size)
        self.zero_quarters += after[:, None] * (self.owed() <= 0.0)

    def finish(self, out: EngineResult, rows: slice) -> None:
        """Write the outputs of every row at ``rows`` of ``out``, in catalog order."""
        self._narrow(self.inv.size)
        inp, sch, pr, inv = self.inp, self.full_sch, out.project, self.inv
        pr["pv_draw"][rows] = self.pv_draw[inv].T
        pr["pv_japan"][rows] = self.pv_japan[inv].T
        pr["pv_us"][rows] = self.pv_us[inv].T
        pr["pv_floor"][rows] = self.pv_floor[inv].T
        before = np.minimum(inp.q0, inp.horizon)[:, None]
        after = self.zero_quarters - before  # zero quarters from the recoup quarter to H - 1
        recoup = np.where(after > 0, inp.horizon - after, -1)
        pr["recoup_q"][rows] = recoup[inv].T
        pr["complete_q"][rows] = np.where(sch.failed, -1, sch.comp)[inv].T
        pr["online_share"][rows] = (self.online / inp.window_len)[inv].T
        pr["balance_end"][rows] = self.owed()[inv].T
