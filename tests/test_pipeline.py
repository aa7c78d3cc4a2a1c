"""The pipeline's columns and its evaluation stage (portopt.pipeline, portopt.plan.columns)."""

from __future__ import annotations

import numpy as np
import pytest

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.pipeline import subset
from portopt.plan import load_commitments, plan_options
from portopt.plan.columns import Columns


@pytest.mark.slow
def test_a_project_simulates_the_same_whatever_is_simulated_beside_it() -> None:
    """Why the evaluation stage simulates only the chosen projects: each project's fields and
    the chokepoints' stress are the same in a subset of the catalog."""
    config = load_config(None, ["backend=numpy"])
    catalog = load_catalog(None)
    rows = np.arange(0, len(catalog.project_ids), 5)
    part = subset(catalog, rows)
    every = generate_scenarios(catalog, config, backend="numpy", scenarios=range(7, 47))
    some = generate_scenarios(part, config, backend="numpy", scenarios=range(7, 47))
    for name, values in every.project.items():
        assert np.array_equal(values[:, rows], some.project[name]), name
    assert np.array_equal(every.stress, some.stress)


def test_the_plan_columns_map_model_project_and_engine_columns() -> None:
    config = load_config(None)
    catalog = load_catalog(None)
    options = plan_options(catalog, config, load_commitments(None, catalog, config))
    columns = Columns.of_plan(catalog, options)
    model = columns.catalog.projects
    assert not columns.identity and columns.planned
    assert list(columns.project) == model["project"].astype(str).tolist()
    engine_ids = [columns.engine_catalog.project_ids[j] for j in columns.engine]
    assert engine_ids == model["scenario_id"].astype(str).tolist()
    before = columns.catalog.projects.copy()
    with_p = columns.with_decline_probability(np.full(len(model), 0.25))
    assert "decline_prob" not in columns.catalog.projects  # no stage changes a catalog
    assert columns.catalog.projects.equals(before)
    assert np.all(with_p.decline_prob == 0.25)
    y = np.zeros(len(model))
    y[len(model) - 1] = 1.0
    cols = columns.evaluation_columns(y)
    assert len(cols) == len(catalog.project_ids)
    last = str(columns.project[-1])
    assert cols[catalog.project_ids.index(last)] == len(model) - 1
    evaluated = columns.evaluation_catalog(cols)
    assert evaluated.project_ids == catalog.project_ids


def test_a_candidate_that_starts_after_the_deadline_is_noted() -> None:
    """A candidate whose earliest_start is after the deadline can be committed by it but not
    built before: the plan says so in its notes (it used to pass silently), and simulates it
    from that quarter."""
    config = load_config(None)
    catalog = load_catalog(None)
    assert not any("deadline" in n for n in plan_options(catalog, config, []).notes)
    pr = catalog.projects.copy()
    late = str(pr.index[pr["status"] == "candidate"][0])
    pr.loc[late, "earliest_start"] = "2040Q3"
    later = type(catalog)(pr, catalog.chokepoints, catalog.capacity, catalog.source)
    options = plan_options(later, config, [])
    (note,) = [n for n in options.notes if "deadline" in n]
    assert f"{late} (2040Q3)" in note and config.plan.deadline in note
    starts = options.catalog.projects
    assert set(starts.loc[starts["project"] == late, "construction_start"]) == {"2040Q3"}


def test_a_run_has_one_column_per_project() -> None:
    catalog = load_catalog(None)
    columns = Columns.one_per_project(catalog)
    assert columns.identity and not columns.planned
    assert columns.evaluation_catalog(columns.evaluation_columns(np.ones(3))) is catalog
