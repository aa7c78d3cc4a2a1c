"""The frontier's points as the configuration names them, and the worker processes that solve
them: what :mod:`portopt.tradeoff` solves and :mod:`portopt.memory` counts, below both."""

from __future__ import annotations

import os

from portopt.config import RunConfig


def frontier_floors(config: RunConfig) -> list[float]:
    """The floors of the frontier: the configured one, then down by ``plan.frontier.floor_step``
    to ``plan.frontier.lowest_floor``; [] when the frontier is off or no floor is configured."""
    fr = config.plan.frontier
    rec = config.model.groups.recoupment
    if not fr.enabled or not rec.enabled or rec.min_expected_recovery is None:
        return []
    top = float(rec.min_expected_recovery)
    floors = [top]
    k = 1
    while True:
        f = round(top - k * fr.floor_step, 10)
        if f < fr.lowest_floor - 1e-9:
            break
        floors.append(f)
        k += 1
    return floors


def default_workers() -> int:
    """Worker processes for the frontier: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
