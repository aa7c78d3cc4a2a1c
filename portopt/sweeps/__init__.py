"""Sweeps on Dask: efficient frontiers, robustness (core indices), sharded scenario generation.

Each is a set of independent tasks submitted to a ``distributed`` cluster (a ``LocalCluster``
of worker processes by default, an existing cluster by address), with retries, and outputs
written atomically.
"""

from portopt.sweeps.cluster import (
    RETRIES,
    cluster,
    dashboard_link,
    gather_as_completed,
    submit_all,
)
from portopt.sweeps.frontier import (
    PARAMETER_KEYS,
    Point,
    frontier_points,
    parse_vary,
    plan_tasks,
    run_frontier,
    solve_points,
    write_frontier,
)
from portopt.sweeps.robustness import (
    attach_to_report,
    batch_range,
    check_report,
    classify,
    core_indices,
    run_robustness,
    solve_batch,
    status_counts,
    wilson,
    write_robustness,
)
from portopt.sweeps.shards import generate_sharded

__all__ = [
    "PARAMETER_KEYS",
    "RETRIES",
    "Point",
    "attach_to_report",
    "batch_range",
    "check_report",
    "classify",
    "cluster",
    "core_indices",
    "dashboard_link",
    "frontier_points",
    "gather_as_completed",
    "generate_sharded",
    "parse_vary",
    "plan_tasks",
    "run_frontier",
    "run_robustness",
    "solve_batch",
    "solve_points",
    "status_counts",
    "submit_all",
    "wilson",
    "write_frontier",
    "write_robustness",
]
