"""The Dask layer every sweep runs on: a client, and task submission with retries.

A sweep is a list of independent tasks (plain functions of picklable arguments: the catalog,
the configs, scenario ranges). They go to a ``distributed.LocalCluster`` of worker processes
by default, or to an existing cluster when ``--scheduler tcp://host:8786`` is given, so a sweep
that outgrows one machine moves to a cluster unchanged. Arguments travel inside each task, not
as scattered data: a scattered object lives on one worker and dies with it, while a task's own
arguments are kept by the scheduler and survive the loss of any worker.

Fault tolerance: a task whose worker dies is rescheduled on another worker by the scheduler
(its ``allowed-failures``), and a task that raises is retried :data:`RETRIES` times. Every task
is a pure function of its arguments (scenario ``s`` depends only on the seed and ``s``,
docs/scenario-model.md), so a re-executed task gives the same numbers as the first attempt.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from portopt.errors import ConfigError, Problem

RETRIES = 2
"""Extra attempts of a task that raised (a worker that dies is handled by the scheduler)."""


@contextmanager
def cluster(scheduler: str | None = None, n_workers: int = 2) -> Iterator[Any]:
    """A ``distributed.Client``: on a new local cluster, or on the cluster at ``scheduler``.

    The local cluster has ``n_workers`` worker processes with one thread each, so one task
    runs per process (CVXPY's canonicalisation and the model's Python parts hold the GIL: the
    parallelism is in processes) and quiet logs; distributed serves its dashboard on its default
    port when that is free (the CLI prints the link). Both are closed on exit; an
    existing cluster is left running.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                [
                    Problem(
                        "--scheduler",
                        None,
                        None,
                        f"no Dask scheduler answers at '{scheduler}' ({exc}); start one with"
                        " `dask scheduler` and pass its tcp://host:8786 address",
                    )
                ],
                "Dask scheduler unreachable",
            ) from None
        except ValueError as exc:  # distributed's word for an address it cannot parse
            raise ConfigError(
                [
                    Problem(
                        "--scheduler",
                        None,
                        None,
                        f"'{scheduler}' is not a Dask scheduler address ({exc}); pass it as"
                        " tcp://host:8786",
                    )
                ],
                "bad --scheduler",
            ) from None
        with client:
            yield client
        return
    if n_workers < 1:
        raise ConfigError(
            [Problem("--workers", None, None, f"must be at least 1, got {n_workers}")],
            "bad worker count",
        )
    with warnings.catch_warnings():
        # the scheduler's HTTP routes move to a free port when 8787 is taken; nothing to report
        warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
        local = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,  # a failed task is reported here, in one line
        )
    with local, Client(local) as client:
        yield client


def submit_all(
    client: Any, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], name: str
) -> list[Any]:
    """Submit ``fn(*a)`` for each ``a`` in ``args`` with :data:`RETRIES` retries; the futures.

    Keys are ``name-<position>-<token>`` so that the dashboard shows what each task is and two
    sweeps on one cluster never share a key.
    """
    token = os.urandom(4).hex()
    return [
        client.submit(fn, *a, key=f"{name}-{i}-{token}", retries=RETRIES, pure=False)
        for i, a in enumerate(args)
    ]


def gather_as_completed(
    client: Any, futures: list[Any], on_result: Callable[[int, int], None] | None = None
) -> list[Any]:
    """Each future's result, in submission order; ``on_result(done, total)`` after each.

    Waits on the futures themselves (no polling); a task that failed after its retries raises
    here with the task's own exception.
    """
    from distributed import as_completed

    position = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    for done, future in enumerate(as_completed(futures), start=1):
        results[position[future.key]] = future.result()
        if on_result is not None:
            on_result(done, len(futures))
    return results


def dashboard_link(client: Any) -> str | None:
    """The address of the cluster's dashboard, or None when its scheduler serves none.

    ``Client.dashboard_link`` alone formats a link even for a cluster started without a
    dashboard, so the scheduler's own list of services decides.
    """
    if "dashboard" not in client.scheduler_info().get("services", {}):
        return None
    return client.dashboard_link
