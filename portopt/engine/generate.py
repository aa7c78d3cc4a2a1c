"""The scenario engine's front: :func:`generate_scenarios` turns a catalog and a config into a
:class:`~portopt.engine.scenario_set.ScenarioSet` on the chosen backend.

Scenario ``s`` is the same on any backend, in any batch and on any worker (Philox counters,
docs/scenario-model.md), so optimisation uses ``range(0, S_opt)`` and evaluation
``range(S_opt, S_opt + S_eval)``, and shards can be generated apart and joined with
:meth:`ScenarioSet.concat`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from portopt._version import __version__
from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine import numpy_engine
from portopt.engine.backend import device_info, resolve_backend, to_host, usable_cores
from portopt.engine.inputs import EngineInputs, prepare_inputs
from portopt.engine.scenario_set import ScenarioSet
from portopt.errors import ScenarioError

ENGINE_VERSION = "3"
"""Version of the scenario model's numbers (docs/scenario-model.md); bump when they change."""


def generate_scenarios(
    catalog: Catalog,
    config: RunConfig,
    backend: str = "auto",
    scenarios: range | None = None,
    weights: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> ScenarioSet:
    """Simulate ``scenarios`` (default ``range(config.scenarios.optimisation)``).

    ``backend`` is ``auto``, ``numpy`` or ``cupy`` (:func:`portopt.engine.backend.resolve_backend`);
    ``weights`` (fund USD per project, catalog order) adds per (scenario, quarter) portfolio
    cash; ``progress(done, total)`` is called after every chunk; ``workers`` threads share the
    NumPy engine's chunks (default ``scenarios.threads``, and when that is null every core this
    process may use; the numbers do not depend on it). The result always passes
    :meth:`ScenarioSet.check_finite` (NaN or infinity raises :class:`ScenarioError`).

    The CuPy backend is ``portopt.engine.cupy_engine.run(inputs, scenarios, weights, progress)``,
    imported only here; it returns the same
    :class:`~portopt.engine.scenario_set.EngineResult` fields
    (device or host arrays).
    """
    if scenarios is None:
        scenarios = range(config.scenarios.optimisation)
    if not isinstance(scenarios, range) or scenarios.step != 1:
        raise ScenarioError("scenarios must be a range of consecutive scenario indices")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(catalog.projects),) or not np.isfinite(weights).all():
            raise ScenarioError(
                f"weights must be {len(catalog.projects)} finite fund amounts,"
                " one per project in catalog order"
            )
    chosen = resolve_backend(backend)
    workers = workers or config.scenarios.threads or usable_cores()
    inputs = prepare_inputs(catalog, config)
    t0 = time.perf_counter()
    result = _run(
        chosen, inputs, scenarios, weights, progress, config.scenarios.chunk_memory_mb, workers
    )
    seconds = time.perf_counter() - t0
    out = ScenarioSet(
        first=scenarios.start,
        project_ids=list(inputs.project_ids),
        chokepoint_ids=list(inputs.chokepoint_ids),
        project=to_host(result.project),
        stress=to_host(result.stress),
        scenario=to_host(result.scenario),
        cash=to_host(result.cash),
        metadata={
            "seed": int(config.seed),
            "backend": chosen,
            "device": device_info(chosen),
            "seconds": seconds,
            "scenarios": [scenarios.start, scenarios.stop],
            "config_digest": config.digest(),
            "engine_version": ENGINE_VERSION,
            "portopt_version": __version__,
            "catalog": catalog.source,
        },
    )
    out.check_finite()
    return out


def _run(
    backend: str,
    inputs: EngineInputs,
    scenarios: range,
    weights: np.ndarray | None,
    progress: Callable[[int, int], None] | None,
    memory_mb: float,
    workers: int,
) -> Any:
    if backend == "cupy":
        engine = importlib.import_module("portopt.engine.cupy_engine")
        return engine.run(inputs, scenarios, weights, progress)
    return numpy_engine.run(
        inputs, scenarios, weights, progress, memory_mb=memory_mb, workers=workers
    )
