"""portopt: select and size projects for the US-Japan strategic investment fund.

The public API, imported lazily so that ``import portopt`` stays fast and never needs CuPy::

    cfg = portopt.load_config("configs/default.yaml", ["model.budget_usd=4e11"])
    catalog = portopt.load_catalog(cfg.catalog)
    scenarios = portopt.generate_scenarios(catalog, cfg, scenarios=range(2000))
    allocation = portopt.optimize(catalog, cfg, scenarios)

The whole pipeline, with its output folder, is ``portopt.run.run(cfg)``; the out-of-sample
evaluation is ``portopt.evaluate.evaluate(...)`` (modules of those names, so not re-exported).
"""

from __future__ import annotations

import importlib
from typing import Any

from portopt._version import __version__

_EXPORTS = {
    "Catalog": "portopt.catalog",
    "load_catalog": "portopt.catalog",
    "validate_catalog": "portopt.catalog",
    "RunConfig": "portopt.config",
    "load_config": "portopt.config",
    "ScenarioSet": "portopt.engine.scenario_set",
    "generate_scenarios": "portopt.engine.generate",
    "Allocation": "portopt.model",
    "AllocationModel": "portopt.model",
    "optimize": "portopt.model",
    "check_solution": "portopt.model",
    "PortoptError": "portopt.errors",
    "CatalogError": "portopt.errors",
    "ConfigError": "portopt.errors",
    "InfeasibleError": "portopt.errors",
    "ScenarioError": "portopt.errors",
    "SolverError": "portopt.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'portopt' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
