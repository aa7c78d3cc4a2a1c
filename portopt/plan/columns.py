"""The model's columns, and the one map between a model column, its project and its engine
column that every stage of the pipeline reads (:mod:`portopt.pipeline`).

A *model column* is what the allocation model chooses: in a one-shot run, a project; in a plan,
a (project, proposal round) pair (:mod:`portopt.plan.options`). An *engine column* is what the
scenario engine simulates: in a run, a project; in a plan, a distinct (project, construction
start) pair. :class:`Columns` holds the three catalogs (one row per project, per model column,
per engine column) and, for each model column, its project and its engine column. No method
changes a catalog: each returns a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from portopt.catalog import Catalog
from portopt.config import RunConfig
from portopt.engine.philox import key_of_seed
from portopt.engine.scenario_set import ScenarioSet
from portopt.plan.declines import (
    apply_declines,
    decline_probability,
    declined,
    unfunded_probability,
)
from portopt.plan.options import PlanOptions

ROUND_COLUMNS = ("proposal_quarter", "funding_quarter", "construction_start")
"""allocation.csv's columns, in a plan, for the round a project is proposed in."""


@dataclass(frozen=True)
class Columns:
    """The model's columns over a catalog of projects (see the module's docstring)."""

    projects: Catalog
    """One row per project: the catalog as loaded."""
    catalog: Catalog
    """One row per model column: what the allocation model chooses among."""
    engine_catalog: Catalog
    """One row per engine column: what the scenario engine simulates."""
    project: np.ndarray
    """The project id of each model column."""
    engine: np.ndarray
    """The engine column (position in ``engine_catalog``) of each model column."""
    plan: PlanOptions | None = None
    """The plan's rounds and commitments; None for a one-shot run."""
    notes: list[str] = field(default_factory=list)

    @classmethod
    def one_per_project(cls, catalog: Catalog) -> Columns:
        """A one-shot run's columns: each project once, at its earliest start."""
        ids = np.asarray(catalog.project_ids, dtype=object)
        return cls(catalog, catalog, catalog, ids, np.arange(len(ids), dtype=np.intp))

    @classmethod
    def of_plan(cls, catalog: Catalog, options: PlanOptions) -> Columns:
        """A plan's columns: one per (project, open round), one per committed project."""
        pr = options.catalog.projects
        pos = {pid: j for j, pid in enumerate(options.engine_catalog.project_ids)}
        engine = np.array([pos[s] for s in pr["scenario_id"]], dtype=np.intp)
        project = pr["project"].astype(str).to_numpy(dtype=object)
        return cls(
            catalog,
            options.catalog,
            options.engine_catalog,
            project,
            engine,
            options,
            list(options.notes),
        )

    @property
    def planned(self) -> bool:
        """Whether the columns are a plan's (rounds, declines) rather than a run's."""
        return self.plan is not None

    @property
    def identity(self) -> bool:
        """Whether each project is one model column and one engine column (a one-shot run)."""
        return self.catalog is self.projects and self.engine_catalog is self.projects

    def model_scenarios(self, engine: ScenarioSet) -> ScenarioSet:
        """The engine's scenarios laid out as the model's columns."""
        if self.identity:
            return engine
        return replace(
            engine,
            project_ids=list(self.catalog.project_ids),
            project={k: v[:, self.engine] for k, v in engine.project.items()},
        )

    def decline_probability(self, scenarios: ScenarioSet, config: RunConfig) -> np.ndarray:
        """Each model column's decline probability, from Japan's expected recovery on it over
        ``scenarios`` (laid out as the model's columns; :mod:`portopt.plan.declines`)."""
        draw = scenarios.project["pv_draw"].mean(axis=0)
        japan = scenarios.project["pv_japan"].mean(axis=0)
        recovery = np.divide(japan, draw, out=np.zeros_like(japan), where=draw > 0)
        committed = (self.catalog.projects["status"].astype(str) == "committed").to_numpy()
        return decline_probability(recovery, committed, config.plan.decline)

    def with_decline_probability(self, p: np.ndarray) -> Columns:
        """The columns with the model catalog's ``decline_prob`` set to ``p`` (a new catalog),
        and ``unfunded_prob``: the probability that the column is not funded, its own decline
        or a prerequisite's (:func:`portopt.plan.declines.unfunded_probability`), the basis of
        expected committed capital."""
        projects = self.catalog.projects.copy()
        projects["decline_prob"] = np.asarray(p, dtype=np.float64)
        projects["unfunded_prob"] = unfunded_probability(
            [str(b) for b in self.project], projects["decline_prob"].to_numpy(), self.needs
        )
        return replace(self, catalog=replace(self.catalog, projects=projects))

    @property
    def needs(self) -> dict[str, tuple[str, ...]]:
        """Each project's prerequisites (``depends_on``) by id."""
        pr = self.catalog.projects
        return {str(b): tuple(d) for b, d in zip(self.project, pr["depends_on"], strict=True)}

    @property
    def decline_prob(self) -> np.ndarray:
        """Each model column's decline probability (zeros when none was set)."""
        pr = self.catalog.projects
        if "decline_prob" not in pr:
            return np.zeros(len(pr))
        return pr["decline_prob"].to_numpy(dtype=np.float64)

    @property
    def unfunded_prob(self) -> np.ndarray:
        """Each model column's probability of not being funded, its own decline or a
        prerequisite's (the basis of expected committed capital); the decline probability
        when none was set."""
        pr = self.catalog.projects
        if "unfunded_prob" not in pr:
            return self.decline_prob
        return pr["unfunded_prob"].to_numpy(dtype=np.float64)

    def chosen(self, y: np.ndarray) -> dict[str, int]:
        """Each selected project's model column."""
        return {str(self.project[j]): int(j) for j in np.flatnonzero(np.asarray(y) > 0.5)}

    def evaluation_columns(self, y: np.ndarray) -> list[int]:
        """One model column per project, in the catalog's project order: the chosen one, else
        the project's first (its earliest start)."""
        if self.identity:
            return list(range(len(self.project)))
        chosen = self.chosen(y)
        first: dict[str, int] = {}
        for j, pid in enumerate(self.project):
            first.setdefault(str(pid), j)
        return [chosen.get(pid, first[pid]) for pid in first]

    def evaluation_catalog(self, cols: list[int]) -> Catalog:
        """One row per project, under its own id, at the start of its column in ``cols``."""
        if self.identity:
            return self.projects
        eng = self.engine_catalog
        rows = [eng.project_ids[self.engine[j]] for j in cols]
        projects = eng.projects.loc[rows].copy()
        projects.index = pd.Index(self.project[cols], name=eng.projects.index.name)
        capacity = eng.capacity.loc[rows].set_axis(projects.index, axis=0)
        return Catalog(projects, eng.chokepoints, capacity, eng.source)

    def declines(
        self, scenarios: ScenarioSet, p: np.ndarray, config: RunConfig
    ) -> tuple[ScenarioSet, np.ndarray]:
        """``scenarios`` with each declined (scenario, column) unfunded, and the decline mask.

        The set's columns are the model's, or one per project (the evaluation's); ``p`` is
        each one's decline probability. The draw depends on the project, not on the column
        (:func:`portopt.plan.declines.declined`); a column whose prerequisite is declined is
        not funded either (the model catalog's ``depends_on``)."""
        ids = [str(i) for i in scenarios.project_ids]
        model = ids == [str(i) for i in self.catalog.project_ids]
        base = [str(i) for i in self.project] if model else ids
        mask = declined(scenarios, base, p, key_of_seed(config.seed), self.needs)
        return apply_declines(scenarios, mask), mask

    def allocation_table(self, table: pd.DataFrame, cols: list[int]) -> pd.DataFrame:
        """allocation.csv: in a plan, with the round each project is proposed in and its
        decline probability (blank when left out); a run's table as it is."""
        if not self.planned:
            return table
        out = table.copy()
        pr = self.catalog.projects
        selected = out["selected"].to_numpy()
        for name in ROUND_COLUMNS:
            values = pr[name].astype(str).to_numpy()[cols]
            out[name] = np.where(selected, values, "")
        p = self.decline_prob[cols].round(6)
        out["decline_prob"] = np.where(selected, p, np.nan)
        return out


__all__ = ["ROUND_COLUMNS", "Columns"]
