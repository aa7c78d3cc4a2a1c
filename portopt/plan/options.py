"""The plan's columns: one per (project, proposal round), and the engine's (project, start) ones.

:func:`plan_options` expands the catalog for the allocation model. Each candidate gets one row
per open round, with id ``"<project>@<round>"``, its ``earliest_start`` replaced by the
construction start the round gives (:meth:`~portopt.plan.calendar.Round.construction_start`),
and the columns ``project``, ``proposal_quarter``, ``funding_quarter``, ``construction_start``
and ``scenario_id``. A committed project gets one row, fixed (``status`` committed, its fund
share pinned to the committed amount). The model chooses at most one row per project (the
``proposals`` group), so choosing a row is choosing the quarter the project is proposed in.

Rounds with the same construction start give the same outcomes, so the engine simulates each
distinct (project, construction start) once: ``engine_catalog`` has one row per
``scenario_id`` (``"<project>~<start>"``), with ``entity_id`` the project's id, so a project's
own shocks are the same whichever start is chosen (common random numbers) and the market path is
one calendar path per scenario (docs/scenario-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from portopt.catalog import Catalog
from portopt.config import RunConfig, quarter_index
from portopt.errors import ConfigError, Problem
from portopt.plan.calendar import Round, quarter_of, round_of, rounds, shift
from portopt.plan.commitments import Commitment


@dataclass
class PlanOptions:
    """The expanded catalogs and the rounds they were built from."""

    catalog: Catalog
    """One row per (project, round): what the allocation model chooses among."""
    engine_catalog: Catalog
    """One row per distinct (project, construction start): what the engine simulates."""
    rounds: list[Round]
    """The open rounds, in order."""
    commitments: list[Commitment]
    notes: list[str] = field(default_factory=list)

    @property
    def first_open(self) -> str | None:
        return self.rounds[0].quarter if self.rounds else None


def _later(a: str, b: str) -> bool:
    return quarter_index(a, b) > 0


def plan_options(catalog: Catalog, config: RunConfig, commitments: list[Commitment]) -> PlanOptions:
    """Expand ``catalog`` into the plan's columns (see the module's docstring).

    The open rounds run from ``plan.first_quarter``, or from the round after the latest
    commitment when that is later, to the deadline. A catalog row marked ``committed`` that the
    commitments file does not hold is planned like any candidate (and said so in ``notes``).
    Raises :class:`ConfigError` when ``plan.first_quarter`` is before ``scenarios.start``.
    """
    plan, start = config.plan, config.scenarios.start
    if quarter_index(plan.first_quarter, start) < 0:
        raise ConfigError(
            [
                Problem(
                    "plan.first_quarter",
                    None,
                    None,
                    f"{plan.first_quarter} is before scenarios.start {start}: quarters before the"
                    " start are not simulated",
                )
            ],
            "bad plan",
        )
    first = plan.first_quarter
    if commitments:
        latest = max((c.quarter for c in commitments), key=lambda q: quarter_index(q, start))
        if not _later(first, latest):
            first = shift(latest, 1)
    open_rounds = rounds(plan, first)
    committed = {c.project: c for c in commitments}
    notes = []
    pr = catalog.projects
    marked = [str(i) for i in pr.index[pr["status"].astype(str) == "committed"]]
    for pid in marked:
        if pid not in committed:
            notes.append(
                f"{pid} is marked committed in the catalog but not in the commitments file:"
                " it is planned as a candidate"
            )

    if not (catalog.capacity_matrix() > 0).any():
        notes.append(NO_COVERAGE)
    last = quarter_of(np.datetime64(plan.deadline, "D"))
    late = [
        f"{pid} ({q})"
        for pid, q in zip(pr.index.astype(str), pr["earliest_start"].astype(str), strict=True)
        if pid not in committed and _later(q, last)
    ]
    if late:
        notes.append(
            f"{len(late)} candidate(s) cannot start construction before the deadline"
            f" ({plan.deadline}): {', '.join(late[:5])}{', ...' if len(late) > 5 else ''}; a"
            " plan may commit to them by the deadline, and they are simulated from their"
            " earliest_start"
        )

    limit = plan.rounds_per_project
    rows, labels = [], []
    # rows as dicts (a Series grown key by key costs a reindex each: 1.3 s for 675 rows)
    for pid, row in zip(pr.index, pr.to_dict("records"), strict=True):
        pid = str(pid)
        earliest = str(row["earliest_start"])
        if pid in committed:
            c = committed[pid]
            r = round_of(c.quarter, plan)
            options = [(r, "committed", c.amount_usd / float(row["base_cost_usd"]))]
        else:
            options = [(r, "candidate", None) for r in _rounds_of(open_rounds, earliest, limit)]
        for r, status, share in options:
            begin = r.construction_start(earliest)
            new = dict(row)
            new["status"] = status
            if share is not None:
                new["min_fund_share"] = new["max_fund_share"] = share
            new["earliest_start"] = begin
            new["project"] = pid
            new["proposal_quarter"] = r.quarter
            new["funding_quarter"] = r.funding_quarter
            new["construction_start"] = begin
            new["scenario_id"] = f"{pid}~{begin}"
            rows.append(new)
            labels.append(f"{pid}@{r.quarter}")
    projects = pd.DataFrame(rows, index=pd.Index(labels, name=pr.index.name))
    base = projects["project"].to_numpy()
    capacity = catalog.capacity.loc[base].set_axis(projects.index, axis=0)
    model_catalog = Catalog(projects, catalog.chokepoints, capacity, catalog.source)

    engine_rows = projects.drop_duplicates("scenario_id").copy()
    engine_rows["entity_id"] = engine_rows["project"]
    engine_rows["depends_on"] = [() for _ in range(len(engine_rows))]
    engine_rows["excludes"] = [() for _ in range(len(engine_rows))]
    engine_rows = engine_rows.set_index("scenario_id", drop=False)
    engine_rows.index.name = pr.index.name
    engine_capacity = catalog.capacity.loc[engine_rows["project"].to_numpy()].set_axis(
        engine_rows.index, axis=0
    )
    engine_catalog = Catalog(engine_rows, catalog.chokepoints, engine_capacity, catalog.source)
    return PlanOptions(model_catalog, engine_catalog, open_rounds, list(commitments), notes)


NO_COVERAGE = (
    "no project covers a chokepoint (the catalog's capacity.csv has no rows): every plan's"
    " coverage is 0, so the plan follows its deployment target and the tie-breaks alone"
)
"""The note of a catalog without capacity (``portopt validate`` and the plan's notes)."""


def _rounds_of(open_rounds: list[Round], earliest: str, limit: int | None) -> list[Round]:
    """A candidate's rounds: every open round, or those up to ``limit`` distinct construction
    starts (rounds before the first that starts it at ``earliest_start`` all start it there)."""
    if limit is None:
        return open_rounds
    ready = 0
    for k, r in enumerate(open_rounds):
        if r.construction_start(earliest) == earliest:
            ready = k
    return open_rounds[: ready + limit]
