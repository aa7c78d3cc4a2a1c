"""Scenario generation sharded by scenario range over Dask workers.

Scenario s depends only on the seed and s (Philox4x32-10 counters built from the scenario
index, docs/scenario-model.md), so the shards ``[a, a + shard_size)`` can be generated on any
workers with no coordination and joined with :meth:`ScenarioSet.concat`: the result is bitwise
the single-process :func:`~portopt.engine.generate.generate_scenarios` over the whole range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.generate import generate_scenarios
from portopt.engine.scenario_set import ScenarioSet
from portopt.errors import ScenarioError
from portopt.sweeps.cluster import gather_as_completed, submit_all


def generate_sharded(
    catalog: Catalog,
    config: RunConfig,
    scenarios: range,
    shard_size: int,
    client: Any,
    weights: np.ndarray | None = None,
) -> ScenarioSet:
    """``scenarios`` generated in shards of ``shard_size`` on the cluster behind ``client``.

    ``weights`` (fund USD per project) adds portfolio cash as in :func:`generate_scenarios`.
    The metadata is the first shard's, with the full range, the summed engine seconds and the
    number of shards.
    """
    if not isinstance(scenarios, range) or scenarios.step != 1 or len(scenarios) == 0:
        raise ScenarioError("scenarios must be a non-empty range of consecutive indices")
    if shard_size < 1:
        raise ScenarioError(f"shard_size must be at least 1, got {shard_size}")
    shards = [
        range(a, min(a + shard_size, scenarios.stop))
        for a in range(scenarios.start, scenarios.stop, shard_size)
    ]
    futures = submit_all(
        client, _shard, [(catalog, config, r, weights) for r in shards], "scenarios"
    )
    parts = gather_as_completed(client, futures)
    out = ScenarioSet.concat(parts)
    out.metadata.update(
        scenarios=[scenarios.start, scenarios.stop],
        seconds=float(sum(p.metadata.get("seconds", 0.0) for p in parts)),
        shards=len(parts),
    )
    return out


def _shard(
    catalog: Catalog, config: RunConfig, scenarios: range, weights: np.ndarray | None
) -> ScenarioSet:
    return generate_scenarios(
        catalog, config, backend=config.backend, scenarios=scenarios, weights=weights
    )
