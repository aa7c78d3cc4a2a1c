"""The plan's solve: exact (it ends on its gap), reproducible, interruptible, and it reports its
progress (portopt.model.direct through portopt.model.optimize)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.model import DirectSweep, SolveProgress, build_model, optimize
from portopt.model.direct import DirectModel
from portopt.plan import load_commitments, plan_options
from portopt.planning import model_scenarios, plan_config, with_declines
from tests.conftest import build_small_catalog, write_catalog_csv

ROOT = Path(__file__).resolve().parents[2]


def _sets(folder: Path, **extra: object) -> list[str]:
    """A small plan: the test catalog's six projects over four rounds (2027Q1..Q4)."""
    sets = [
        f"catalog={folder}",
        "scenarios.optimisation=80",
        "scenarios.evaluation=20",
        "plan.first_quarter=2027Q1",
        "plan.deadline=2027-12-31",
        "model.groups.review_capacity.per_quarter=2",
        "model.groups.recoupment.min_expected_recovery=0.5",
        "model.groups.recoupment.max_shortfall_share=1.5",
        "model.groups.sector_shares.enabled=false",
        "model.budget_usd=8e10",
        "plan.target_usd=8e10",
        "output.report=false",
        "output.scenarios_parquet=false",
    ]
    return sets + [f"{k}={v}" for k, v in extra.items()]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cat = build_small_catalog()
    projects = cat.projects.copy()
    projects["status"] = "candidate"
    out = tmp_path_factory.mktemp("exact") / "catalog"
    write_catalog_csv(type(cat)(projects, cat.chokepoints, cat.capacity, cat.source), out)
    return out


def _inputs(folder: Path, **extra: object):
    config = plan_config(load_config(ROOT / "configs" / "default.yaml", _sets(folder, **extra)))
    catalog = load_catalog(config.catalog)
    options = plan_options(catalog, config, [])
    engine = generate_scenarios(
        options.engine_catalog,
        config,
        backend="numpy",
        scenarios=range(config.scenarios.optimisation),
    )
    opt, p, _ = with_declines(model_scenarios(engine, options), options.catalog, config)
    options.catalog.projects["decline_prob"] = p
    return options.catalog, opt, config


@pytest.fixture(scope="module")
def plan_inputs(folder: Path):
    return _inputs(folder)


def _bundled(*sets: str):
    """The default plan (bundled catalog, first tranche committed) on 100 scenarios: a MILP
    of a few nodes with a real branch-and-bound (the small catalog's ends at its root)."""
    config = plan_config(
        load_config(ROOT / "configs" / "default.yaml", ["scenarios.optimisation=100", *sets])
    )
    catalog = load_catalog(config.catalog)
    options = plan_options(catalog, config, load_commitments(None, catalog, config))
    engine = generate_scenarios(
        options.engine_catalog, config, backend="numpy", scenarios=range(100)
    )
    opt, p, _ = with_declines(model_scenarios(engine, options), options.catalog, config)
    options.catalog.projects["decline_prob"] = p
    return options.catalog, opt, config


@pytest.fixture(scope="module")
def bundled():
    return _bundled()


def test_one_binary_per_project_in_a_plan_and_none_without(plan_inputs) -> None:
    """x_q = Σ_t y_qt for each project with several rounds; the LP variant and a one-column
    catalog get none; a start vector sets x to the sum of its rounds."""
    catalog, opt, config = plan_inputs
    model = DirectModel.from_inputs(catalog, opt, config)
    d = model.data
    multi = [q for q in range(len(d.projects)) if d.columns_of(q).size > 1]
    assert d.is_plan and len(multi) > 0
    assert model.xcol.size == len(multi)
    y = np.zeros(d.n)
    y[d.columns_of(multi[0])[1]] = 1.0
    x = model.full_vector(y, d.f_min * y)
    assert x[model.xcol].tolist() == [1.0] + [0.0] * (len(multi) - 1)
    lp = DirectModel(d, model.cover, config, lp_lower=np.zeros(d.n))
    assert lp.xcol.size == 0


@pytest.mark.slow
def test_the_plan_ends_on_its_gap_the_same_whatever_the_limits_and_threads(bundled) -> None:
    """Optimal within solver.mip_gap, and byte-identical selection and amounts with a 30 s or
    a 300 s time limit, and with HiGHS's threads left to portopt (one, whatever the machine's
    cores) or set to 1: the solve stops on its gap, never on the clock. (``solver.threads: 2``
    is another HiGHS path, deterministic too, and may return another plan within the gap.)"""
    catalog, opt, base = bundled
    runs = []
    for limit, threads in ((30, None), (300, None), (300, 1)):
        solver = base.solver.model_copy(update={"time_limit_s": limit, "threads": threads})
        config = base.model_copy(update={"solver": solver})
        allocation = optimize(catalog, config, opt)
        assert allocation.status == "optimal"
        assert allocation.mip_gap <= config.solver.mip_gap
        runs.append(allocation)
    first = runs[0]
    for other in runs[1:]:
        assert np.asarray(other.y).tobytes() == np.asarray(first.y).tobytes()
        assert np.asarray(other.fund_usd).tobytes() == np.asarray(first.fund_usd).tobytes()
        assert other.objective == first.objective


@pytest.mark.slow
def test_progress_reports_incumbent_bound_and_gap(bundled) -> None:
    """HiGHS's callbacks reach the caller: the MILP round, an incumbent below its bound and
    the gap between them."""
    catalog, opt, config = bundled
    seen: list[SolveProgress] = []
    allocation = optimize(catalog, config, opt, progress=seen.append)
    assert allocation.status == "optimal"
    full = [p for p in seen if p.incumbent is not None and p.bound is not None]
    assert full, seen
    for p in full:
        assert p.round >= 1
        assert p.bound >= p.incumbent - 1e-9 * abs(p.incumbent)
        assert p.gap == pytest.approx(max(0.0, p.bound - p.incumbent) / abs(p.incumbent))


def test_a_signal_during_the_solve_surfaces_as_keyboard_interrupt(bundled) -> None:
    """Ctrl-C while HiGHS runs (its handler is called inside a HiGHS callback) stops the solve
    and reaches the caller as KeyboardInterrupt: never a swallowed signal and an 'optimal'."""
    catalog, opt, config = bundled
    calls: list[SolveProgress] = []

    def interrupt(progress: SolveProgress) -> None:
        calls.append(progress)
        os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C handler, whatever an earlier test in this process left installed
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            optimize(catalog, config, opt, progress=interrupt)
        assert calls  # the signal was sent from inside the solve
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_an_error_inside_a_callback_is_raised_not_swallowed(bundled) -> None:
    catalog, opt, config = bundled

    def broken(progress: SolveProgress) -> None:
        raise RuntimeError("display failed")

    with pytest.raises(RuntimeError, match="display failed"):
        optimize(catalog, config, opt, progress=broken)


def test_a_solver_error_is_never_optimal_and_gives_no_bound(
    bundled, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MILP round that HiGHS ends with kSolveError: status error, no objective, no bound."""
    catalog, opt, config = bundled
    sweep = build_model(catalog, opt, config)
    assert isinstance(sweep, DirectSweep)
    real = DirectModel.run

    def failing(self: DirectModel, time_limit: float) -> str:
        status = real(self, time_limit)
        return "kSolveError" if self.round >= 1 else status

    monkeypatch.setattr(DirectModel, "run", failing)
    result = sweep.solve()
    assert result.status == "error"
    assert result.bound is None and result.objective is None and result.solution is None


def test_a_solve_stopped_by_its_node_limit_says_so(bundled) -> None:
    """solver.node_limit is a deterministic safety net: a solve stopped there before its gap
    reports status node_limit with the gap it proved, never optimal."""
    catalog, opt, base = bundled
    solver = base.solver.model_copy(update={"node_limit": 1, "mip_gap": 1e-9})
    allocation = optimize(catalog, base.model_copy(update={"solver": solver}), opt)
    assert allocation.status == "node_limit"
    assert allocation.mip_gap is not None and allocation.mip_gap > 1e-9
    assert any("solver.node_limit (1 nodes)" in note for note in allocation.notes)
