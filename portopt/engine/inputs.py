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

from portopt.catalog import Catalog, chokepoint_entity, project_entity
from portopt.config import RunConfig, quarter_index
from portopt.engine.philox import key_of_seed
from portopt.errors import ScenarioError
from portopt.vocabulary import FACTORS, SECTORS

DT = 0.25
"""Years per quarter."""

Z90 = 1.2815515655446004
"""Φ⁻¹(0.9): the P90 of a standard normal."""

DELAY_CAP_QUARTERS = 1.0e6
"""``Dc`` is capped here before ``floor`` so the integer delay never overflows (never binds)."""


@dataclass(frozen=True, eq=False)
class EngineInputs:
    """The scenario model's parameters, flattened for the engines (docs/scenario-model.md).

    Per project (arrays of shape ``(P,)``, catalog order):

    * ``project_entity`` uint32: Philox entity ``0x80000000 | (fnv1a(id) & 0x7fffffff)``.
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

    Per chokepoint (shape ``(C,)``): ``chokepoint_entity`` uint32
    (``0x40000000 | (fnv1a(id) & 0x3fffffff)``) and ``exposed`` float64 (0.0 or 1.0).

    Market path (index ``k`` runs over the six factors, then SOFR at 6):

    * ``ou_a`` (7,) float64: ``a_k = exp(-κ_k dt)`` (``a_6`` is SOFR's ``a_r``).
    * ``ou_b`` (7,) float64: ``b_k = σ_k sqrt((1 - a_k²) / (2 κ_k))``, ``σ_k sqrt(dt)`` if κ = 0.
    * ``sofr_theta``, ``sofr_r0``, ``sofr_floor``: SOFR's mean ``θ``, ``r[-1]`` and floor.
    * ``jump`` (6,) float64: ``J_k``, added to the log factor while coercion lasts.
    * ``chol`` (7, 7) float64: lower Cholesky factor of ``correlation + 1e-12 I``.
    * ``p_start``: ``1 - exp(-rate_per_year · dt)``; ``p_end``: ``1 / mean_duration_quarters``.

    Schedule, waterfall and scalars:

    * ``horizon`` ``H``; ``w0``, ``w1``: the window's quarters clipped to ``[0, H-1]``;
      ``window_len`` ``W = w1 - w0 + 1``.
    * ``ramp_quarters`` (int; ``(age + 1) / ramp_quarters`` is a double division).
    * ``tax_rate``, ``salvage_share``.
    * ``v``: ``(1 + japan_funding_rate)^(-1/4)``; ``discount`` (H,) float64: ``v^(t+1)``
      (``v ** (t + 1)`` in NumPy float64), the table both engines multiply by.
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
    # per chokepoint
    chokepoint_entity: np.ndarray
    exposed: np.ndarray
    # market path
    ou_a: np.ndarray
    ou_b: np.ndarray
    sofr_theta: float
    sofr_r0: float
    sofr_floor: float
    jump: np.ndarray
    chol: np.ndarray
    p_start: float
    p_end: float
    # schedule, waterfall, scalars
    horizon: int
    w0: int
    w1: int
    window_len: int
    ramp_quarters: int
    tax_rate: float
    salvage_share: float
    v: float
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


def prepare_inputs(catalog: Catalog, config: RunConfig) -> EngineInputs:
    """Flatten ``catalog`` and ``config`` into :class:`EngineInputs` (see its field list).

    Raises :class:`ScenarioError` when the strategic window lies outside the horizon or the
    catalog has no project.
    """
    sc = config.scenarios
    pr = catalog.projects
    ids = tuple(str(i) for i in pr.index)
    if not ids:
        raise ScenarioError("the catalog has no project to simulate")
    H = int(sc.horizon_quarters)

    cost = _floats(pr["base_cost_usd"])
    q0 = np.array(
        [max(0, quarter_index(str(q), sc.start)) for q in pr["earliest_start"]], dtype=np.int32
    )
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
    if w1 < 0 or w0 > H - 1:
        raise ScenarioError(
            f"the strategic window {sc.window[0]}..{sc.window[1]} lies outside the"
            f" horizon of {H} quarters from {sc.start}; move scenarios.window or"
            " lengthen scenarios.horizon_quarters"
        )
    w0, w1 = max(w0, 0), min(w1, H - 1)

    v = (1.0 + sc.japan_funding_rate) ** -0.25
    rho_ol = float(sc.overrun_labour_corr)
    rho = float(sc.sector_correlation)
    ch = catalog.chokepoints
    return EngineInputs(
        project_entity=np.array([project_entity(i) for i in ids], dtype=np.uint32),
        q0=q0,
        build_quarters=_ints(pr["build_quarters"]),
        life_quarters=(4 * _ints(pr["life_years"])).astype(np.int32),
        unit=_floats(pr["revenue_usd_per_year"]) / cost / 4.0,
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
        chokepoint_entity=np.array([chokepoint_entity(str(i)) for i in ch.index], dtype=np.uint32),
        exposed=np.array([1.0 if _bool(x) else 0.0 for x in ch["china_exposed"]], dtype=np.float64),
        ou_a=np.array([a for a, _ in a_b], dtype=np.float64),
        ou_b=np.array([b for _, b in a_b], dtype=np.float64),
        sofr_theta=float(sc.sofr.mean),
        sofr_r0=float(sc.sofr.initial),
        sofr_floor=float(sc.sofr.floor),
        jump=np.array([sc.factors[name].coercion_jump for name in FACTORS], dtype=np.float64),
        chol=np.ascontiguousarray(chol),
        p_start=1.0 - math.exp(-sc.coercion.rate_per_year * DT),
        p_end=1.0 / sc.coercion.mean_duration_quarters,
        horizon=H,
        w0=int(w0),
        w1=int(w1),
        window_len=int(w1 - w0 + 1),
        ramp_quarters=int(sc.ramp_quarters),
        tax_rate=float(sc.tax_rate),
        salvage_share=float(sc.salvage_share),
        v=v,
        discount=np.float64(v) ** np.arange(1, H + 1, dtype=np.float64),
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
