"""portopt: select and size projects for the US-Japan strategic investment fund.

The two jobs, each returning a :class:`~portopt.pipeline.PlanResult` (tables as pandas
DataFrames, metrics.json as a dict) and writing nothing unless ``out_dir`` is given::

    r = portopt.plan()                       # the deployment plan (`portopt plan`)
    r.plan                                   # one row per proposal
    r = portopt.run("korea_terms", overrides=["scenarios.evaluation=2000"])  # `portopt run`
    r.write("runs/korea")
    b = portopt.bankability()                # what makes each project bankable (`portopt bankable`)

And the pieces, imported lazily so that ``import portopt`` stays fast and never needs CuPy::

    cfg = portopt.load_config("configs/default.yaml", ["model.budget_usd=4e11"])
    catalog = portopt.load_catalog(cfg.catalog)
    scenarios = portopt.generate_scenarios(catalog, cfg, scenarios=range(2000))
    allocation = portopt.optimize(catalog, cfg, scenarios)

``portopt.plan`` and ``portopt.run`` are also the modules of those names (the plan's data,
the one-shot job): calling one runs the job (:mod:`portopt.api`), and its attributes are the
module's.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
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
    "PlanResult": "portopt.pipeline",
    "PortoptError": "portopt.errors",
    "CatalogError": "portopt.errors",
    "ConfigError": "portopt.errors",
    "InfeasibleError": "portopt.errors",
    "ScenarioError": "portopt.errors",
    "SolverError": "portopt.errors",
    "bankability": "portopt.api",
    "BankableResult": "portopt.bankable",
}

JOBS = ("plan", "run")
"""The jobs callable as ``portopt.<job>(...)`` (:mod:`portopt.api`)."""

__all__ = ["__version__", *JOBS, *_EXPORTS]


class JobModule(ModuleType):
    """``portopt.plan`` and ``portopt.run``: the module, and called, the job of that name
    (:func:`portopt.api.plan`, :func:`portopt.api.run`; same arguments)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        api = importlib.import_module("portopt.api")
        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


class Package(ModuleType):
    """``portopt`` itself: the import system's binding of ``portopt.plan`` or ``portopt.run``
    makes that module a :class:`JobModule`."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in JOBS
            and isinstance(value, ModuleType)
            and value.__name__ == f"{__name__}.{name}"
        ):
            value.__class__ = JobModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = Package


def __getattr__(name: str) -> Any:
    if name in JOBS:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'portopt' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
