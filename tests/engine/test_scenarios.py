"""The scenario engine: determinism, invariances, a hand-computed case, statistics, I/O, CLI."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import make_catalog, project_row, write_catalog_csv
from pydantic import ValidationError
from test_start_options import STARTS, with_start_options
from typer.testing import CliRunner

from portopt.catalog import project_entity
from portopt.config import RunConfig
from portopt.engine import numpy_engine as engine_numpy
from portopt.engine.backend import resolve_backend, to_host, usable_cores
from portopt.engine.generate import generate_scenarios
from portopt.engine.inputs import prepare_inputs
from portopt.engine.philox import key_of_seed, uniforms
from portopt.engine.scenario_set import PROJECT_FIELDS, EngineResult, ScenarioSet
from portopt.errors import BackendError, ScenarioError

ROOT = Path(__file__).resolve().parents[2]


def _equal(
    a: ScenarioSet | EngineResult,
    b,
    rows_a=slice(None),
    rows_b=slice(None),
    cols_a=slice(None),
    cols_b=slice(None),
) -> None:
    """Bitwise equality of every output (NaN never expected)."""
    for name in PROJECT_FIELDS:
        x, y = a.project[name][rows_a][:, cols_a], b.project[name][rows_b][:, cols_b]
        assert x.dtype == y.dtype
        assert np.array_equal(x, y), name
    for name in a.scenario:
        assert np.array_equal(a.scenario[name][rows_a], b.scenario[name][rows_b]), name
    assert np.array_equal(a.stress[rows_a], b.stress[rows_b])


# ------------------------------------------------------------------------------------------
# determinism and invariances


def test_deterministic(small_catalog, small_config):
    a = generate_scenarios(small_catalog, small_config, backend="numpy")
    b = generate_scenarios(small_catalog, small_config, backend="numpy")
    _equal(a, b)
    assert a.n == small_config.scenarios.optimisation
    assert a.metadata["seed"] == small_config.seed
    assert a.metadata["backend"] == "numpy"
    assert a.metadata["config_digest"] == small_config.digest()
    c = generate_scenarios(
        small_catalog, small_config.model_copy(update={"seed": 1}), backend="numpy"
    )
    assert not np.array_equal(a["pv_japan"], c["pv_japan"])


@pytest.mark.slow
def test_chunk_size_invariance_bitwise(small_catalog, small_config):
    inputs = prepare_inputs(small_catalog, small_config)
    scen = range(10, 40)
    reference = engine_numpy.run(inputs, scen)
    for chunk in (1, 3, 16, 29, 500):
        _equal(reference, engine_numpy.run(inputs, scen, chunk=chunk))
    calls = []
    threaded = engine_numpy.run(
        inputs, scen, chunk=9, workers=3, progress=lambda done, total: calls.append((done, total))
    )
    _equal(reference, threaded)
    assert calls[-1] == (30, 30) and len(calls) == 4


def test_chunk_size_is_bounded_by_cells_and_by_memory(small_catalog, small_config):
    """A chunk holds at most MAX_CELLS (project, scenario) cells whatever its projects, and
    never more than ``memory_mb`` allows: a catalog of few projects gets more scenarios a
    chunk than one of many (the cap was a fixed 2,048 scenarios)."""
    inputs = prepare_inputs(small_catalog, small_config)
    p = inputs.n_projects
    roomy = engine_numpy.chunk_size(inputs, 1e6)
    assert roomy == engine_numpy.MAX_CELLS // p
    assert roomy * p <= engine_numpy.MAX_CELLS < (roomy + 1) * p
    assert roomy > 2048  # few projects: longer arrays than the old fixed cap
    tight = engine_numpy.chunk_size(inputs, 1.0)
    assert 1 <= tight < roomy
    per = 8 * (engine_numpy.PROJECT_ARRAYS * p + 200 + 8 * inputs.n_chokepoints)
    assert tight == 2**20 // per
    wide = inputs.subset(np.arange(p).repeat(60))
    assert engine_numpy.chunk_size(wide, 1e6) == engine_numpy.MAX_CELLS // (60 * p)


@pytest.mark.slow
@pytest.mark.parametrize("shifted", [False, True], ids=["plain", "start_options"])
def test_threads_from_the_config_change_no_number(
    small_catalog, small_config, monkeypatch, shifted
):
    """scenarios.threads (default: every core) sets the NumPy engine's threads; 1 and 2 threads
    give bitwise the same scenarios, with and without a portfolio's cash paths, on the catalog
    and on one whose projects are start options sharing an entity (issue 11)."""
    if shifted:
        ids = small_catalog.project_ids
        small_catalog = with_start_options(small_catalog, {p: STARTS for p in ids[:4]})
    seen: list[int] = []
    run = engine_numpy.run

    def spy(*args, workers: int = 1, **kwargs):
        seen.append(workers)
        return run(*args, workers=workers, **kwargs)

    monkeypatch.setattr(engine_numpy, "run", spy)
    fund = np.full(len(small_catalog.projects), 1e8)
    sets = []
    for threads in (1, 2):
        cfg = small_config.model_copy(deep=True)
        cfg.scenarios.threads = threads
        cfg.scenarios.chunk_memory_mb = 0.2  # several chunks, so two threads share them
        sets.append(generate_scenarios(small_catalog, cfg, "numpy", range(0, 48), weights=fund))
    assert seen == [1, 2]
    _equal(*sets)
    for name in sets[0].cash:
        assert np.array_equal(sets[0].cash[name], sets[1].cash[name]), name
    generate_scenarios(small_catalog, small_config, "numpy", range(0, 8))
    assert seen[-1] == usable_cores()


@pytest.mark.slow
def test_scenario_alone_equals_scenario_in_batch(small_catalog, small_config):
    inputs = prepare_inputs(small_catalog, small_config)
    batch = engine_numpy.run(inputs, range(0, 300))
    for s in (0, 1, 137, 299):
        alone = engine_numpy.run(inputs, range(s, s + 1))
        _equal(batch, alone, rows_a=slice(s, s + 1))
    shard = engine_numpy.run(inputs, range(100, 140))
    _equal(batch, shard, rows_a=slice(100, 140))


def test_removing_a_project_leaves_the_others_bitwise_equal(small_catalog, small_config):
    full = generate_scenarios(small_catalog, small_config, backend="numpy")
    ids = small_catalog.project_ids
    for drop in (ids[0], ids[3]):
        keep = [i for i in ids if i != drop]
        part = generate_scenarios(small_catalog.subset(keep), small_config, backend="numpy")
        cols = [ids.index(i) for i in keep]
        _equal(full, part, cols_a=cols)


@pytest.mark.slow
def test_weights_give_portfolio_cash(small_catalog, small_config):
    inputs = prepare_inputs(small_catalog, small_config)
    w = np.linspace(1e9, 6e9, inputs.n_projects)
    res = engine_numpy.run(inputs, range(0, 50), weights=w)
    plain = engine_numpy.run(inputs, range(0, 50))
    _equal(res, plain)  # weights change nothing per project
    disc = inputs.discount[0]  # every fixture project is funded by USD bonds, no yen
    for cash, pv in (("cash_japan", "pv_japan"), ("cash_us", "pv_us"), ("cash_draw", "pv_draw")):
        assert res.cash[cash].shape == (50, inputs.horizon)
        expected = (res.project[pv] * w).sum(axis=1)
        np.testing.assert_allclose(res.cash[cash] @ disc, expected, rtol=1e-12)
    chunked = engine_numpy.run(inputs, range(0, 50), weights=w, chunk=7)
    for name in res.cash:
        assert np.array_equal(res.cash[name], chunked.cash[name])


# ------------------------------------------------------------------------------------------
# a deterministic case against a hand-computed waterfall


def _deterministic_config() -> RunConfig:
    flat = {"reversion": 0.5, "vol": 0.0, "coercion_jump": 0.3}
    return RunConfig.model_validate(
        {
            "seed": 99,
            "scenarios": {
                "optimisation": 3,
                "start": "2026Q1",
                "window": ["2026Q3", "2027Q4"],
                "tax_rate": 0.2,
                "ramp_quarters": 2,
                "salvage_share": 0.5,
                "sofr": {
                    "initial": 0.03,
                    "mean": 0.03,
                    "reversion": 0.25,
                    "vol": 0.0,
                    "floor": 0.0,
                },
                "inflation": {"mean": 0.0, "vol": 0.0},  # real money, by hand
                "factors": {
                    k: flat for k in ("power", "gas", "ndpr", "copper", "chip_demand", "usdjpy")
                },
                "coercion": {
                    "rate_per_year": 0.0,
                    "mean_duration_quarters": 4.0,
                    "stress_uplift": 1.0,
                },
                "stress_vol": 0.0,
                "labour_delay_beta": 0.25,
                "overrun_labour_corr": 0.3,
                "backlog": {"mean_quarters": 0.0, "vol_quarters": 0.0, "sectors": ["energy"]},
            },
            "deal": {"funding": {"usd_bonds": 0.04}},
        }
    )


def _deterministic_catalog():
    # A: $1B, 4 quarters from 2026Q2, one year of life, $8B/yr revenue -> unit 2 per quarter,
    # opex 20%, power factor (flat: Pb = 1) with half under a 1.2 floor, spread 2%; all of the
    # cost expensed when placed in service (a tax loss carried into the next quarter).
    a = project_row(
        "plant_a",
        base_cost_usd=1e9,
        build_quarters=4,
        earliest_start="2026Q2",
        life_years=1,
        revenue_usd_per_year=8e9,
        opex_share=0.2,
        price_factor="power",
        price_beta=1.0,
        offtake_share=0.5,
        offtake_floor=1.2,
        overrun_median=0.1,
        overrun_p90=0.1,
        delay_median_quarters=0.0,
        failure_prob=0.0,
        spread=0.02,
        depreciation="straight_line",
        tax_life_years=1.0,
        bonus_share=1.0,
    )
    # B: always fails; starts before the horizon (2025Q3 -> quarter 0), 6 quarters, no factor.
    b = project_row(
        "plant_b",
        base_cost_usd=2e9,
        build_quarters=6,
        earliest_start="2025Q3",
        life_years=5,
        revenue_usd_per_year=1e9,
        overrun_median=0.0,
        overrun_p90=0.0,
        delay_median_quarters=0.0,
        failure_prob=1.0,
        spread=0.01,
    )
    return make_catalog(
        [a, b], [("grid", "GW", 1.0, 1.0, False), ("magnets", "kt", 1.0, 1.0, True)]
    )


def test_deterministic_case_by_hand():
    config = _deterministic_config()
    out = generate_scenarios(_deterministic_catalog(), config, backend="numpy")
    v = 1.04**-0.25
    H = prepare_inputs(_deterministic_catalog(), config).horizon

    # --- plant A, by hand: M = 1.1, T = 4 (no delay), draws 0.275 in quarters 1..4
    draws = [0.0] + [1.1 / 4] * 4 + [0.0] * (H - 5)
    # operating quarters 5..8, ramp 0.5, 1, 1, 1; rev = 2 ramp (0.5 * 1 + 0.5 * 1.2) = 2.2 ramp
    # ebitda = 2.2 ramp - 0.4 ramp = 1.8 ramp: 0.9, 1.8, 1.8, 1.8. Tax at 20%: quarter 5
    # expenses the basis 1.1 (loss 0.2 carried, no tax, cash 0.9); quarter 6 offsets the loss
    # (within 80% of 1.8), tax 0.2 (1.8 - 0.2) = 0.32, cash 1.48; then tax 0.36, cash 1.44.
    cash = [0.0] * 5 + [0.9, 1.48, 1.44, 1.44] + [0.0] * (H - 9)
    g = math.sqrt(1.0 + (0.03 + 0.02) / 2)  # 6-month SOFR + spread, compounded semi-annually
    bal, jp, us, recoup = 0.0, [], [], -1
    for t in range(H):
        bal = bal * g + draws[t]
        if bal > 0 and 0.5 * cash[t] <= bal:
            j = 0.5 * cash[t]
            bal -= j
        elif bal > 0:
            j = bal + 0.1 * (cash[t] - 2 * bal)
            bal = 0.0
        else:
            j = 0.1 * cash[t]
        jp.append(j)
        us.append(cash[t] - j)
        if recoup < 0 and t >= 4 and bal <= 0:
            recoup = t
    # the three branches all occur: 50/50 in quarter 5, cleared in 6, 90/10 in 7-8
    assert recoup == 6 and jp[7] == pytest.approx(0.144)
    pv = lambda xs: sum(v ** (t + 1) * x for t, x in enumerate(xs))  # noqa: E731
    for s in range(out.n):
        assert out["pv_draw"][s, 0] == pytest.approx(pv(draws), rel=1e-13)
        assert out["pv_japan"][s, 0] == pytest.approx(pv(jp), rel=1e-13)
        assert out["pv_us"][s, 0] == pytest.approx(pv(us), rel=1e-13)
        assert out["recoup_q"][s, 0] == 6
        assert out["complete_q"][s, 0] == 5
        assert out["online_share"][s, 0] == pytest.approx((0.5 + 1 + 1) / 6, rel=1e-15)
        assert out["balance_end"][s, 0] == 0.0

    # --- plant B: fails in quarter fq = floor(ua * 6) (ua of the project's purpose 2)
    key = key_of_seed(99)
    for s in range(out.n):
        ua, _ = uniforms(s, project_entity("plant_b"), 0, 2, key)
        fq = min(math.floor(float(ua) * 6), 5)
        amount = 1.0 / 6
        g_b = math.sqrt(1.0 + (0.03 + 0.01) / 2)
        bal_b, pv_jp, pv_us_b, pv_draw = 0.0, 0.0, 0.0, 0.0
        for t in range(fq + 1):
            bal_b = bal_b * g_b + amount
            pv_draw += v ** (t + 1) * amount
        salvage = 0.5 * amount * (fq + 1)
        # salvage in quarter fq is below half the balance: Japan gets half of it
        assert 0.5 * salvage <= bal_b
        pv_jp = v ** (fq + 1) * 0.5 * salvage
        pv_us_b = pv_jp
        bal_b -= 0.5 * salvage  # lost at the end, quarter fq: it no longer grows
        assert out["complete_q"][s, 1] == -1
        assert out["recoup_q"][s, 1] == -1
        assert out["online_share"][s, 1] == 0.0
        assert out["pv_draw"][s, 1] == pytest.approx(pv_draw, rel=1e-13)
        assert out["pv_japan"][s, 1] == pytest.approx(pv_jp, rel=1e-13)
        assert out["pv_us"][s, 1] == pytest.approx(pv_us_b, rel=1e-13)
        assert out["balance_end"][s, 1] == pytest.approx(bal_b, rel=1e-12)

    assert (out.stress == 1.0).all()
    assert (out.scenario["coercion_share"] == 0).all()
    assert (out.scenario["coercion_episodes"] == 0).all()


# ------------------------------------------------------------------------------------------
# statistics within sampling error (fixed seeds, bounds at 4+ sigma)

N_STAT = 4000


@pytest.fixture(scope="module")
def stat_case():
    # zero delay and failure-free projects so that pv_draw reveals the overrun multiplier
    rows = [
        project_row(
            "nuclear",
            overrun_median=0.6,
            overrun_p90=1.5,
            failure_prob=0.0,
            delay_median_quarters=0.0,
            build_quarters=8,
            earliest_start="2026Q1",
        ),
        project_row(
            "factory",
            sector="semiconductors",
            overrun_median=0.1,
            overrun_p90=0.35,
            failure_prob=0.0,
            delay_median_quarters=0.0,
            build_quarters=8,
        ),
        project_row("risky", sector="metals", failure_prob=0.15),
        project_row("risky_too", sector="metals", failure_prob=0.15),
        project_row("safe", sector="quantum", failure_prob=0.02),
    ]
    catalog = make_catalog(
        rows, [("grid", "GW", 1.0, 1.0, False), ("magnets", "kt", 1.0, 1.0, True)]
    )
    config = RunConfig.model_validate(
        {
            "seed": 12345,
            "scenarios": {
                "backlog": {"sectors": []},
                "coercion": {"rate_per_year": 0.5, "mean_duration_quarters": 3.0},
            },
        }
    )
    out = generate_scenarios(catalog, config, backend="numpy", scenarios=range(N_STAT))
    return catalog, config, out


def _fraction_within(x: np.ndarray, p: float) -> None:
    """The fraction ``x.mean()`` of Bernoulli(p) draws is within 4.5 sigma of ``p``."""
    assert abs(x.mean() - p) < 4.5 * math.sqrt(p * (1 - p) / x.size)


@pytest.mark.parametrize(("col", "med", "p90"), [(0, 0.6, 1.5), (1, 0.1, 0.35)])
def test_overrun_median_and_p90(stat_case, col, med, p90):
    catalog, config, out = stat_case
    inputs = prepare_inputs(catalog, config)
    # no delay: draws of M / 8 in quarters 0..7, so pv_draw = M / 8 * sum_{t<8} v^(t+1)
    overrun = out["pv_draw"][:, col] / (inputs.discount[0, :8].sum() / 8)
    _fraction_within(overrun <= 1 + med, 0.5)
    _fraction_within(overrun <= 1 + p90, 0.9)
    assert np.median(overrun) == pytest.approx(1 + med, rel=0.05)


def test_failure_frequency(stat_case):
    _, _, out = stat_case
    failed = out["complete_q"] == -1
    assert not failed[:, :2].any()
    for col, p in ((2, 0.15), (3, 0.15), (4, 0.02)):
        _fraction_within(failed[:, col], p)
    # the copula: failures in one sector are positively correlated
    assert np.corrcoef(failed[:, 2], failed[:, 3])[0, 1] > 0.05


def test_coercion_frequency(stat_case):
    _, config, out = stat_case
    inputs = prepare_inputs(_fake_catalog(), config)
    # exact expectations of the two-state chain: pi_t = P(c[t] = 1)
    pi, starts, window = 0.0, 0.0, 0.0
    for t in range(inputs.horizon):
        starts += (1 - pi) * inputs.p_start
        pi = (1 - pi) * inputs.p_start + pi * (1 - inputs.p_end)
        if inputs.w0 <= t <= inputs.w1:
            window += pi / inputs.window_len
    episodes = out.scenario["coercion_episodes"]
    share = out.scenario["coercion_share"]
    assert abs(episodes.mean() - starts) < 4.5 * episodes.std() / math.sqrt(episodes.size)
    assert abs(share.mean() - window) < 4.5 * share.std() / math.sqrt(share.size)
    # China-exposed stress carries the coercion uplift; the other has mean 1
    stress = out.stress
    assert abs(stress[:, 0].mean() - 1) < 4.5 * stress[:, 0].std() / math.sqrt(N_STAT)
    assert stress[:, 1].mean() > stress[:, 0].mean()


def _fake_catalog():
    return make_catalog([project_row("x")], [("grid", "GW", 1.0, 1.0, False)])


# ------------------------------------------------------------------------------------------
# bad numbers, backends, I/O


def test_non_finite_scenarios_are_rejected(small_catalog, small_config):
    catalog = small_catalog
    catalog.projects.loc["gas_ohio", "revenue_usd_per_year"] = float("inf")
    with pytest.raises(ScenarioError, match="non-finite"):
        generate_scenarios(catalog, small_config, backend="numpy")


def test_check_finite_names_the_place(small_catalog, small_config):
    out = generate_scenarios(small_catalog, small_config, backend="numpy", scenarios=range(5, 9))
    out.project["pv_us"][2, 1] = np.nan
    with pytest.raises(ScenarioError, match="scenario 7, project 'ap1000_pair'"):
        out.check_finite()


def test_bad_requests(small_catalog, small_config):
    with pytest.raises(ScenarioError):
        generate_scenarios(small_catalog, small_config, backend="numpy", scenarios=range(0, 9, 2))
    with pytest.raises(ScenarioError):
        generate_scenarios(small_catalog, small_config, backend="numpy", weights=np.ones(2))
    with pytest.raises(ScenarioError):
        generate_scenarios(
            small_catalog, small_config, backend="numpy", scenarios=range(2**32 - 1, 2**32 + 1)
        )


def test_backend_resolution():
    assert resolve_backend("numpy") == "numpy"
    assert resolve_backend("auto") in ("numpy", "cupy")
    with pytest.raises(BackendError):
        resolve_backend("torch")
    if importlib.util.find_spec("cupy") is None:
        assert resolve_backend("auto") == "numpy"
        with pytest.raises(BackendError, match="CuPy"):
            resolve_backend("cupy")
    x = np.arange(3)
    assert to_host(x) is x
    assert to_host({"a": [x]})["a"][0] is x


def test_parquet_round_trip(small_catalog, small_config, tmp_path):
    out = generate_scenarios(small_catalog, small_config, backend="numpy", scenarios=range(7, 40))
    out.to_parquet(tmp_path / "s.parquet")
    back = ScenarioSet.from_parquet(tmp_path / "s.parquet")
    assert back.first == 7 and back.n == 33
    assert back.project_ids == out.project_ids
    assert back.chokepoint_ids == out.chokepoint_ids
    _equal(out, back)
    assert back.metadata["seed"] == small_config.seed


def test_concat_of_shards_equals_one_batch(small_catalog, small_config):
    whole = generate_scenarios(small_catalog, small_config, backend="numpy", scenarios=range(30))
    parts = [
        generate_scenarios(small_catalog, small_config, backend="numpy", scenarios=range(a, b))
        for a, b in ((10, 30), (0, 10))
    ]
    _equal(whole, ScenarioSet.concat(parts))


def test_cli_writes_readable_parquet(small_catalog, tmp_path):
    from portopt.cli.main import app

    folder = write_catalog_csv(small_catalog, tmp_path / "catalog")
    config = tmp_path / "run.yaml"
    config.write_text(f"catalog: {folder}\nscenarios:\n  optimisation: 40\n")
    target = tmp_path / "deep" / "s.parquet"
    result = CliRunner().invoke(
        app,
        [
            "scenarios",
            str(config),
            "--out",
            str(target),
            "--backend",
            "numpy",
            "--scenarios",
            "25",
            "--first",
            "5",
            "--seed",
            "7",
        ],
    )
    assert result.exit_code == 0, result.output
    back = ScenarioSet.from_parquet(target)
    assert back.first == 5 and back.n == 25
    assert back.metadata["seed"] == 7
    assert not list(target.parent.glob("*.tmp"))
    direct = generate_scenarios(
        small_catalog,
        RunConfig.model_validate({"seed": 7}),
        backend="numpy",
        scenarios=range(5, 30),
    )
    _equal(direct, back)


def test_cli_reports_a_bad_backend(small_catalog, tmp_path):
    from portopt.cli.main import app

    folder = write_catalog_csv(small_catalog, tmp_path / "catalog")
    config = tmp_path / "run.yaml"
    config.write_text(f"catalog: {folder}\n")
    result = CliRunner().invoke(
        app, ["scenarios", str(config), "--out", str(tmp_path / "s.parquet"), "--backend", "torch"]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "s.parquet").exists()


# ------------------------------------------------------------------------------------------
# the materialising baseline of bench/ computes the same model


def _baseline():
    path = ROOT / "bench" / "baseline_materialising.py"
    spec = importlib.util.spec_from_file_location("baseline_materialising", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("economics", [False, True], ids=["defaults", "economics"])
def test_materialising_baseline_agrees(
    small_catalog, small_config, economics_catalog, economics_config, economics
):
    if economics:
        inputs = prepare_inputs(economics_catalog, economics_config)
    else:
        inputs = prepare_inputs(small_catalog, small_config)
    scen = range(3, 203)
    engine = engine_numpy.run(inputs, scen)
    base = _baseline().simulate(inputs, scen)
    for name in PROJECT_FIELDS:
        a, b = engine.project[name], base[name]
        if a.dtype.kind == "i":
            assert np.array_equal(a, b), name
        else:
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(base["stress"], engine.stress, rtol=1e-9)
    for name in ("coercion_share", "coercion_episodes"):
        np.testing.assert_allclose(base[name], engine.scenario[name], rtol=1e-12)


# ------------------------------------------------------------------------------------------
# engine inputs


def test_engine_inputs_fields(small_catalog):
    config = RunConfig.model_validate(
        {
            "scenarios": {
                "factors": {
                    "power": {"reversion": 0.0, "vol": 0.2},
                    "gas": {},
                    "ndpr": {},
                    "copper": {},
                    "chip_demand": {},
                    "usdjpy": {},
                },
                "coercion": {"rate_per_year": 0.4, "mean_duration_quarters": 5.0},
            }
        }
    )
    catalog = small_catalog
    catalog.projects.loc["diamond_grit", "failure_prob"] = 0.0
    catalog.projects.loc["dc_campus", "failure_prob"] = 1.0
    inp = prepare_inputs(catalog, config)
    assert inp.ou_a[0] == 1.0 and inp.ou_b[0] == pytest.approx(0.1)
    assert inp.ou_a[1] == pytest.approx(math.exp(-0.5 * 0.25))
    assert inp.p_start == pytest.approx(1 - math.exp(-0.1)) and inp.p_end == 0.2
    assert np.allclose(inp.chol @ inp.chol.T, config.scenarios.correlation, atol=1e-10)
    assert inp.fail_threshold[2] == -np.inf and inp.fail_threshold[5] == np.inf
    assert inp.fail_threshold[1] == pytest.approx(-1.0364333894937898)  # Phi^-1(0.15)
    assert inp.factor.tolist() == [1, 0, -1, 2, 4, 0]
    assert inp.q0.tolist() == [2, 4, 0, 1, 3, 40]
    assert inp.backlog.tolist() == [1, 1, 0, 0, 0, 1]
    assert inp.exposed.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert (inp.w0, inp.w1, inp.window_len) == (8, 39, 32)
    H = inp.horizon
    assert H == 4 + 32 + 4 * 60 + 80  # the latest end (ap1000_pair) plus the delay cap
    v = np.array([1.047, 1.017, 1.041, 1.047]) ** -0.25  # the last: yen swapped at parity
    np.testing.assert_allclose(inp.discount, v[:, None] ** np.arange(1, H + 1), rtol=1e-13)
    assert inp.unit[0] == pytest.approx(7.0e9 / 3.33e10 / 4)
    assert inp.intensity[0] == pytest.approx(8000 / 33.3 / 1000)
    assert inp.key.dtype == np.uint32 and inp.project_entity.dtype == np.uint32
    keep = [0, 3, 5]
    sub = prepare_inputs(catalog.subset([catalog.project_ids[i] for i in keep]), config)
    part = inp.subset(keep)
    for name, arr in part.arrays().items():
        if name in ("dep_row", "dep_rates"):  # rows of the distinct schedules: compare those
            continue
        if name == "discount":  # the subset's own simulated length is shorter
            arr = arr[:, : sub.horizon]
        assert np.array_equal(arr, sub.arrays()[name]), name
    width = sub.dep_rates.shape[1]
    assert np.array_equal(part.dep_rates[part.dep_row][:, :width], sub.dep_rates[sub.dep_row])


def test_window_before_the_start_is_a_config_error():
    with pytest.raises(ValidationError, match=r"begins before scenarios\.start"):
        RunConfig.model_validate({"scenarios": {"start": "2030Q1", "window": ["2028Q1", "2029Q4"]}})


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_prepares_engine_inputs(small_catalog, path):
    from portopt.config import load_config

    config = load_config(path)
    inp = prepare_inputs(small_catalog, config)
    out = engine_numpy.run(inp, range(0, 4))
    assert out.project["pv_draw"].shape == (4, small_catalog.projects.shape[0])
