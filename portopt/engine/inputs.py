"""Everything the scenario engines need, as plain arrays and scalars computed once on the host.

:func:`prepare_inputs` turns a typed catalog and a run configuration into :class:`EngineInputs`:
float64, int32 and uint32 NumPy arrays (one entry per project or chokepoint, in catalog order)
and Python scalars. Both engines read only this: the NumPy engine
(``portopt/engine/numpy_engine.py``) and the CUDA kernel (``portopt/engine/cupy_engine.py``
copies the arrays to the device). Every host-side
derived constant (Cholesky factor, OU coefficients, Φ⁻¹(p), discount factors, square roots of
loadings) is computed here once, so both engines start from the same doubles; the formulas that
use them, and their evaluation order, are in docs/scenario-model.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from portopt.catalog import Catalog, chokepoint_entity, project_entity
from portopt.config import RunConfig, quarter_index
from portopt.engine.philox import key_of_seed
from portopt.errors import ScenarioError
from portopt.vocabulary import FACTORS, SECTORS

DT = 0.25
"""Years per quarter."""

Z90 = 1.2815515655446004
"""Φ⁻¹(0.9): the P90 of a standard normal."""

FUNDING_SOURCES = ("usd_bonds", "yen_loans", "reserves")
"""JBIC's funding sources, in the order of the ``discount`` table's rows."""

PARITY_ROW = 3
"""Row of the ``discount`` table for yen funding swapped to dollars at covered interest parity."""

STACK_CODES = {"pari_passu": 0, "preferred": 1, "senior": 2}
"""``stack`` of :class:`EngineInputs` per position of ``deal.stack.position``."""

FUEL_FILE = "fuel.csv"
"""The sourced fuel shares of opex per technology and row, in portopt/data."""

REALLOCATION_OFF = 2**30
"""``realloc_quarters`` when the Korea-style re-allocation is off (never reached)."""


@dataclass(frozen=True, eq=False)
class EngineInputs:
    """The scenario model's parameters, flattened for the engines (docs/scenario-model.md).

    Per project (arrays of shape ``(P,)``, catalog order):

    * ``project_entity`` uint32: Philox entity ``0x80000000 | (fnv1a(e) & 0x7fffffff)`` of the
      row's ``entity_id`` ``e`` when the catalog has that column and the cell is not blank, else
      of its ``id``: the start options of one project (rows ``"<id>~<quarter>"`` sharing the
      ``entity_id`` ``<id>``) draw the same overrun, delay and failure (common random numbers).
    * ``q0`` int32: start quarter ``max(0, quarter_index(earliest_start, start))``.
    * ``build_quarters`` int32: ``T0``, planned build length in quarters.
    * ``life_quarters`` int32: ``4 · life_years``.
    * ``unit`` float64: ``R / K / 4``, quarterly revenue at capacity per dollar of base cost.
    * ``opex_share`` float64: ``o``.
    * ``factor`` int32: price factor index into :data:`portopt.vocabulary.FACTORS`, ``-1`` for none.
    * ``beta`` float64: ``β``, exponent on the price factor.
    * ``offtake_share`` float64: ``φ``.
    * ``offtake_floor`` float64: ``f``.
    * ``overrun_median`` float64: ``med`` (the multiplier's median is ``1 + med``).
    * ``overrun_sigma`` float64: ``σ_o = ln((1 + p90) / (1 + med)) / 1.2815515655446004``.
    * ``delay_median`` float64: ``dm``, quarters.
    * ``permit_mult`` float64: ``mult_track`` of the project's permitting track.
    * ``permit_vol`` float64: ``vol_track`` of the project's permitting track.
    * ``intensity`` float64: ``wk / (K / 1e9) / 1000``, thousand workers per $B.
    * ``backlog`` int32: 1 when the project's sector is in ``backlog.sectors``, else 0.
    * ``sector`` int32: index into :data:`portopt.vocabulary.SECTORS`.
    * ``fail_threshold`` float64: ``Φ⁻¹(p)``; ``-inf`` for p = 0, ``+inf`` for p = 1.
    * ``spread`` float64: ``sp``, deemed spread over SOFR (annual).
    * ``leverage`` float64: ``λ = 1 / (1 - δ)``, project dollars per dollar of junior (fund and
      sponsor) capital, ``δ`` the senior debt share; every amount is per junior dollar.
    * ``senior_spread`` float64, ``senior_tenor`` int32 (quarters), ``annuity`` int32 (1:
      annuity, 0: level principal): the senior debt's terms.
    * ``offtake_quarters`` int32: the floor's term from completion (the life when blank).
    * ``bonus_share`` float64 and ``dep_row`` int32 (row of ``dep_rates``): tax depreciation.
    * ``itc`` float64: ITC cash per dollar of cost placed in service (rate · credit price).
    * ``ptc_unit`` float64: PTC cash per quarter at capacity per junior dollar
      (rate · units per year / 4 / K · λ · credit price); ``credit_quarters`` int32: its term.
    * ``funding`` int32: JBIC's source (0 usd_bonds, 1 yen_loans, 2 reserves), the row of
      ``discount``; ``yen_share`` float64: the yen-funded share ``y`` of Japan's money.
    * ``indexation`` float64: ``ι``, the share of revenue and opex that follows CPI (catalog
      column ``indexation``, 1.0 when blank or absent); ``offtake_indexed`` float64: ``ι_f``,
      the floor's (column ``offtake_indexed``, 0: a nominal fixed floor); ``credit_indexed``
      float64: ``ι_c``, the PTC's (column ``credit_indexed``; blank: 1 for a credit per MWh or
      per t of CO2, 45Y and 45Q, whose amounts are inflation-adjusted by statute, else 0, 45X);
      ``fuel_share`` float64: ``fs``, the share of opex that is fuel following the gas factor
      (portopt/data/fuel.csv or the column ``fuel_share``; 0 with ``fuel_follows_gas`` off).
    * ``stack`` int32 (0 pari passu, 1 preferred, 2 senior), ``hurdle_growth`` float64
      (``1 + h / 4``), ``fund_equity`` float64 (``ω``, the fund's share of the junior
      capital): the fund's place against the sponsor's equity.

    Per chokepoint (shape ``(C,)``): ``chokepoint_entity`` uint32
    (``0x40000000 | (fnv1a(id) & 0x3fffffff)``) and ``exposed`` float64 (0.0 or 1.0).

    Market path (index ``k`` runs over the six factors, then SOFR at 6):

    * ``ou_a`` (7,) float64: ``a_k = exp(-κ_k dt)`` (``a_6`` is SOFR's ``a_r``).
    * ``ou_b`` (7,) float64: ``b_k = σ_k sqrt((1 - a_k²) / (2 κ_k))``, ``σ_k sqrt(dt)`` if κ = 0.
    * ``sofr_theta``, ``sofr_r0``, ``sofr_floor``: SOFR's mean ``θ``, ``r[-1]`` and floor.
    * ``infl_theta``, ``infl_r0``, ``infl_a``, ``infl_b``: inflation's mean, ``π[-1]`` and OU
      coefficients; ``infl_rho`` and ``infl_perp`` ``sqrt(1 - ρ²)``: its loading on SOFR's
      shock; ``escalates`` (1 unless mean, initial and vol are all 0: then the index is 1).
    * ``jump`` (6,) float64: ``J_k``, added to the log factor while coercion lasts.
    * ``chol`` (7, 7) float64: lower Cholesky factor of ``correlation + 1e-12 I``.
    * ``p_start``: ``1 - exp(-rate_per_year · dt)``; ``p_end``: ``1 / mean_duration_quarters``.

    Schedule, waterfall and scalars:

    * ``horizon`` ``H``: the simulated quarters, ``max(max_i(q0 + T0 + life) + D_max, w1 + 1)``;
      ``max_delay`` ``D_max``; ``w0``, ``w1``: the window's quarters clipped to ``[0, H-1]``;
      ``window_len`` ``W = w1 - w0 + 1``.
    * ``ramp_quarters`` (int; ``(age + 1) / ramp_quarters`` is a double division).
    * ``tax_rate``, ``nol_limit``, ``salvage_share``; ``dep_rates`` (D, Y) float64: annual
      depreciation rates (MACRS half-year or straight line) per distinct schedule.
    * ``share_before``, ``share_after``: Japan's split until and after recovery;
      ``semiannual`` (1 when the deemed rate compounds semi-annually); ``shortfall_accrues`` (1
      when carried deemed interest earns the deemed rate); ``realloc_quarters``
      (quarters after the first draw from which ``realloc_share`` replaces ``share_before``;
      ``2^30`` when off).
    * ``discount`` (4, H) float64: ``v_k^(t+1)``, ``v_k = (1 + r_k)^(-1/4)`` for the funding
      source k (``v ** (t + 1)`` in NumPy float64), the table both engines multiply by; row 3
      is yen funding swapped to dollars at covered interest parity,
      ``((1 + r_usd_bonds)(1 + basis))^(-1/4)``; ``fx_parity`` (1: the yen-funded share is
      valued on row 3 times the spot's deviation from the forward).
    * ``labour_delay_beta``; ``overrun_labour_corr`` ``ρ_ol`` and ``overrun_labour_perp``
      ``sqrt(1 - ρ_ol²)``.
    * ``backlog_mean``, ``backlog_vol``: quarters.
    * ``sector_rho`` ``ρ``; ``sector_load`` ``sqrt(ρ)``; ``sector_perp`` ``sqrt(1 - ρ)``.
    * ``stress_vol`` ``σ_m``; ``stress_half_var`` ``0.5 · σ_m · σ_m``; ``stress_uplift``.
    * ``key`` (2,) uint32: the Philox key of ``config.seed`` (:func:`.philox.key_of_seed`).
    * ``project_ids``, ``chokepoint_ids``: tuples of ids in catalog order (not used by kernels).
    """

    # per project
    project_entity: np.ndarray
    q0: np.ndarray
    build_quarters: np.ndarray
    life_quarters: np.ndarray
    unit: np.ndarray
    opex_share: np.ndarray
    factor: np.ndarray
    beta: np.ndarray
    offtake_share: np.ndarray
    offtake_floor: np.ndarray
    overrun_median: np.ndarray
    overrun_sigma: np.ndarray
    delay_median: np.ndarray
    permit_mult: np.ndarray
    permit_vol: np.ndarray
    intensity: np.ndarray
    backlog: np.ndarray
    sector: np.ndarray
    fail_threshold: np.ndarray
    spread: np.ndarray
    leverage: np.ndarray
    senior_spread: np.ndarray
    senior_tenor: np.ndarray
    annuity: np.ndarray
    offtake_quarters: np.ndarray
    bonus_share: np.ndarray
    dep_row: np.ndarray
    itc: np.ndarray
    ptc_unit: np.ndarray
    credit_quarters: np.ndarray
    funding: np.ndarray
    yen_share: np.ndarray
    indexation: np.ndarray
    offtake_indexed: np.ndarray
    credit_indexed: np.ndarray
    fuel_share: np.ndarray
    stack: np.ndarray
    hurdle_growth: np.ndarray
    fund_equity: np.ndarray
    # per chokepoint
    chokepoint_entity: np.ndarray
    exposed: np.ndarray
    # market path
    ou_a: np.ndarray
    ou_b: np.ndarray
    sofr_theta: float
    sofr_r0: float
    sofr_floor: float
    infl_theta: float
    infl_r0: float
    infl_a: float
    infl_b: float
    infl_rho: float
    infl_perp: float
    escalates: int
    fx_parity: int
    jump: np.ndarray
    chol: np.ndarray
    p_start: float
    p_end: float
    # schedule, waterfall, scalars
    horizon: int
    max_delay: int
    w0: int
    w1: int
    window_len: int
    ramp_quarters: int
    tax_rate: float
    nol_limit: float
    salvage_share: float
    dep_rates: np.ndarray
    share_before: float
    share_after: float
    semiannual: int
    shortfall_accrues: int
    realloc_quarters: int
    realloc_share: float
    discount: np.ndarray
    labour_delay_beta: float
    overrun_labour_corr: float
    overrun_labour_perp: float
    backlog_mean: float
    backlog_vol: float
    sector_rho: float
    sector_load: float
    sector_perp: float
    stress_vol: float
    stress_half_var: float
    stress_uplift: float
    key: np.ndarray
    project_ids: tuple[str, ...]
    chokepoint_ids: tuple[str, ...]

    @property
    def n_projects(self) -> int:
        return int(self.project_entity.shape[0])

    @property
    def n_chokepoints(self) -> int:
        return int(self.chokepoint_entity.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array field by name (what a device backend copies over)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }

    def subset(self, keep: np.ndarray | list[int]) -> EngineInputs:
        """The same inputs restricted to the projects at positions ``keep`` (in that order)."""
        idx = np.asarray(keep, dtype=np.intp)
        changes = {
            f.name: getattr(self, f.name)[idx]
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray) and f.name in _PROJECT_FIELDS
        }
        changes["project_ids"] = tuple(self.project_ids[i] for i in idx)
        return _replace(self, changes)


_PROJECT_FIELDS = (
    "project_entity",
    "q0",
    "build_quarters",
    "life_quarters",
    "unit",
    "opex_share",
    "factor",
    "beta",
    "offtake_share",
    "offtake_floor",
    "overrun_median",
    "overrun_sigma",
    "delay_median",
    "permit_mult",
    "permit_vol",
    "intensity",
    "backlog",
    "sector",
    "fail_threshold",
    "spread",
    "leverage",
    "senior_spread",
    "senior_tenor",
    "annuity",
    "offtake_quarters",
    "bonus_share",
    "dep_row",
    "itc",
    "ptc_unit",
    "credit_quarters",
    "funding",
    "yen_share",
    "indexation",
    "offtake_indexed",
    "credit_indexed",
    "fuel_share",
    "stack",
    "hurdle_growth",
    "fund_equity",
)


def _replace(inputs: EngineInputs, changes: dict[str, object]) -> EngineInputs:
    values = {f.name: getattr(inputs, f.name) for f in fields(inputs)}
    values.update(changes)
    return EngineInputs(**values)


def _floats(series: object) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(series, dtype=np.float64))


def _ints(series: object) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(series, dtype=np.float64).astype(np.int32))


def _bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _ou(reversion: float, vol: float) -> tuple[float, float]:
    a = math.exp(-reversion * DT)
    if reversion == 0.0:
        return a, vol * math.sqrt(DT)
    b = vol * math.sqrt((1.0 - a * a) / (2.0 * reversion))
    return a, b


def _norm_ppf(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return np.asarray(ndtri(p), dtype=np.float64)


REAL_PROPERTY_YEARS = 27.5
"""Recovery periods from 27.5 years (residential rental, 27.5; nonresidential real property,
39) take the mid-month convention (IRC §168(d)(2), Pub. 946 Tables A-6 and A-7a)."""


def macrs_rates(years: float, method: str, convention: str = "tax_code") -> np.ndarray:
    r"""Annual depreciation rates of one dollar of basis, year 0 being the year placed in service.

    ``macrs``: the GDS half-year tables of IRS Pub. 946 for recovery period ``n = round(years)``
    up to 20 (200% declining balance to 10 years, 150% for 15 and 20, switching to straight
    line when that is larger; ``n + 1`` years), straight line with the half-year convention
    past 20 (27.5- and 39-year property are straight line by law). ``straight_line`` with the
    ``tax_code`` convention: ``1/L`` a year after a first year of ``c/L``, the last year taking
    what is left, with ``c = 11.5/12`` (mid-month, placed in service in the tax year's first
    month) for ``L >= 27.5`` and ``c = 1/2`` (half-year) below; with ``full_year``: ``1/L`` a
    year for ``ceil(L)`` years (the last year takes the fraction left).

    .. math:: d_k = \max\big(R_k\,\tfrac{m}{n}\,h_k,\ R_k / (n - k + \tfrac12)\big),
              \quad R_{k+1} = R_k - d_k, \quad h_0 = \tfrac12,\ h_{k>0} = 1
    """
    if method == "straight_line":
        if convention == "full_year":
            n = math.ceil(years)
            return np.array([min(1.0, years - k) / years for k in range(n)], dtype=np.float64)
        first = (11.5 / 12.0 if years >= REAL_PROPERTY_YEARS else 0.5) / years
        rates, left = [first], 1.0 - first
        while left > 1e-15:
            d = min(left, 1.0 / years)
            rates.append(d)
            left -= d
        return np.array(rates, dtype=np.float64)
    n = max(1, round(years))
    factor = 2.0 if n <= 10 else 1.5 if n <= 20 else 0.0
    rates, left = [], 1.0
    for k in range(n):
        half = 0.5 if k == 0 else 1.0
        straight = left / (n - k + 0.5) if k > 0 else 0.5 / n
        d = max(left * factor / n * half, straight)
        rates.append(d)
        left -= d
    rates.append(left)
    return np.array(rates, dtype=np.float64)


def _text(pr: pd.DataFrame, name: str, default: str) -> list[str]:
    """An optional text column, a blank cell or a missing column read as ``default``."""
    if name not in pr:
        return [default] * len(pr)
    return [str(v).strip() or default for v in pr[name].fillna("")]


def _number(pr: pd.DataFrame, name: str, default: np.ndarray | float) -> np.ndarray:
    """An optional number column, a blank cell (NaN) or a missing column read as ``default``."""
    if name not in pr:
        return np.broadcast_to(np.asarray(default, dtype=np.float64), (len(pr),)).copy()
    values = np.asarray(pr[name], dtype=np.float64)
    return np.where(np.isnan(values), default, values)


def _tax_schedules(
    pr: pd.DataFrame, sectors: list[str], config: RunConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each project's bonus share and row of the distinct depreciation schedules."""
    tax = config.scenarios.tax.sectors
    years = _number(pr, "tax_life_years", np.array([tax[s].tax_life_years for s in sectors]))
    bonus = _number(pr, "bonus_share", np.array([tax[s].bonus_share for s in sectors]))
    methods = _text(pr, "depreciation", "macrs")
    keys = list(zip(methods, years.tolist(), strict=True))
    distinct = sorted(set(keys))
    convention = config.scenarios.tax.conventions
    tables = [macrs_rates(y, m, convention) for m, y in distinct]
    width = max(t.size for t in tables)
    rates = np.zeros((len(tables), width), dtype=np.float64)
    for row, table in enumerate(tables):
        rates[row, : table.size] = table
    rows = np.array([distinct.index(k) for k in keys], dtype=np.int32)
    return bonus, rows, rates


def _fuel_shares(pr: pd.DataFrame, ids: tuple[str, ...]) -> np.ndarray:
    """Each row's fuel share of opex: the catalog column ``fuel_share`` where set, else the
    row's entry in portopt/data/fuel.csv (by ``entity_id`` or id), else 0."""
    from importlib import resources

    table = pd.read_csv(
        resources.files("portopt") / "data" / FUEL_FILE, comment="#", dtype={"project_id": str}
    )
    share = dict(zip(table["project_id"], table["fuel_share"].astype(float), strict=True))
    entities = _text(pr, "entity_id", "")
    base = np.array(
        [share.get(e or i, share.get(i, 0.0)) for e, i in zip(entities, ids, strict=True)],
        dtype=np.float64,
    )
    return _number(pr, "fuel_share", base)


def simulated_quarters(catalog: Catalog, config: RunConfig) -> int:
    """H, the quarters simulated: every project to its latest possible end and the strategic
    window inside, :math:`\\max(\\max_i(q_{0i} + T_{0i} + 4\\,\\mathrm{life}_i) + D_\\max,\\;
    w_1 + 1)`. Sizes the engine's loop and the portfolio cash paths (and so the memory
    estimate of a run)."""
    sc = config.scenarios
    pr = catalog.projects
    q0 = np.array([max(0, quarter_index(str(q), sc.start)) for q in pr["earliest_start"]])
    end = q0 + _ints(pr["build_quarters"]) + 4 * _ints(pr["life_years"])
    last = int(end.max(initial=0))  # no project: the window alone
    return int(max(last + int(sc.max_delay_quarters), sc.window_quarters()[1] + 1))


def prepare_inputs(catalog: Catalog, config: RunConfig) -> EngineInputs:
    """Flatten ``catalog`` and ``config`` into :class:`EngineInputs` (see its field list).

    Blank economics cells take the defaults of docs/catalog-columns.md (``scenarios.tax`` per
    sector, ``deal.senior_debt``, ``deal.funding``). Raises :class:`ScenarioError` when the
    catalog has no project.
    """
    sc, deal = config.scenarios, config.deal
    pr = catalog.projects
    ids = tuple(str(i) for i in pr.index)
    if not ids:
        raise ScenarioError("the catalog has no project to simulate")

    entities = [e or i for e, i in zip(_text(pr, "entity_id", ""), ids, strict=True)]
    cost = _floats(pr["base_cost_usd"])
    q0 = np.array(
        [max(0, quarter_index(str(q), sc.start)) for q in pr["earliest_start"]], dtype=np.int32
    )
    build = _ints(pr["build_quarters"])
    life = (4 * _ints(pr["life_years"])).astype(np.int32)
    med = _floats(pr["overrun_median"])
    p90 = _floats(pr["overrun_p90"])
    tracks = [str(t) for t in pr["permitting"]]
    factor = np.array(
        [FACTORS.index(str(f)) if str(f) in FACTORS else -1 for f in pr["price_factor"]],
        dtype=np.int32,
    )
    sectors = [str(s) for s in pr["sector"]]

    a_b = [_ou(sc.factors[name].reversion, sc.factors[name].vol) for name in FACTORS]
    a_b.append(_ou(sc.sofr.reversion, sc.sofr.vol))
    corr = np.asarray(sc.correlation, dtype=np.float64)
    chol = np.linalg.cholesky(corr + 1e-12 * np.eye(corr.shape[0]))

    w0, w1 = sc.window_quarters()
    D = int(sc.max_delay_quarters)
    H = simulated_quarters(catalog, config)
    w0, w1 = max(w0, 0), min(w1, H - 1)

    debt = _number(pr, "senior_debt_share", 0.0)
    leverage = 1.0 / (1.0 - debt)
    credit = _text(pr, "credit", "none")
    credit_rate = _number(pr, "credit_rate", 0.0)
    price = float(sc.tax.credit_price)
    is_itc = np.array([c == "itc" for c in credit])
    is_ptc = np.array([c == "ptc" for c in credit])
    units = _number(pr, "credit_units_per_year", 0.0)
    bonus, dep_row, dep_rates = _tax_schedules(pr, sectors, config)
    funding = [FUNDING_SOURCES.index(f) for f in _text(pr, "jbic_funding", deal.funding.default)]
    yen_default = np.array([1.0 if f == 1 else 0.0 for f in funding])
    offtake_years = _number(pr, "offtake_years", np.nan)
    offtake_q = np.where(np.isnan(offtake_years), life, np.round(4.0 * offtake_years))
    growth = [1.0 + getattr(deal.funding, name) for name in FUNDING_SOURCES]
    # yen funding swapped to dollars at covered interest parity costs JBIC's USD rate + basis
    growth.append((1.0 + deal.funding.usd_bonds) * (1.0 + deal.funding.basis))
    t1 = np.arange(1, H + 1, dtype=np.float64)
    discount = np.stack([np.float64(g**-0.25) ** t1 for g in growth])
    infl = sc.inflation
    infl_r0 = infl.mean if infl.initial is None else infl.initial
    infl_a, infl_b = _ou(infl.reversion, infl.vol)
    units_text = [u.lower() for u in _text(pr, "credit_unit", "")]
    statute_indexed = np.array([("mwh" in u) or ("co2" in u) for u in units_text], dtype=float)
    fuel = _fuel_shares(pr, ids) if sc.fuel_follows_gas else np.zeros(len(ids))
    stack_cfg = deal.stack
    positions = _text(pr, "stack_position", stack_cfg.position)
    for pid, pos in zip(ids, positions, strict=True):
        if pos not in STACK_CODES:
            raise ScenarioError(
                f"projects.csv row '{pid}', column 'stack_position': '{pos}' is not one of"
                f" {list(STACK_CODES)}"
            )
    hurdle = _number(pr, "stack_hurdle", stack_cfg.hurdle)
    default_omega = (
        np.minimum(1.0, _floats(pr["max_fund_share"]) / (1.0 - debt))
        if stack_cfg.fund_equity_share is None
        else float(stack_cfg.fund_equity_share)
    )
    omega = _number(pr, "fund_equity_share", default_omega)
    realloc = deal.reallocation

    rho_ol = float(sc.overrun_labour_corr)
    rho = float(sc.sector_correlation)
    ch = catalog.chokepoints
    return EngineInputs(
        project_entity=np.array([project_entity(e) for e in entities], dtype=np.uint32),
        q0=q0,
        build_quarters=build,
        life_quarters=life,
        unit=_floats(pr["revenue_usd_per_year"]) / cost / 4.0 * leverage,
        opex_share=_floats(pr["opex_share"]),
        factor=factor,
        beta=_floats(pr["price_beta"]),
        offtake_share=_floats(pr["offtake_share"]),
        offtake_floor=_floats(pr["offtake_floor"]),
        overrun_median=med,
        overrun_sigma=np.log((1.0 + p90) / (1.0 + med)) / Z90,
        delay_median=_floats(pr["delay_median_quarters"]),
        permit_mult=np.array([sc.permitting[t].multiplier for t in tracks], dtype=np.float64),
        permit_vol=np.array([sc.permitting[t].vol for t in tracks], dtype=np.float64),
        intensity=_floats(pr["workers_per_year"]) / (cost / 1e9) / 1000.0,
        backlog=np.array([s in sc.backlog.sectors for s in sectors], dtype=np.int32),
        sector=np.array([SECTORS.index(s) for s in sectors], dtype=np.int32),
        fail_threshold=_norm_ppf(_floats(pr["failure_prob"])),
        spread=_floats(pr["spread"]),
        leverage=np.ascontiguousarray(leverage),
        senior_spread=np.ascontiguousarray(_number(pr, "senior_spread", deal.senior_debt.spread)),
        senior_tenor=np.round(
            4.0 * _number(pr, "senior_tenor_years", deal.senior_debt.tenor_years)
        ).astype(np.int32),
        annuity=np.array(
            [a == "annuity" for a in _text(pr, "senior_amortisation", "annuity")], dtype=np.int32
        ),
        offtake_quarters=offtake_q.astype(np.int32),
        bonus_share=np.ascontiguousarray(bonus),
        dep_row=dep_row,
        itc=np.where(is_itc, credit_rate * price, 0.0),
        ptc_unit=np.where(is_ptc, credit_rate * units / 4.0 / cost * leverage * price, 0.0),
        credit_quarters=np.round(4.0 * _number(pr, "credit_years", 10.0)).astype(np.int32),
        funding=np.array(funding, dtype=np.int32),
        yen_share=np.ascontiguousarray(_number(pr, "yen_share", yen_default)),
        indexation=np.ascontiguousarray(_number(pr, "indexation", 1.0)),
        offtake_indexed=np.ascontiguousarray(_number(pr, "offtake_indexed", 0.0)),
        credit_indexed=np.ascontiguousarray(_number(pr, "credit_indexed", statute_indexed)),
        fuel_share=np.ascontiguousarray(fuel),
        stack=np.array([STACK_CODES[p] for p in positions], dtype=np.int32),
        hurdle_growth=np.ascontiguousarray(hurdle * 0.25 + 1.0),
        fund_equity=np.ascontiguousarray(omega),
        chokepoint_entity=np.array([chokepoint_entity(str(i)) for i in ch.index], dtype=np.uint32),
        exposed=np.array([1.0 if _bool(x) else 0.0 for x in ch["china_exposed"]], dtype=np.float64),
        ou_a=np.array([a for a, _ in a_b], dtype=np.float64),
        ou_b=np.array([b for _, b in a_b], dtype=np.float64),
        sofr_theta=float(sc.sofr.mean),
        sofr_r0=float(sc.sofr.initial),
        sofr_floor=float(sc.sofr.floor),
        infl_theta=float(infl.mean),
        infl_r0=float(infl_r0),
        infl_a=float(infl_a),
        infl_b=float(infl_b),
        infl_rho=float(infl.sofr_corr),
        infl_perp=math.sqrt(1.0 - infl.sofr_corr * infl.sofr_corr),
        escalates=int(not (infl.mean == 0.0 and infl_r0 == 0.0 and infl.vol == 0.0)),
        fx_parity=int(deal.funding.fx_parity),
        jump=np.array([sc.factors[name].coercion_jump for name in FACTORS], dtype=np.float64),
        chol=np.ascontiguousarray(chol),
        p_start=1.0 - math.exp(-sc.coercion.rate_per_year * DT),
        p_end=1.0 / sc.coercion.mean_duration_quarters,
        horizon=H,
        max_delay=D,
        w0=int(w0),
        w1=int(w1),
        window_len=int(w1 - w0 + 1),
        ramp_quarters=int(sc.ramp_quarters),
        tax_rate=float(sc.tax_rate),
        nol_limit=float(sc.tax.nol_limit),
        salvage_share=float(sc.salvage_share),
        dep_rates=dep_rates,
        share_before=float(deal.japan_share_until_recovered),
        share_after=float(deal.japan_share_after),
        semiannual=int(deal.compounding == "semiannual"),
        shortfall_accrues=int(deal.shortfall_accrues),
        realloc_quarters=round(4.0 * realloc.after_years) if realloc.enabled else REALLOCATION_OFF,
        realloc_share=float(realloc.japan_share),
        discount=np.ascontiguousarray(discount),
        labour_delay_beta=float(sc.labour_delay_beta),
        overrun_labour_corr=rho_ol,
        overrun_labour_perp=math.sqrt(1.0 - rho_ol * rho_ol),
        backlog_mean=float(sc.backlog.mean_quarters),
        backlog_vol=float(sc.backlog.vol_quarters),
        sector_rho=rho,
        sector_load=math.sqrt(rho),
        sector_perp=math.sqrt(1.0 - rho),
        stress_vol=float(sc.stress_vol),
        stress_half_var=0.5 * sc.stress_vol * sc.stress_vol,
        stress_uplift=float(sc.coercion.stress_uplift),
        key=key_of_seed(config.seed),
        project_ids=ids,
        chokepoint_ids=tuple(str(i) for i in ch.index),
    )
