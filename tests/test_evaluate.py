"""Out-of-sample evaluation: figures equal a direct computation, independent of chunking (to
rounding) and of streaming the scenarios in blocks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_model_support import synthetic_catalog, synthetic_scenarios

from portopt.config import RunConfig
from portopt.evaluate import Aggregates, evaluate, evaluation_of, portfolio_figures
from portopt.model import optimize
from portopt.model.risk import cvar


@pytest.fixture(scope="module")
def run():
    catalog = synthetic_catalog(12, 5, seed=31)
    cfg = RunConfig.model_validate(
        {
            "model": {
                "budget_usd": 7e10,
                "groups": {
                    "recoupment": {"max_shortfall_share": 0.8, "min_expected_recovery": None}
                },
            }
        }
    )
    opt = synthetic_scenarios(catalog, 200, seed=2)
    fresh = synthetic_scenarios(catalog, 777, seed=2, first=200)
    allocation = optimize(catalog, cfg, opt)
    allocation.in_sample = portfolio_figures(catalog, cfg, opt, allocation.y, allocation.fund_usd)
    return catalog, cfg, allocation, fresh


def test_figures_match_direct_computation(run) -> None:
    catalog, cfg, allocation, fresh = run
    ev = evaluate(allocation, catalog, cfg, fresh)
    f, y = allocation.fund_usd, allocation.y
    japan, draw = fresh["pv_japan"] @ f, fresh["pv_draw"] @ f
    ratio = japan / draw
    out = ev.metrics["out_of_sample"]
    assert out["scenarios"] == 777 and out["first_scenario"] == 200
    assert out["recovery_ratio"]["mean"] == pytest.approx(ratio.mean())
    assert out["recovery_ratio"]["p10"] == pytest.approx(np.quantile(ratio, 0.1))
    assert out["p_recoup"] == pytest.approx((ratio >= 1).mean())
    assert out["shortfall_cvar_0.95_share"] == pytest.approx(cvar(draw - japan, 0.95) / f.sum())
    gap = catalog.chokepoints["us_gap"].to_numpy(float)
    w = catalog.chokepoints["weight"].to_numpy(float)
    cov = np.minimum(1, (fresh["online_share"] * y) @ catalog.capacity_matrix() / gap)
    score = (cov * fresh.stress) @ w / w.sum()
    assert out["coverage"]["mean"] == pytest.approx(score.mean())
    assert ev.coverage["expected_coverage"].to_numpy() == pytest.approx(cov.mean(axis=0), abs=1e-6)
    assert ev.coverage["p90"].to_numpy() == pytest.approx(np.quantile(cov, 0.9, axis=0), abs=1e-6)
    table = ev.allocation
    assert list(table.columns) == [
        "id",
        "name",
        "sector",
        "selected",
        "fund_usd",
        "fund_share",
        "expected_recovery_ratio",
        "p_recoup",
        "expected_online_share",
    ]
    assert table["p_recoup"].to_numpy() == pytest.approx(
        (fresh["recoup_q"] >= 0).mean(axis=0), abs=1e-6
    )
    assert table["fund_usd"].sum() == pytest.approx(f.sum(), rel=1e-9)
    assert ev.metrics["in_vs_out"]["coverage.mean"] == pytest.approx(
        out["coverage"]["mean"] - ev.metrics["in_sample"]["coverage"]["mean"]
    )
    assert ev.metrics["in_sample"]["scenarios"] == 200


def test_chunking_changes_nothing(run) -> None:
    catalog, cfg, allocation, fresh = run
    whole = portfolio_figures(catalog, cfg, fresh, allocation.y, allocation.fund_usd)
    pieces = portfolio_figures(catalog, cfg, fresh, allocation.y, allocation.fund_usd, chunk=50)
    for key, value in whole.items():  # BLAS blocking may change the last bit of a dot product
        if isinstance(value, dict):
            assert pieces[key] == pytest.approx(value, rel=1e-12)
        else:
            assert pieces[key] == pytest.approx(value, rel=1e-12)
    a = evaluate(allocation, catalog, cfg, fresh, chunk=13)
    b = evaluate(allocation, catalog, cfg, fresh)
    assert a.allocation.equals(b.allocation) and a.coverage.equals(b.coverage)


def test_engine_scenarios_end_to_end(small_catalog) -> None:
    """The real engine's scenarios: optimise on [0, 64), evaluate on [64, 192), re-check."""
    from portopt.engine.generate import generate_scenarios
    from portopt.model import check_solution

    cfg = RunConfig.model_validate(
        {
            "scenarios": {"optimisation": 64, "evaluation": 128},
            "model": {
                "groups": {
                    "recoupment": {"max_shortfall_share": 2.0, "min_expected_recovery": None}
                }
            },
        }
    )
    opt = generate_scenarios(small_catalog, cfg, "numpy", scenarios=range(0, 64))
    fresh = generate_scenarios(small_catalog, cfg, "numpy", scenarios=range(64, 192))
    allocation = optimize(small_catalog, cfg, opt)
    assert allocation.status == "optimal"
    assert check_solution(allocation, small_catalog, opt, cfg) == []
    ev = evaluate(allocation, small_catalog, cfg, fresh)
    assert ev.metrics["out_of_sample"]["first_scenario"] == 64
    assert len(ev.allocation) == len(small_catalog.project_ids)
    assert set(ev.allocation.loc[ev.allocation["selected"], "id"]) == set(allocation.selected)


@pytest.mark.slow
def test_streamed_blocks_equal_one_evaluation(small_catalog) -> None:
    """Scenarios folded in as blocks of 7 (with cash paths) give the figures and tables of the
    whole set evaluated at once."""
    from portopt.engine.generate import generate_scenarios

    cfg = RunConfig.model_validate(
        {"model": {"groups": {"recoupment": {"min_expected_recovery": None}}}}
    )
    fund = np.linspace(1e9, 3e9, len(small_catalog.project_ids))
    allocation = SimpleNamespace(
        y=(fund > 1.5e9).astype(float),
        fund_usd=fund,
        status="optimal",
        solver="test",
        objective=0.0,
        mip_gap=0.0,
    )
    whole = generate_scenarios(small_catalog, cfg, "numpy", range(10, 60), weights=fund)
    one = evaluate(allocation, small_catalog, cfg, whole)
    aggregates = Aggregates(small_catalog, allocation.y, fund, whole.n)
    for first in range(10, 60, 7):
        block = range(first, min(60, first + 7))
        aggregates.add(generate_scenarios(small_catalog, cfg, "numpy", block, weights=fund))
    streamed = evaluation_of(allocation, small_catalog, cfg, aggregates)
    for key, value in one.metrics["out_of_sample"].items():  # BLAS may block rows differently
        assert streamed.metrics["out_of_sample"][key] == pytest.approx(value, rel=1e-12), key
    pd.testing.assert_frame_equal(streamed.coverage, one.coverage, rtol=1e-6)
    pd.testing.assert_frame_equal(streamed.allocation, one.allocation, rtol=1e-12)
    for name, paths in whole.cash.items():
        np.testing.assert_array_equal(aggregates.cash[name], paths.astype(np.float32))
    with pytest.raises(ValueError, match="consecutive"):
        aggregates.add(generate_scenarios(small_catalog, cfg, "numpy", range(0, 3)))
