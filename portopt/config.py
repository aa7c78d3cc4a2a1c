"""The run configuration: a validated schema, YAML loading and dotted overrides.

Defaults live in ``configs/default.yaml``; the schema's own defaults are the same numbers so a
config file only has to say what differs. Every parameter of the scenario model cites its
grounding in ``portopt/data/README.md`` and ``docs/scenario-model.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from portopt.errors import ConfigError, Problem, did_you_mean
from portopt.vocabulary import FACTORS, PERMITTING_TRACKS, SECTORS, grid_regions

_QUARTER = re.compile(r"(\d{4})Q([1-4])", re.ASCII)
SCENARIO_INDICES = 2**32
"""Scenario indices are Philox counters of 32 bits: every scenario lies in [0, 2^32)
(docs/scenario-model.md)."""


def quarter_index(label: str, start: str) -> int:
    """Quarters from ``start`` to ``label`` (both ``YYYYQn``); negative when earlier."""
    y0, q0 = _parse_quarter(start)
    y1, q1 = _parse_quarter(label)
    return (y1 - y0) * 4 + (q1 - q0)


@lru_cache(maxsize=4096)
def _parse_quarter(label: str) -> tuple[int, int]:
    m = _QUARTER.fullmatch(label)
    if not m:
        raise ValueError(f"'{label}' is not a quarter like 2026Q1")
    return int(m.group(1)), int(m.group(2))


def parse_quarter(label: str) -> tuple[int, int]:
    """``YYYYQn`` as (year, quarter); ValueError for anything else."""
    return _parse_quarter(label)


def _numeric(annotation: Any) -> bool:
    """Whether a field holds a number (int or float, or None), and never a bool."""
    args = get_args(annotation) if get_origin(annotation) is not None else (annotation,)
    kinds = {a for a in args if a is not type(None)}
    return bool(kinds) and kinds <= {int, float}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: Any) -> Any:
        """YAML's ``true``/``false`` is not a number: pydantic would read it as 1 or 0."""
        field = cls.model_fields.get(info.field_name) if info.field_name else None
        if isinstance(value, bool) and field is not None and _numeric(field.annotation):
            raise ValueError("expected a number, not true or false")
        return value


class _Loader(yaml.SafeLoader):
    """YAML as the config reads it: a date-like scalar stays text, so the field that holds it
    checks it and names itself (PyYAML's own date constructor raises a bare ``ValueError`` on
    ``2029-02-30``)."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def _unique_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    """A mapping whose keys are each given once: PyYAML keeps the last of a repeated key
    silently, so a config that sets ``seed`` twice would run with the second."""
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (list, dict, set)):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a key must be a name, got a {type(key).__name__}",
                key_node.start_mark,
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"'{key}' is given twice in one mapping (also line {seen[key].line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def parse_yaml(text: str) -> Any:
    """``text`` read as YAML by :class:`_Loader`; raises :class:`yaml.YAMLError` when it is not
    YAML."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: builds no Python objects
    except RecursionError:  # PyYAML composes nested nodes recursively
        raise yaml.YAMLError(
            f"nested more than about {sys.getrecursionlimit() // 4:,} levels deep"
        ) from None


class SofrConfig(_Strict):
    """6-month SOFR as a mean-reverting (Vasicek) short rate, floored."""

    initial: float = Field(0.037, ge=-0.05, le=0.3)
    mean: float = Field(0.035, ge=-0.05, le=0.3)
    reversion: float = Field(0.25, ge=0.0, le=10.0, description="per year")
    vol: float = Field(0.008, ge=0.0, le=0.2, description="per sqrt(year)")
    floor: float = Field(0.0, ge=-0.05, le=0.3)


class InflationConfig(_Strict):
    """US CPI inflation as a mean-reverting (Ornstein-Uhlenbeck) annual rate, its shocks
    correlated with SOFR's: the index that escalates revenue, opex and indexed credits
    (docs/scenario-model.md, "Inflation"). ``mean = 0``, ``vol = 0`` (and ``initial`` blank or 0)
    is the real-money engine of before, bit for bit.

    Defaults: ``mean`` 0.023, the 10-year breakeven (FRED T10YIE, 2.35% on 7 Aug 2025; monthly
    2.38% Jul 2025), which sits 0.3 above the Fed's 2% PCE target (CPI runs above PCE) and with
    CBO's Sept 2025 outlook (PCE 2.4% in 2026, 2.0% from 2027); ``initial`` blank: starts at the
    mean. ``reversion`` 0.5/yr and ``vol`` 0.01 (a stationary sd of 1 point a year) and
    ``sofr_corr`` 0.5 are estimates: CPI inflation and the fed funds rate correlate about 0.71 in
    levels (FRED CPIAUCSL and FEDFUNDS, stidmatt.com 2022) and between -0.47 and +0.19 in
    monthly changes by episode (econcurrents.com 2024); the shocks' 0.5 lies between (a policy
    rate that follows inflation, the Taylor principle)."""

    mean: float = Field(0.023, ge=-0.1, le=0.5, description="per year")
    initial: float | None = Field(None, ge=-0.1, le=0.5, description="null: the mean")
    reversion: float = Field(0.5, ge=0.0, le=10.0, description="per year")
    vol: float = Field(0.01, ge=0.0, le=0.2, description="per sqrt(year)")
    sofr_corr: float = Field(0.5, ge=-1.0, le=1.0, description="correlation with SOFR's shocks")


class FactorConfig(_Strict):
    """A log market factor: Ornstein-Uhlenbeck around 0 (today's level), plus coercion jumps."""

    reversion: float = Field(0.5, ge=0.0, le=10.0, description="per year")
    vol: float = Field(0.2, ge=0.0, le=3.0, description="per sqrt(year)")
    coercion_jump: float = Field(
        0.0, ge=-2.0, le=3.0, description="added to the log factor while an episode lasts"
    )


def _default_factors() -> dict[str, FactorConfig]:
    return {
        "power": FactorConfig(reversion=0.6, vol=0.20, coercion_jump=0.05),
        "gas": FactorConfig(reversion=0.8, vol=0.35, coercion_jump=0.05),
        "ndpr": FactorConfig(reversion=0.4, vol=0.35, coercion_jump=0.6),
        "copper": FactorConfig(reversion=0.5, vol=0.22, coercion_jump=0.1),
        "chip_demand": FactorConfig(reversion=0.5, vol=0.25, coercion_jump=0.15),
        "usdjpy": FactorConfig(reversion=0.3, vol=0.10, coercion_jump=0.0),
    }


def _default_correlation() -> list[list[float]]:
    # order: power, gas, ndpr, copper, chip_demand, usdjpy, sofr
    return [
        [1.00, 0.60, 0.05, 0.20, 0.30, 0.00, 0.10],
        [0.60, 1.00, 0.05, 0.20, 0.10, 0.00, 0.10],
        [0.05, 0.05, 1.00, 0.30, 0.20, 0.00, 0.00],
        [0.20, 0.20, 0.30, 1.00, 0.40, -0.10, 0.10],
        [0.30, 0.10, 0.20, 0.40, 1.00, -0.10, 0.00],
        [0.00, 0.00, 0.00, -0.10, -0.10, 1.00, 0.30],
        [0.10, 0.10, 0.00, 0.10, 0.00, 0.30, 1.00],
    ]


class CoercionConfig(_Strict):
    """Export-restriction episodes: Poisson starts, geometric durations."""

    rate_per_year: float = Field(0.2, ge=0.0, le=20.0)
    mean_duration_quarters: float = Field(4.0, ge=1.0, le=80.0)
    stress_uplift: float = Field(
        1.0,
        ge=0.0,
        le=20.0,
        description="added to a China-exposed chokepoint's stress per unit"
        " of window share under coercion",
    )


class PermittingConfig(_Strict):
    """Delay multiplier and log-volatility for one permitting track."""

    multiplier: float = Field(1.0, gt=0.0, le=10.0)
    vol: float = Field(0.5, ge=0.0, le=3.0)


def _default_permitting() -> dict[str, PermittingConfig]:
    return {
        "federal": PermittingConfig(multiplier=1.5, vol=0.6),
        "state": PermittingConfig(multiplier=1.0, vol=0.4),
        "mixed": PermittingConfig(multiplier=1.25, vol=0.5),
    }


class BacklogConfig(_Strict):
    """Equipment backlog (turbines, transformers): extra quarters for the exposed sectors."""

    mean_quarters: float = Field(2.0, ge=0.0, le=40.0)
    vol_quarters: float = Field(1.5, ge=0.0, le=40.0)
    sectors: list[str] = Field(default_factory=lambda: ["energy", "ai_infrastructure"])

    @field_validator("sectors")
    @classmethod
    def _known_sectors(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in SECTORS]
        if bad:
            raise ValueError(f"unknown sector(s) {bad}; expected some of {list(SECTORS)}")
        return v


class SectorTaxConfig(_Strict):
    """A sector's default tax depreciation (for catalog rows that leave it blank)."""

    tax_life_years: float = Field(ge=1.0, le=60.0, description="MACRS GDS recovery period")
    bonus_share: float = Field(ge=0.0, le=1.0, description="share of cost expensed at once")


def _default_sector_tax() -> dict[str, SectorTaxConfig]:
    # economics-facts.md 1a-1b: MACRS classes of Rev. Proc. 87-56 and the 100% bonus of OBBBA
    # for property of <= 20-year class acquired after 19 Jan 2025; the bonus share is the part
    # of cost that is such property (the rest: buildings, land) [E, see configs/default.yaml]
    years_bonus = {
        "semiconductors": (5.0, 0.7),
        "pharmaceuticals": (5.0, 0.7),
        "critical_minerals": (7.0, 0.7),
        "metals": (7.0, 0.7),
        "shipbuilding": (7.0, 0.7),
        "energy": (20.0, 0.85),
        "ai_infrastructure": (15.0, 0.5),
        "quantum": (5.0, 0.7),
    }
    return {
        s: SectorTaxConfig(tax_life_years=y, bonus_share=b) for s, (y, b) in years_bonus.items()
    }


class TaxConfig(_Strict):
    """Tax depreciation, loss carry-forward and federal credits (docs/scenario-model.md)."""

    nol_limit: float = Field(
        0.8, ge=0.0, le=1.0, description="share of taxable income a carried loss may offset"
    )
    credit_price: float = Field(
        0.93, ge=0.0, le=1.0, description="cash per dollar of credit sold under IRC 6418"
    )
    sectors: dict[str, SectorTaxConfig] = Field(default_factory=_default_sector_tax)
    conventions: Literal["tax_code", "full_year"] = Field(
        "tax_code",
        description="straight-line conventions: tax_code, mid-month for 27.5- and 39-year real"
        " property and half-year below (IRS Pub. 946); full_year, 1/L a year (the engine"
        " before issue 23)",
    )

    @field_validator("sectors")
    @classmethod
    def _every_sector(cls, v: dict[str, SectorTaxConfig]) -> dict[str, SectorTaxConfig]:
        if set(v) != set(SECTORS):
            raise ValueError(
                f"sectors must be exactly {list(SECTORS)}; missing {sorted(set(SECTORS) - set(v))},"
                f" unknown {sorted(set(v) - set(SECTORS))}"
            )
        return v


class ScenarioConfig(_Strict):
    """How many scenarios, over which quarters, and the parameters of the scenario model."""

    optimisation: int = Field(2000, ge=1, le=10_000_000)
    evaluation: int = Field(20000, ge=0, le=100_000_000)
    start: str = "2026Q1"
    max_delay_quarters: int = Field(
        80,
        ge=0,
        le=400,
        description="cap on a project's simulated delay; with the lives it fixes the simulated"
        " length (docs/scenario-model.md)",
    )
    window: tuple[str, str] = ("2028Q1", "2035Q4")
    chunk_memory_mb: float = Field(256.0, gt=0.0, le=1_000_000.0)
    threads: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="threads of the NumPy engine; null = every core this process may use (the"
        " numbers do not depend on it)",
    )
    tax_rate: float = Field(0.21, ge=0.0, le=1.0)
    tax: TaxConfig = Field(default_factory=TaxConfig)
    ramp_quarters: int = Field(4, ge=1, le=40)
    salvage_share: float = Field(
        0.0, ge=0.0, le=1.0, description="share of drawn capital recovered when a project fails"
    )
    sofr: SofrConfig = Field(default_factory=SofrConfig)
    inflation: InflationConfig = Field(default_factory=InflationConfig)
    fuel_follows_gas: bool = Field(
        True,
        description="the fuel share of fuel-burning rows' opex follows the gas factor"
        " (portopt/data/fuel.csv)",
    )
    factors: dict[str, FactorConfig] = Field(default_factory=_default_factors)
    correlation: list[list[float]] = Field(default_factory=_default_correlation)
    coercion: CoercionConfig = Field(default_factory=CoercionConfig)
    stress_vol: float = Field(0.15, ge=0.0, le=3.0)
    labour_delay_beta: float = Field(
        0.25,
        ge=0.0,
        le=5.0,
        description="log-delay per unit of labour tightness per 1,000 workers per $B",
    )
    overrun_labour_corr: float = Field(0.3, ge=-1.0, le=1.0)
    permitting: dict[str, PermittingConfig] = Field(default_factory=_default_permitting)
    backlog: BacklogConfig = Field(default_factory=BacklogConfig)
    sector_correlation: float = Field(
        0.3, ge=0.0, lt=1.0, description="Gaussian-copula loading of failures on the sector factor"
    )

    @field_validator("start")
    @classmethod
    def _quarter(cls, v: str) -> str:
        _parse_quarter(v)
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: tuple[str, str]) -> tuple[str, str]:
        _parse_quarter(v[0])
        _parse_quarter(v[1])
        if quarter_index(v[1], v[0]) < 0:
            raise ValueError(f"window end {v[1]} is before its start {v[0]}")
        return v

    @field_validator("factors")
    @classmethod
    def _factor_names(cls, v: dict[str, FactorConfig]) -> dict[str, FactorConfig]:
        if set(v) != set(FACTORS):
            missing = sorted(set(FACTORS) - set(v))
            unknown = sorted(set(v) - set(FACTORS))
            raise ValueError(
                f"factors must be exactly {list(FACTORS)}; missing {missing}, unknown {unknown}"
            )
        return {k: v[k] for k in FACTORS}

    @field_validator("permitting")
    @classmethod
    def _tracks(cls, v: dict[str, PermittingConfig]) -> dict[str, PermittingConfig]:
        need = set(PERMITTING_TRACKS)
        if set(v) != need:
            raise ValueError(f"permitting must have exactly the tracks {sorted(need)}")
        return v

    @field_validator("correlation")
    @classmethod
    def _psd(cls, v: list[list[float]]) -> list[list[float]]:
        n = len(FACTORS) + 1
        lengths = [len(row) for row in v]
        if len(v) != n or any(k != n for k in lengths):
            raise ValueError(
                f"correlation must be {n}x{n} (factors {list(FACTORS)} then sofr), got"
                f" {len(v)} rows of {', '.join(map(str, lengths)) or 'no'} values"
            )
        a = np.asarray(v, dtype=float)
        if a.shape != (n, n):
            raise ValueError(
                f"correlation must be {n}x{n} (factors {list(FACTORS)} then sofr),"
                f" got shape {a.shape}"
            )
        if not np.allclose(a, a.T) or not np.allclose(np.diag(a), 1.0):
            raise ValueError("correlation must be symmetric with a unit diagonal")
        if np.linalg.eigvalsh(a).min() < -1e-10:
            raise ValueError("correlation is not positive semi-definite")
        return v

    @model_validator(mode="after")
    def _window_inside_span(self) -> ScenarioConfig:
        # The simulation runs from `start` to every project's end (longer than any window), so
        # the one bound a window can break is the start: quarters before it are not simulated.
        if quarter_index(self.window[0], self.start) < 0:
            raise ValueError(
                f"window {self.window[0]}..{self.window[1]} begins before scenarios.start"
                f" {self.start}, and quarters before the start are not simulated; move"
                " scenarios.window or scenarios.start"
            )
        return self

    def window_quarters(self) -> tuple[int, int]:
        """The strategic window as [first, last] quarter indices from ``start`` (inclusive)."""
        return quarter_index(self.window[0], self.start), quarter_index(self.window[1], self.start)


class GroupConfig(_Strict):
    enabled: bool = True


class CapitalConfig(GroupConfig):
    annual_commitment_cap_usd: float | None = Field(None, gt=0.0)


class RecoupmentConfig(GroupConfig):
    alpha: float = Field(0.95, gt=0.0, lt=1.0)
    max_shortfall_share: float = Field(
        0.5, ge=0.0, le=2.0, description="CVaR_alpha of Japan's PV shortfall / capital"
    )
    min_expected_recovery: float | None = Field(
        0.95, ge=0.0, le=5.0, description="expected PV of Japan's receipts / PV of its draws"
    )


def _default_sector_bounds() -> dict[str, tuple[float, float]]:
    return {s: (0.0, 0.7) for s in SECTORS}


class SectorSharesConfig(GroupConfig):
    bounds: dict[str, tuple[float, float]] = Field(default_factory=_default_sector_bounds)

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for sector, (lo, hi) in v.items():
            if sector not in SECTORS:
                raise ValueError(f"unknown sector '{sector}'; expected one of {list(SECTORS)}")
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(
                    f"bounds of '{sector}' must satisfy 0 <= min <= max <= 1, got [{lo}, {hi}]"
                )
        return v


class JapanContentConfig(GroupConfig):
    floor: float = Field(0.15, ge=0.0, le=1.0)


def _known_regions(limits: dict[str, float], with_year: bool) -> dict[str, float]:
    """Refuse a per-region limit keyed by an unknown region (``REGION`` or, ``with_year``,
    ``REGION:YEAR``): it would apply to nothing, silently."""
    regions = grid_regions()
    for key in limits:
        region = key.split(":", 1)[0] if with_year else key
        if region not in regions:
            raise ValueError(
                f"'{key}': '{region}' is not a grid region{did_you_mean(region, regions)}"
                f" (portopt/data/regions.csv)"
            )
    return limits


class PowerBalanceConfig(GroupConfig):
    headroom_mw: dict[str, Annotated[float, Field(ge=0.0)]] = Field(default_factory=dict)
    default_headroom_mw: float = Field(2000.0, ge=0.0)

    @field_validator("headroom_mw")
    @classmethod
    def _regions(cls, v: dict[str, float]) -> dict[str, float]:
        return _known_regions(v, with_year=False)


class WorkforceConfig(GroupConfig):
    available_per_region_year: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=dict
    )
    default_available: float = Field(60000.0, ge=0.0)

    @field_validator("available_per_region_year")
    @classmethod
    def _regions(cls, v: dict[str, float]) -> dict[str, float]:
        return _known_regions(v, with_year=True)


class MaxProjectsConfig(GroupConfig):
    enabled: bool = False
    limit: int = Field(30, ge=0)


class SponsorCapConfig(GroupConfig):
    max_usd: float = Field(1.2e11, gt=0.0)


class ReviewCapacityConfig(GroupConfig):
    per_quarter: int = Field(8, ge=0)


class JbicCapacityConfig(GroupConfig):
    """JBIC's yearly funding capacity: the fund's planned disbursements per Japanese fiscal year
    (April to March), each project's amount spread evenly over its planned build quarters."""

    per_fiscal_year_usd: float = Field(8.0e10, gt=0.0)


class GroupsConfig(_Strict):
    """The constraint groups of the allocation model, each switchable."""

    capital: CapitalConfig = Field(default_factory=CapitalConfig)
    recoupment: RecoupmentConfig = Field(default_factory=RecoupmentConfig)
    sector_shares: SectorSharesConfig = Field(default_factory=SectorSharesConfig)
    japan_content: JapanContentConfig = Field(default_factory=JapanContentConfig)
    power_balance: PowerBalanceConfig = Field(default_factory=PowerBalanceConfig)
    workforce: WorkforceConfig = Field(default_factory=WorkforceConfig)
    dependencies: GroupConfig = Field(default_factory=GroupConfig)
    exclusions: GroupConfig = Field(default_factory=GroupConfig)
    proposals: GroupConfig = Field(default_factory=GroupConfig)
    max_projects: MaxProjectsConfig = Field(default_factory=MaxProjectsConfig)
    sponsor_cap: SponsorCapConfig = Field(default_factory=SponsorCapConfig)
    review_capacity: ReviewCapacityConfig = Field(default_factory=ReviewCapacityConfig)
    jbic_capacity: JbicCapacityConfig = Field(default_factory=JbicCapacityConfig)


class ModelConfig(_Strict):
    """The allocation model: budget, objective weights and constraint groups (USD in, $B inside)."""

    budget_usd: float = Field(5.5e11, gt=0.0)
    min_deployment_usd: float = Field(0.0, ge=0.0)
    coverage_cvar_weight: float = Field(0.0, ge=0.0, le=1.0)
    coverage_cvar_alpha: float = Field(0.9, gt=0.0, lt=1.0)
    recovery_tiebreak: float = Field(
        1e-3,
        ge=0.0,
        le=1.0,
        description="weight on expected Japan net PV per $B of budget,"
        " so that the amounts are chosen, not left to the solver",
    )
    groups: GroupsConfig = Field(default_factory=GroupsConfig)

    @model_validator(mode="after")
    def _deployment(self) -> ModelConfig:
        if self.min_deployment_usd > self.budget_usd:
            raise ValueError(
                f"min_deployment_usd {self.min_deployment_usd:g} exceeds budget_usd"
                f" {self.budget_usd:g}"
            )
        return self


class SolverConfig(_Strict):
    """How the model is solved. ``name``: ``auto`` and ``highs_direct`` solve the cut model in
    HiGHS, ``highs`` and ``cuopt`` the full CVXPY model (:func:`portopt.model.formulation`)."""

    name: Literal["auto", "highs", "cuopt", "highs_direct"] = "auto"
    time_limit_s: float = Field(300.0, gt=0.0)
    mip_gap: float = Field(0.0005, ge=0.0, le=1.0)
    node_limit: int | None = Field(20000, ge=1)
    threads: int | None = Field(None, ge=1)
    verbose: bool = False


class OutputConfig(_Strict):
    dir: str = "runs/default"
    overwrite: bool = True
    scenarios_parquet: bool = True
    report: bool = True


class FundingConfig(_Strict):
    """JBIC's funding sources: the annual cost of each, which discounts Japan's cash."""

    default: Literal["usd_bonds", "yen_loans", "reserves"] = "usd_bonds"
    usd_bonds: float = Field(0.047, ge=-0.05, le=0.5)
    yen_loans: float = Field(0.017, ge=-0.05, le=0.5)
    reserves: float = Field(0.041, ge=-0.05, le=0.5)
    fx_parity: bool = Field(
        True,
        description="USD/JPY centred on the forwards (covered interest parity); false: around"
        " today's spot with no drift (the engine before issue 23)",
    )
    basis: float = Field(
        0.0,
        ge=-0.05,
        le=0.05,
        description="annual cost of yen funding swapped to dollars over JBIC's USD cost (the"
        " cross-currency basis and any difference in JBIC's spreads); 0 by default",
    )


class SeniorDebtConfig(_Strict):
    """Defaults for the senior debt of catalog rows that leave its terms blank."""

    spread: float = Field(0.02, ge=0.0, le=0.2, description="over SOFR, annual")
    tenor_years: float = Field(15.0, ge=1.0, le=40.0)


class ReallocationConfig(_Strict):
    """Korea MOU: distributions re-allocated when the claim is clearly unrecoverable."""

    enabled: bool = False
    after_years: float = Field(20.0, gt=0.0, le=100.0, description="from the first draw")
    japan_share: float = Field(1.0, gt=0.0, le=1.0, description="Japan's split from then on")


STACK_POSITIONS = ("pari_passu", "preferred", "senior")
"""The fund's place against the sponsor's equity (docs/scenario-model.md, "The fund's place in
the stack")."""


class StackConfig(_Strict):
    """The fund's place in the junior capital, against the sponsor's equity: a term of each deal
    (catalog columns ``stack_position``, ``stack_hurdle``, ``fund_equity_share`` override it per
    row). ``pari_passu`` is the engine before issue 23; the hurdle and the positions are policy
    choices, not MOU text."""

    position: Literal["pari_passu", "preferred", "senior"] = "pari_passu"
    hurdle: float = Field(
        0.08, ge=0.0, le=0.5, description="annual preferred return of the fund (illustrative)"
    )
    fund_equity_share: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="the fund's share of the junior capital; null: min(1, max_fund_share /"
        " (1 - senior_debt_share)) per row",
    )


class DealConfig(_Strict):
    """The MOU's terms: the splits, the deemed rate's compounding, JBIC's funding, the senior
    debt defaults and the optional Korea-MOU protections (docs/scenario-model.md)."""

    japan_share_until_recovered: float = Field(0.5, gt=0.0, le=1.0)
    japan_share_after: float = Field(0.1, ge=0.0, le=1.0)
    compounding: Literal["quarterly", "semiannual"] = "semiannual"
    shortfall_accrues: bool = Field(
        True, description="whether deemed interest carried unpaid earns the deemed rate"
    )
    funding: FundingConfig = Field(default_factory=FundingConfig)
    senior_debt: SeniorDebtConfig = Field(default_factory=SeniorDebtConfig)
    reallocation: ReallocationConfig = Field(default_factory=ReallocationConfig)
    stack: StackConfig = Field(default_factory=StackConfig)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


class DeclineConfig(_Strict):
    r"""Japan's option to decline a proposal: the probability falls with Japan's expected recovery
    ``r`` on the proposal, :math:`p = p_{\max} / (1 + \exp((r - r_{50}) / s))`."""

    enabled: bool = True
    max_prob: float = Field(0.5, ge=0.0, le=1.0)
    midpoint_recovery: float = Field(0.8, ge=0.0, le=5.0)
    scale: float = Field(0.1, gt=0.0, le=5.0)


class FrontierConfig(_Strict):
    """The plan frontier (``portopt plan``'s frontier.csv, :mod:`portopt.tradeoff`): the plan at
    each expected-recovery floor from the configured one down to ``lowest_floor``."""

    enabled: bool = True
    lowest_floor: float = Field(0.5, ge=0.0, le=5.0)
    floor_step: float = Field(0.05, gt=0.0, le=1.0)
    deployment_step_usd: float = Field(
        5e10,
        ge=0.0,
        description="deployment levels from the committed tranche to the most reachable, this"
        " far apart, each at the highest floor that admits it; 0: none",
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="solvers of the points (this process and workers - 1 processes beside it);"
        " null: every core",
    )


class AlternativesConfig(_Strict):
    """Near-optimal alternatives of the plan (:mod:`portopt.alternatives`, alternatives.csv)."""

    count: int = Field(0, ge=0, le=50, description="alternatives to find; 0: none")
    slack: float = Field(
        0.01, ge=0.0, le=0.5, description="share of the optimum's objective one may give up"
    )


class PlanConfig(_Strict):
    """The deployment plan (``portopt plan``): when each project is proposed, within which rules.

    A proposal made in quarter q (at its first business day) is decided ``review_business_days``
    business days later; the money is committed in the quarter of that decision and construction
    starts the quarter after, or at the project's ``earliest_start`` when that is later. A
    proposal is possible from ``first_quarter`` to the last quarter whose decision falls on or
    before ``deadline``.
    """

    first_quarter: str = "2027Q1"
    deadline: str = "2029-01-19"
    review_business_days: int = Field(45, ge=1, le=260)
    commitments: str | None = Field(
        None, description="CSV of decisions made (project, quarter, amount_usd); null: bundled"
    )
    target_usd: float = Field(5.5e11, ge=0.0)
    target: Literal["soft", "hard"] = "soft"
    shortfall_price: float = Field(
        0.005, ge=0.0, le=10.0, description="coverage score lost per $10B short of the target"
    )
    rounds_per_project: int | None = Field(
        None,
        ge=1,
        le=400,
        description="rounds a candidate may be proposed in, from the first that starts it at its"
        " earliest_start; null: every open round",
    )
    decline: DeclineConfig = Field(default_factory=DeclineConfig)
    frontier: FrontierConfig = Field(default_factory=FrontierConfig)
    alternatives: AlternativesConfig = Field(default_factory=AlternativesConfig)
    marginal: Literal["replan", "held"] = Field(
        "held",
        description="a project's value: replan (the best plan with it against the best without"
        " it, two full plans) or held (the rest of the plan held as chosen, a small re-solve)",
    )

    @field_validator("first_quarter")
    @classmethod
    def _quarter(cls, v: str) -> str:
        _parse_quarter(v)
        return v

    @field_validator("deadline", mode="before")
    @classmethod
    def _date(cls, v: object) -> str:
        v = str(v)  # YAML reads an unquoted 2029-01-19 as a date
        if not _DATE.fullmatch(v):
            raise ValueError(f"'{v}' is not a date like 2029-01-19")
        try:
            np.datetime64(v, "D")
        except ValueError:
            raise ValueError(f"'{v}' is not a calendar date") from None
        return v


class ProjectSupportConfig(_Strict):
    """US support for one project (:mod:`portopt.plan.support`); every value a policy choice."""

    capex_reduction: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of the base cost the US carries (land, power)"
    )
    delay_reduction_quarters: float = Field(
        0.0, ge=0.0, le=80.0, description="quarters of median delay expedited permitting saves"
    )
    price_floor: float | None = Field(
        None,
        ge=0.0,
        le=10.0,
        description="a floor on the price term (1.0 = today's price) the US guarantees on"
        " price_floor_share of the output, fixed in nominal dollars; replaces the row's offtake",
    )
    price_floor_share: float = Field(
        1.0, gt=0.0, le=1.0, description="share of the output under the price floor"
    )
    price_floor_years: float | None = Field(
        None, ge=0.0, le=100.0, description="the floor's term from completion; null: the life"
    )
    basis: str = "policy choice"


class SupportConfig(_Strict):
    """US support per project, by catalog id: a lever of the plan (whatif --set, --vary)."""

    projects: dict[str, ProjectSupportConfig] = Field(default_factory=dict)


class RunConfig(_Strict):
    """One run of portopt: what to read, how to simulate, what to optimise, where to write."""

    catalog: str | None = Field(None, description="folder of catalog CSVs; null: the bundled one")
    seed: int = Field(20260217, ge=0, lt=2**64)
    backend: Literal["auto", "numpy", "cupy"] = "auto"
    scenarios: ScenarioConfig = Field(default_factory=ScenarioConfig)
    deal: DealConfig = Field(default_factory=DealConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    plan: PlanConfig = Field(default_factory=PlanConfig)
    support: SupportConfig = Field(default_factory=SupportConfig)
    solver: SolverConfig = Field(default_factory=SolverConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @field_validator("catalog")
    @classmethod
    def _catalog_named(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("an empty path; give a catalog folder, or null for the bundled one")
        return v

    def digest(self) -> str:
        """A short hash of the full, resolved configuration (written to metrics.json)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


CONFIG_SUFFIX = ".yaml"


def configs_dir() -> Path:
    """The example configs: ``portopt/configs`` in an installed wheel, else the repository's
    ``configs/`` (an editable install)."""
    packaged = Path(str(resources.files("portopt") / "configs"))
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "configs"


def bundled_configs() -> dict[str, Path]:
    """The example configs by name (``default``, ``gpu_large``, ...)."""
    return {p.stem: p for p in sorted(configs_dir().glob(f"*{CONFIG_SUFFIX}"))}


def find_config(arg: str | Path) -> Path:
    """``arg`` as a config file: a path to a file, else the name of a bundled config.

    Raises :class:`ConfigError` naming the bundled configs when it is neither.
    """
    path = Path(arg)
    if path.is_file():
        return path
    bundled = bundled_configs()
    name = path.name.removesuffix(CONFIG_SUFFIX)
    if str(arg) in (name, name + CONFIG_SUFFIX) and name in bundled:
        return bundled[name]
    raise ConfigError(
        [
            Problem(
                str(arg),
                None,
                None,
                "no such config file, nor a bundled config of that name; the bundled ones are"
                f" {', '.join(bundled)} (write one out with `portopt init-config NAME`)",
            )
        ],
        "config not found",
    )


DEFAULTS = "<defaults>"
"""The source named for a value no file or override set: the schema's own default."""


@dataclass(frozen=True)
class Override:
    """One dotted assignment onto the configuration and where it came from.

    ``source`` is what a problem with it is reported against, e.g. ``--set seed=7``.
    """

    key: str
    value: Any
    source: str

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))


def split_assignment(item: str) -> tuple[str, str] | None:
    """``"a.b=raw"`` as ``("a.b", "raw")``; None unless it is KEY=VALUE with a dotted key."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        return None
    return key, raw


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for ``key = "a.b.c"``, creating missing sections.

    Raises :class:`ValueError` when a part of ``key`` already holds a value, not a section.
    """
    node = tree
    *head, last = key.split(".")
    for depth, part in enumerate(head):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            held = ".".join(head[: depth + 1])
            raise ValueError(
                f"'{held}' holds a value ({type(node).__name__}), not a section:"
                f" '{key}' cannot set a key inside it"
            )
    node[last] = value


def parse_overrides(items: list[str] | None) -> list[Override]:
    """``--set`` items (``["model.budget_usd=4e11", ...]``) as :class:`Override` s, each named
    ``--set KEY=VALUE`` in messages; values are parsed as YAML."""
    out, problems = [], []
    for item in items or []:
        parsed = split_assignment(item)
        if parsed is None:
            problems.append(
                Problem("--set", None, None, f"'{item}' is not KEY=VALUE with a dotted key")
            )
            continue
        key, raw = parsed
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        out.append(Override(key, value, f"--set {item}"))
    if problems:
        raise ConfigError(problems, "bad --set override")
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for k, v in tree.items():
        path = (*prefix, str(k))
        if isinstance(v, dict) and v:
            yield from _leaves(v, path)
        else:
            yield path


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str | Override] | dict[str, Any] | None = None,
) -> RunConfig:
    """Read a YAML config, apply dotted overrides, and validate, all over the schema's defaults.

    Both the file and the overrides merge into the defaults key by key: setting one field of a
    group leaves its siblings at their defaults (or at the file's values). ``overrides`` are
    ``KEY=VALUE`` strings (from ``--set``; one string alone is one override), :class:`Override`
    s, or a nested dict.

    Raises :class:`ConfigError` naming every bad key by its full dotted path and its source:
    the file, or the ``--set KEY=VALUE`` that set it, with "did you mean" for a misspelt key.
    """
    name = str(path) if path is not None else DEFAULTS
    data = _read_yaml(path) if path is not None else {}
    sources: dict[tuple[str, ...], str] = dict.fromkeys(_leaves(data), name)
    merged = _merge(RunConfig().model_dump(), data)
    problems = []
    for item in _as_overrides(overrides):
        try:
            set_dotted(merged, item.key, item.value)
        except ValueError as exc:
            problems.append(Problem(item.source, None, None, str(exc)))
            continue
        value = item.value
        leaves = _leaves(value, item.path) if isinstance(value, dict) and value else [item.path]
        sources.update(dict.fromkeys(leaves, item.source))
    if problems:
        raise ConfigError(problems, "bad override")
    try:
        cfg = RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_problems(sources, name, exc), "invalid configuration") from None
    if cfg.catalog is not None and path is not None and not Path(cfg.catalog).is_absolute():
        # a relative catalog path is relative to the config file, or to the working directory
        candidate = Path(path).parent / cfg.catalog
        if candidate.exists() and not Path(cfg.catalog).exists():
            cfg.catalog = str(candidate)
    return cfg


def _read_yaml(path: str | Path) -> dict[str, Any]:
    name, p = str(path), Path(path)
    if not p.is_file():
        raise ConfigError([Problem(name, None, None, "no such config file")])
    try:
        loaded = parse_yaml(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        raise ConfigError([Problem(name, row, None, f"not valid YAML: {exc}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(name, None, None, f"cannot be read: {exc}")]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError([Problem(name, None, None, "the top level must be a mapping")])
    return loaded


def _as_overrides(overrides: Sequence[str | Override] | dict[str, Any] | None) -> list[Override]:
    if isinstance(overrides, dict):
        return [
            Override(".".join(leaf), _get(overrides, leaf), "overrides")
            for leaf in _leaves(overrides)
        ]
    if isinstance(overrides, str):  # one KEY=VALUE, not a sequence of one-letter overrides
        overrides = [overrides]
    wrong = [o for o in overrides or [] if not isinstance(o, str | Override)]
    if wrong:
        raise ConfigError(
            [
                Problem(
                    "overrides",
                    None,
                    None,
                    f"expected 'KEY=VALUE' strings or a nested dict, got {wrong[0]!r}",
                )
            ],
            "bad overrides",
        )
    strings = [o for o in overrides or [] if isinstance(o, str)]
    parsed = iter(parse_overrides(strings))
    return [next(parsed) if isinstance(o, str) else o for o in overrides or []]


def _get(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _source(sources: dict[tuple[str, ...], str], loc: tuple[str, ...], name: str) -> str:
    """Who set the value at ``loc``: the longest source path above it, else every source below
    it (a check on a whole section), else the file."""
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in sources:
            return sources[loc[:depth]]
    below = {s for path, s in sources.items() if path[: len(loc)] == loc}
    flags = sorted(s for s in below if s != name)
    return " and ".join(flags) if flags else name


def _field_names(loc: tuple[str, ...]) -> list[str]:
    """The schema's field names of the section at ``loc`` (empty when it is not a section)."""
    node: Any = RunConfig
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field_info = node.model_fields.get(part)
            if field_info is None:
                return []
            node = field_info.annotation
        elif get_origin(node) is dict:
            node = get_args(node)[1]
        else:
            return []
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _problems(
    sources: dict[tuple[str, ...], str], name: str, exc: ValidationError
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{key}'"
            close = difflib.get_close_matches(loc[-1], _field_names(loc[:-1]), n=1)
            if close:
                msg += f"; did you mean '{'.'.join((*loc[:-1], close[0]))}'?"
        elif err["type"] == "missing":
            msg = f"missing key '{key}'"
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            msg = f"key '{key}': {err['msg']}{shown}"
        problems.append(Problem(_source(sources, loc, name), None, None, msg))
    return problems


def refuse_plan_keys(
    command: str, *configs: RunConfig, report: dict[str, Any] | None = None
) -> None:
    """Refuse a plan's inputs given to a command that answers the one-shot question and would
    ignore them (``run``, ``whatif``, ``frontier``, ``robustness``): any ``plan.*`` key away from
    its default, from the config file, ``--set`` or ``--vary``, and a plan's output folder
    (``report``: its metrics.json). Raises :class:`ConfigError` (exit 2) naming them.

    One check in one place: remove it when these commands run plans (research/layout-sketch.md).
    """
    default = _dotted_leaves(PlanConfig().model_dump(mode="json"))
    given: dict[str, Any] = {}
    for cfg in configs:
        for key, value in _dotted_leaves(cfg.plan.model_dump(mode="json")).items():
            if default.get(key) != value:
                given.setdefault(f"plan.{key}", value)
    problems = [
        Problem(
            key,
            None,
            None,
            f"{value!r} is an input of `portopt plan`; `portopt {command}` answers the one-shot"
            " question without the plan's rounds, commitments or target and would ignore it:"
            " remove it, or run `portopt plan`",
        )
        for key, value in sorted(given.items())
    ]
    if report is not None and "plan" in report:
        problems.append(
            Problem(
                "--report",
                None,
                None,
                f"is the output folder of a plan; `portopt {command}` re-optimises the one-shot"
                " question and would describe another model in the plan's report",
            )
        )
    if problems:
        raise ConfigError(problems, f"plan inputs given to `portopt {command}`")


def _dotted_leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_dotted_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
