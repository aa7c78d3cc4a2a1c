"""The run configuration: a validated schema, YAML loading and dotted overrides.

Defaults live in ``configs/default.yaml``; the schema's own defaults are the same numbers so a
config file only has to say what differs. Every parameter of the scenario model cites its
grounding in ``portopt/data/README.md`` and ``docs/scenario-model.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from portopt.errors import ConfigError, Problem
from portopt.vocabulary import FACTORS, PERMITTING_TRACKS, SECTORS

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def quarter_index(label: str, start: str) -> int:
    """Quarters from ``start`` to ``label`` (both ``YYYYQn``); negative when earlier."""
    y0, q0 = _parse_quarter(start)
    y1, q1 = _parse_quarter(label)
    return (y1 - y0) * 4 + (q1 - q0)


def _parse_quarter(label: str) -> tuple[int, int]:
    m = _QUARTER.match(label)
    if not m:
        raise ValueError(f"'{label}' is not a quarter like 2026Q1")
    return int(m.group(1)), int(m.group(2))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SofrConfig(_Strict):
    """6-month SOFR as a mean-reverting (Vasicek) short rate, floored."""

    initial: float = Field(0.037, ge=-0.05, le=0.3)
    mean: float = Field(0.035, ge=-0.05, le=0.3)
    reversion: float = Field(0.25, ge=0.0, le=10.0, description="per year")
    vol: float = Field(0.008, ge=0.0, le=0.2, description="per sqrt(year)")
    floor: float = Field(0.0, ge=-0.05, le=0.3)


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


class ScenarioConfig(_Strict):
    """How many scenarios, over which quarters, and the parameters of the scenario model."""

    optimisation: int = Field(2000, ge=1, le=10_000_000)
    evaluation: int = Field(20000, ge=0, le=100_000_000)
    start: str = "2026Q1"
    horizon_quarters: int = Field(80, ge=4, le=400)
    window: tuple[str, str] = ("2028Q1", "2035Q4")
    chunk_memory_mb: float = Field(256.0, gt=0.0, le=1_000_000.0)
    japan_funding_rate: float = Field(
        0.047, ge=-0.05, le=0.5, description="annual; JBIC 10y USD yield 4.709% (Apr 2024)"
    )
    tax_rate: float = Field(0.21, ge=0.0, le=1.0)
    ramp_quarters: int = Field(4, ge=1, le=40)
    salvage_share: float = Field(
        0.0, ge=0.0, le=1.0, description="share of drawn capital recovered when a project fails"
    )
    sofr: SofrConfig = Field(default_factory=SofrConfig)
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
        0.6, ge=0.0, le=2.0, description="CVaR_alpha of Japan's PV shortfall / capital"
    )
    min_expected_recovery: float | None = Field(
        0.65, ge=0.0, le=5.0, description="expected PV of Japan's receipts / PV of its draws"
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


class PowerBalanceConfig(GroupConfig):
    headroom_mw: dict[str, float] = Field(default_factory=dict)
    default_headroom_mw: float = Field(2000.0, ge=0.0)


class WorkforceConfig(GroupConfig):
    available_per_region_year: dict[str, float] = Field(default_factory=dict)
    default_available: float = Field(60000.0, ge=0.0)


class MaxProjectsConfig(GroupConfig):
    limit: int = Field(30, ge=0)


class SponsorCapConfig(GroupConfig):
    max_usd: float = Field(1.2e11, gt=0.0)


class ReviewCapacityConfig(GroupConfig):
    per_quarter: int = Field(8, ge=0)


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
    max_projects: MaxProjectsConfig = Field(default_factory=MaxProjectsConfig)
    sponsor_cap: SponsorCapConfig = Field(default_factory=SponsorCapConfig)
    review_capacity: ReviewCapacityConfig = Field(default_factory=ReviewCapacityConfig)


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
    time_limit_s: float = Field(40.0, gt=0.0)
    mip_gap: float = Field(0.0005, ge=0.0, le=1.0)
    threads: int | None = Field(None, ge=1)
    verbose: bool = False


class OutputConfig(_Strict):
    dir: str = "runs/default"
    overwrite: bool = True
    scenarios_parquet: bool = True
    report: bool = True


class RunConfig(_Strict):
    """One run of portopt: what to read, how to simulate, what to optimise, where to write."""

    catalog: str | None = Field(None, description="folder of catalog CSVs; null: the bundled one")
    seed: int = Field(20260217, ge=0, lt=2**64)
    backend: Literal["auto", "numpy", "cupy"] = "auto"
    scenarios: ScenarioConfig = Field(default_factory=ScenarioConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    solver: SolverConfig = Field(default_factory=SolverConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    def digest(self) -> str:
        """A short hash of the full, resolved configuration (written to metrics.json)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["model.budget_usd=4e11", ...]`` into a nested dict; values are parsed as YAML."""
    out: dict[str, Any] = {}
    problems = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            problems.append(
                Problem("--set", None, None, f"'{item}' is not KEY=VALUE with a dotted key")
            )
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(Problem("--set", None, None, f"'{key}' sets inside a value"))
                break
        else:
            node[parts[-1]] = value
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


def load_config(
    path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> RunConfig:
    """Read a YAML config (or the schema's defaults), apply dotted overrides and validate.

    Raises :class:`ConfigError` naming every bad key by its full dotted path.
    """
    name = str(path) if path is not None else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError([Problem(name, None, None, "no such config file")])
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            row = mark.line + 1 if mark is not None else None
            raise ConfigError([Problem(name, row, None, f"not valid YAML: {exc}")]) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError([Problem(name, None, None, "the top level must be a mapping")])
        data = loaded
    over = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    data = _merge(data, over)
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(name, exc), f"{name}: invalid configuration") from None
    if cfg.catalog is not None and path is not None and not Path(cfg.catalog).is_absolute():
        # a relative catalog path is relative to the config file, or to the working directory
        candidate = Path(path).parent / cfg.catalog
        if candidate.exists() and not Path(cfg.catalog).exists():
            cfg.catalog = str(candidate)
    return cfg


def _problems(name: str, exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{key}'"
        elif err["type"] == "missing":
            msg = f"missing key '{key}'"
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            msg = f"key '{key}': {err['msg']}{shown}"
        problems.append(Problem(name, None, None, msg))
    return problems
