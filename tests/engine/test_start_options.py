"""Start options (issue 11): one engine column per (project, construction start), sharing the
project's random numbers through ``entity_id`` (common random numbers, docs/scenario-model.md).

A project's own draws (overrun, delay, failure) are the same for every start option, the other
projects' numbers do not move when options are added, and the option at the project's own
start is bitwise the project itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from portopt.catalog import Catalog, project_entity
from portopt.config import RunConfig, quarter_index
from portopt.engine import numpy_engine as engine_numpy
from portopt.engine.inputs import prepare_inputs
from portopt.engine.scenario_set import PROJECT_FIELDS

STARTS = ("2026Q3", "2027Q2", "2028Q1")


def with_start_options(catalog: Catalog, starts: dict[str, tuple[str, ...]]) -> Catalog:
    """``catalog`` with project ``pid`` replaced by rows ``"<pid>~<start>"``, one per start of
    ``starts[pid]`` (``earliest_start`` = that start, ``entity_id`` = ``pid``), in place of its
    row; every other row keeps its id, with a blank ``entity_id``."""
    rows, index = [], []
    for pid, row in catalog.projects.iterrows():
        for start in starts.get(pid, ()):
            rows.append({**row.to_dict(), "earliest_start": start, "entity_id": pid})
            index.append(f"{pid}~{start}")
        if pid not in starts:
            rows.append({**row.to_dict(), "entity_id": ""})
            index.append(pid)
    projects = pd.DataFrame(rows, index=pd.Index(index, name=catalog.projects.index.name))
    capacity = catalog.capacity.loc[[i.split("~")[0] for i in index]]
    capacity.index = projects.index
    return Catalog(projects, catalog.chokepoints, capacity, catalog.source)


def _columns(catalog: Catalog, pid: str) -> list[int]:
    ids = list(catalog.projects.index)
    return [ids.index(f"{pid}~{s}") for s in STARTS]


def test_start_options_share_the_entity(small_catalog) -> None:
    pid = small_catalog.project_ids[1]
    shifted = with_start_options(small_catalog, {pid: STARTS})
    inputs = prepare_inputs(shifted, RunConfig())
    cols = _columns(shifted, pid)
    assert set(inputs.project_entity[cols].tolist()) == {project_entity(pid)}
    # a blank entity_id is the row's own id
    other = small_catalog.project_ids[0]
    assert inputs.project_entity[list(shifted.projects.index).index(other)] == project_entity(other)
    assert [inputs.q0[c] for c in cols] == [quarter_index(s, "2026Q1") for s in STARTS]


@pytest.mark.slow
def test_own_draws_identical_for_every_start_option(small_catalog) -> None:
    """Delay (complete_q - q0) and failure (complete_q = -1) are the same in every scenario for
    the three starts; the money and the online share, which depend on the calendar, are not."""
    config = RunConfig()
    for pid in small_catalog.project_ids:
        shifted = with_start_options(small_catalog, {pid: STARTS})
        inputs = prepare_inputs(shifted, config)
        result = engine_numpy.run(inputs, range(0, 400))
        cols = _columns(shifted, pid)
        complete = result.project["complete_q"][:, cols]
        failed = complete == -1
        delay = np.where(failed, -1, complete - inputs.q0[cols][None, :])
        assert (delay == delay[:, :1]).all(), pid
        assert (failed == failed[:, :1]).all(), pid
        assert (~failed).any(), pid
        for name in ("pv_japan", "online_share"):
            values = result.project[name][:, cols]
            assert not np.array_equal(values[:, 0], values[:, 1]), (pid, name)
            assert not np.array_equal(values[:, 1], values[:, 2]), (pid, name)
    # some project fails in some scenario, so the failure check is not vacuous
    base = engine_numpy.run(prepare_inputs(small_catalog, config), range(0, 400))
    assert (base.project["complete_q"] == -1).any()


def test_the_option_at_the_own_start_is_the_project(small_catalog) -> None:
    pid = small_catalog.project_ids[2]
    own = str(small_catalog.projects.loc[pid, "earliest_start"])
    shifted = with_start_options(small_catalog, {pid: (own, "2028Q3")})
    scenarios = range(100, 260)
    base = engine_numpy.run(prepare_inputs(small_catalog, RunConfig()), scenarios)
    got = engine_numpy.run(prepare_inputs(shifted, RunConfig()), scenarios)
    i, j = small_catalog.project_ids.index(pid), list(shifted.projects.index).index(f"{pid}~{own}")
    for name in PROJECT_FIELDS:
        assert np.array_equal(base.project[name][:, i], got.project[name][:, j]), name


@pytest.mark.slow
@pytest.mark.parametrize("weighted", [False, True])
def test_adding_start_options_leaves_the_other_projects_bitwise_equal(
    economics_catalog, economics_config, weighted: bool
) -> None:
    """Options of one project change no number of another (nor the scenario-level outputs),
    with and without a portfolio; the economics fixture has senior debt, ITC and PTC."""
    ids = economics_catalog.project_ids
    pid = ids[3]
    shifted = with_start_options(economics_catalog, {pid: STARTS})
    scenarios = range(0, 150)
    base_in, shifted_in = (
        prepare_inputs(c, economics_config) for c in (economics_catalog, shifted)
    )
    base_w = np.linspace(1e9, 6e9, base_in.n_projects) if weighted else None
    shifted_w = np.zeros(shifted_in.n_projects) if weighted else None
    new_ids = list(shifted.projects.index)
    if weighted:  # the same portfolio: the other projects at their weights, the options at 0
        for k, other in enumerate(ids):
            if other != pid:
                shifted_w[new_ids.index(other)] = base_w[k]
    base = engine_numpy.run(base_in, scenarios, weights=base_w, chunk=64)
    got = engine_numpy.run(shifted_in, scenarios, weights=shifted_w, chunk=64)
    for k, other in enumerate(ids):
        if other == pid:
            continue
        for name in PROJECT_FIELDS:
            a, b = base.project[name][:, k], got.project[name][:, new_ids.index(other)]
            assert np.array_equal(a, b), (other, name)
    for name in base.scenario:
        assert np.array_equal(base.scenario[name], got.scenario[name]), name
    assert np.array_equal(base.stress, got.stress)
    if weighted:  # pid's own cash differs, so compare the portfolio without it
        base_w[ids.index(pid)] = 0.0
        base = engine_numpy.run(base_in, scenarios, weights=base_w, chunk=64)
        for name in base.cash:
            assert np.array_equal(base.cash[name], got.cash[name]), name


@pytest.mark.slow
def test_start_options_chunking_invariant(economics_catalog, economics_config) -> None:
    """The active-prefix loop orders rows per chunk by their last active quarter; a scenario's
    numbers do not depend on the chunk it is in (the order differs between chunks)."""
    shifted = with_start_options(
        economics_catalog, {p: STARTS for p in economics_catalog.project_ids[:3]}
    )
    inputs = prepare_inputs(shifted, economics_config)
    weights = np.linspace(1e9, 6e9, inputs.n_projects)
    scenarios = range(40, 70)
    reference = engine_numpy.run(inputs, scenarios, weights=weights)
    for chunk in (1, 7, 13):
        other = engine_numpy.run(inputs, scenarios, weights=weights, chunk=chunk)
        for name in PROJECT_FIELDS:
            assert np.array_equal(reference.project[name], other.project[name]), name
        for name in reference.cash:
            assert np.array_equal(reference.cash[name], other.cash[name]), name
