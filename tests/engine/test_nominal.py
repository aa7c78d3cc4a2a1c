"""Issue 23, economics in one frame: nominal money (an inflation path escalating revenue, opex,
floors and credits), USD/JPY at covered interest parity, fuel following gas and the fund's
place in the stack, each held to hand computations or to the engine before the change.

The hand cases reuse test_economics' deterministic frame (no volatility, failure or delay, SOFR
flat at 4%, a $1B project starting in quarter 0 with four build quarters).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import build_small_catalog, make_catalog
from test_economics import RATE, _config, _mou, _project, _pv

from portopt.config import RunConfig
from portopt.engine import numpy_engine
from portopt.engine.inputs import prepare_inputs

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden" / "engine_v2.npz"
"""Engine v2's outputs (main at fb26d3e, before issue 23) on conftest's catalogs, 16 scenarios
with portfolio weights: written by the engine of that commit, never by this one."""

_OFF = {
    "scenarios": {
        "inflation": {"mean": 0.0, "vol": 0.0},
        "fuel_follows_gas": False,
        "tax": {"conventions": "full_year"},
    },
    "deal": {"funding": {"fx_parity": False}},
}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def _economics_catalog():
    conftest = sys.modules["conftest"]
    return conftest.economics_catalog.__wrapped__(build_small_catalog())


_ECONOMICS_DEAL = {
    "deal": {
        "compounding": "quarterly",
        "shortfall_accrues": False,
        "japan_share_until_recovered": 0.6,
        "reallocation": {"enabled": True, "after_years": 6, "japan_share": 0.9},
    }
}


@pytest.mark.parametrize("case", ["small_default", "economics", "economics_default_deal"], ids=str)
def test_without_inflation_every_output_equals_engine_v2_bit_for_bit(case: str) -> None:
    """Inflation mean 0 and vol 0 (with fuel, FX parity and the tax code's straight-line
    conventions, the other changes of the frame, off): every output of every scenario is the
    same double as before issue 23 (``pv_floor``, an output added since, aside)."""
    catalog, deal = {
        "small_default": (build_small_catalog(), {}),
        "economics": (_economics_catalog(), _ECONOMICS_DEAL),
        "economics_default_deal": (_economics_catalog(), {}),
    }[case]
    inputs = prepare_inputs(catalog, RunConfig.model_validate(_merge(deal, _OFF)))
    assert inputs.escalates == 0
    weights = np.linspace(1e9, 6e9, inputs.n_projects)
    got = numpy_engine.run(inputs, range(16), weights=weights)
    golden = np.load(GOLDEN)
    outputs = {**got.project, **got.scenario, **got.cash, "stress": got.stress}
    outputs.pop("pv_floor")  # added after engine v2: the US guarantor's cost
    for name, value in outputs.items():
        np.testing.assert_array_equal(value, golden[f"{case}/{name}"], err_msg=name)


def test_inflation_changes_the_outputs_and_one_path_per_scenario() -> None:
    """The same catalog with the default inflation: every operating row's cash differs, and a
    row with no indexation, fuel or credit is untouched (its cash is nominal already)."""
    catalog = build_small_catalog()
    off = prepare_inputs(catalog, RunConfig.model_validate(_OFF))
    on_config = RunConfig.model_validate(_merge(_OFF, {"scenarios": {"inflation": {}}}))
    on_config.scenarios.inflation = RunConfig().scenarios.inflation
    on = prepare_inputs(catalog, on_config)
    a, b = numpy_engine.run(off, range(8)), numpy_engine.run(on, range(8))
    assert (b.project["pv_us"] > a.project["pv_us"]).mean() > 0.9
    fixed = dataclasses.replace(on, indexation=np.zeros(on.n_projects))
    c = numpy_engine.run(fixed, range(8))
    np.testing.assert_array_equal(c.project["pv_japan"], a.project["pv_japan"])


PI = 0.03


def _nominal_config(tax_rate: float = 0.21) -> RunConfig:
    config = _config()
    config.scenarios.tax_rate = tax_rate
    config.scenarios.inflation = type(config.scenarios.inflation)(mean=PI, vol=0.0)
    return config


def _index(h: int) -> list[float]:
    """I[t] = I[t-1] (pi / 4 + 1) from I[-1] = 1, as the engine accumulates it."""
    out, level = [], 1.0
    for _ in range(h):
        level = level * (PI * 0.25 + 1.0)
        out.append(level)
    return out


def _by_hand(
    h: int,
    *,
    lev=1.0,
    opex=0.0,
    iota=1.0,
    phi=0.0,
    floor=0.0,
    floor_q=160,
    floor_iota=0.0,
    ptc=0.0,
    ptc_iota=0.0,
    credit_q=0,
    senior_spread=0.0,
    tenor=0,
    tax_rate=0.21,
    life_q=160,
):
    """Distributable cash per fund dollar, quarter by quarter, by the words of
    docs/scenario-model.md: escalated revenue and opex, a floor fixed in nominal terms unless
    indexed, straight-line depreciation over 2 years on the basis λ, the loss carried forward
    at 80%, an indexed or fixed PTC, then level senior debt service."""
    unit = 0.04 * lev
    index = _index(h)
    senior, nol, cash = 0.0, 0.0, []
    for t in range(h):
        i = (RATE + senior_spread) / 4
        interest = senior * i
        age = t - 4
        operating = 0 <= age < life_q
        avail = 0.0
        if operating:
            g = index[t] - 1.0
            esc = iota * g + 1.0
            pn = esc
            fn = (floor_iota * g + 1.0) * floor
            fl = max(pn, fn) if age < floor_q else pn
            ebitda = unit * (pn * (1 - phi) + fl * phi) - opex * unit * esc
            dep = lev * 0.125 if age < 8 else 0.0
            taxable = ebitda - dep - interest
            gain, loss = max(taxable, 0.0), max(-taxable, 0.0)
            use = min(nol, 0.8 * gain)
            nol = nol + loss - use
            tax = tax_rate * (gain - use)
            credit = ptc * (ptc_iota * g + 1.0) if age < credit_q else 0.0
            avail = max(ebitda - tax + credit, 0.0)
        due = interest + senior / max(tenor - age, 1) if operating and lev > 1 else 0.0
        paid = min(avail, due)
        senior = senior + interest - paid + ((lev - 1) * 0.25 if t < 4 else 0.0)
        cash.append(avail - paid)
    return cash


_SL = {"depreciation": "straight_line", "tax_life_years": 2.0, "bonus_share": 0.0}


@pytest.mark.parametrize(
    "name, values, hand",
    [
        (
            "merchant",
            {"price_factor": "power", "price_beta": 1.0, "opex_share": 0.5},
            {"opex": 0.5},
        ),
        (
            "floor_fixed",
            {"offtake_share": 1.0, "offtake_floor": 1.2, "offtake_years": 10.0},
            {"phi": 1.0, "floor": 1.2, "floor_q": 40},
        ),
        (
            "floor_indexed_half",
            {
                "offtake_share": 0.6,
                "offtake_floor": 1.1,
                "offtake_indexed": 1.0,
                "indexation": 0.5,
                "opex_share": 0.3,
            },
            {"phi": 0.6, "floor": 1.1, "floor_iota": 1.0, "iota": 0.5, "opex": 0.3},
        ),
        (
            "ptc_45y",
            {
                "credit": "ptc",
                "credit_rate": 25.0,
                "credit_unit": "USD/MWh",
                "credit_units_per_year": 4e6,
                "credit_years": 3.0,
                "credit_basis": "fact",
            },
            {"ptc": 0.025 * 0.93, "ptc_iota": 1.0, "credit_q": 12},
        ),
        (
            "ptc_45x",
            {
                "credit": "ptc",
                "credit_rate": 35.0,
                "credit_unit": "USD/kWh",
                "credit_units_per_year": 4e6,
                "credit_years": 3.0,
                "credit_basis": "fact",
            },
            {"ptc": 0.035 * 0.93, "ptc_iota": 0.0, "credit_q": 12},
        ),
        (
            "senior_debt",
            {
                "senior_debt_share": 0.5,
                "senior_spread": 0.01,
                "senior_tenor_years": 3.0,
                "senior_amortisation": "level",
                "opex_share": 0.2,
            },
            {"lev": 2.0, "senior_spread": 0.01, "tenor": 12, "opex": 0.2},
        ),
    ],
)
def test_escalated_cash_taxes_and_waterfall_by_hand(name, values, hand) -> None:
    """A deterministic 3%/yr inflation path: the row's escalated cash (revenue, opex, floor,
    credit, tax, senior debt) and Japan's PVs under the MOU split equal a hand computation."""
    row = _project(name, **{**_SL, **values})
    catalog = make_catalog([row], [("grid", "GW", 1.0, 1.0, False)])
    config = _nominal_config()
    inputs = prepare_inputs(catalog, config)
    out = numpy_engine.run(inputs, range(1), weights=np.ones(1))
    h = inputs.horizon
    cash = _by_hand(h, **hand)
    got = out.cash["cash_japan"][0] + out.cash["cash_us"][0]
    np.testing.assert_allclose(got, cash, rtol=1e-9, atol=1e-14)
    draws = [0.25] * 4 + [0.0] * (h - 4)
    japan, _, recoup = _mou(cash, draws, 163, 1 + (RATE + 0.02) / 4)
    assert out.project["pv_japan"][0, 0] == pytest.approx(_pv(japan), rel=1e-9)
    assert out.project["pv_draw"][0, 0] == pytest.approx(_pv(draws), rel=1e-12)
    assert out.project["recoup_q"][0, 0] == recoup


def test_a_nominal_fixed_floor_stops_binding_as_prices_rise() -> None:
    """A floor of 1.2 fixed in dollars binds while the escalated price is below it (about six
    years at 3%) and not after; an indexed floor binds for its whole term."""
    base = {"offtake_share": 1.0, "offtake_floor": 1.2, "offtake_years": 20.0, **_SL}
    rows = [_project("fixed", **base), _project("indexed", offtake_indexed=1.0, **base)]
    catalog = make_catalog(rows, [("grid", "GW", 1.0, 1.0, False)])
    inputs = prepare_inputs(catalog, _nominal_config(tax_rate=0.0))
    out = numpy_engine.run(inputs, range(1), weights=np.array([1.0, 0.0]))
    cash = out.cash["cash_japan"][0] + out.cash["cash_us"][0]
    index = np.array(_index(inputs.horizon))
    binding = index[4:84] < 1.2
    assert binding[:20].all() and not binding[-1]
    np.testing.assert_allclose(cash[4:84], 0.04 * np.maximum(index[4:84], 1.2), rtol=1e-12)


def _parity_config(**funding) -> RunConfig:
    config = _config()
    data = config.model_dump()
    data["deal"]["funding"] = {**data["deal"]["funding"], "fx_parity": True, **funding}
    return RunConfig.model_validate(data)


def test_yen_and_usd_funded_copies_recover_alike_at_parity() -> None:
    """Every volatility 0: a yen-funded row and its USD-funded copy give the same recovery
    (basis 0); flat FX (the engine before) gives the yen row the 1.7% discount's free lunch;
    a basis of 50bp lowers the yen row's recovery, as a dearer swap should."""
    rows = [
        _project("yen", jbic_funding="yen_loans", price_factor="power", price_beta=1.0),
        _project("usd", jbic_funding="usd_bonds", price_factor="power", price_beta=1.0),
    ]
    catalog = make_catalog(rows, [("grid", "GW", 1.0, 1.0, False)])
    recovery = {}
    for label, config in (
        ("parity", _parity_config()),
        ("flat", _config()),
        ("basis", _parity_config(basis=0.005)),
    ):
        out = numpy_engine.run(prepare_inputs(catalog, config), range(2))
        recovery[label] = out.project["pv_japan"][0] / out.project["pv_draw"][0]
    assert recovery["parity"][0] == pytest.approx(recovery["parity"][1], rel=1e-12)
    assert recovery["flat"][0] > recovery["flat"][1] + 0.1
    assert recovery["basis"][0] < recovery["parity"][0]
    assert recovery["basis"][1] == recovery["parity"][1]


def test_fuel_follows_gas() -> None:
    """A gas plant's fuel share of opex moves with the gas factor: with gas 25% dearer for
    ever (a coercion jump that never ends) the plant pays 0.8 x 25% more opex."""
    row = _project("gas_plant", opex_share=0.5, fuel_share=0.8, **_SL)
    catalog = make_catalog([row], [("grid", "GW", 1.0, 1.0, False)])
    config = _config()
    config.scenarios.tax_rate = 0.0
    config.scenarios.factors["gas"].coercion_jump = float(np.log(1.25))
    inputs = dataclasses.replace(prepare_inputs(catalog, config), p_start=1.0, p_end=0.0)
    out = numpy_engine.run(inputs, range(1), weights=np.ones(1))
    cash = out.cash["cash_japan"][0] + out.cash["cash_us"][0]
    np.testing.assert_allclose(cash[4:164], 0.04 - 0.02 * (0.2 + 0.8 * 1.25), rtol=1e-12)
    config.scenarios.fuel_follows_gas = False
    inputs = dataclasses.replace(prepare_inputs(catalog, config), p_start=1.0, p_end=0.0)
    off = numpy_engine.run(inputs, range(1), weights=np.ones(1))
    np.testing.assert_allclose(
        off.cash["cash_us"][0] + off.cash["cash_japan"][0],
        np.r_[[0.0] * 4, [0.02] * 160, [0.0] * (inputs.horizon - 164)],
        rtol=1e-12,
        atol=1e-15,
    )


def test_bundled_fuel_table_covers_the_gas_plants() -> None:
    from portopt.catalog import load_catalog

    catalog = load_catalog()
    inputs = prepare_inputs(catalog, RunConfig())
    share = dict(zip(inputs.project_ids, inputs.fuel_share.tolist(), strict=True))
    assert share["sb_energy_portsmouth_gas"] == 0.8
    assert share["fertilizer_ammonia_urea"] == 0.7
    assert share["wec_ap1000_pair_a"] == 0.0
    off = RunConfig.model_validate({"scenarios": {"fuel_follows_gas": False}})
    assert not prepare_inputs(catalog, off).fuel_share.any()
    import pandas as pd

    table = pd.read_csv(Path(__file__).parents[2] / "portopt" / "data" / "fuel.csv", comment="#")
    assert set(table["project_id"]) <= set(catalog.project_ids)  # no stale row
    assert table["fuel_share"].between(0, 1).all() and table["source"].str.len().gt(0).all()


def _stack_by_hand(cash, draws, position, omega, hurdle):
    """The fund's cash per fund dollar by docs/scenario-model.md, "The fund's place in the
    stack": ``cash + (1 - ω) p`` with ``p = min(cash / ω, due)``."""
    h = hurdle * 0.25 + 1.0
    due, capital, out = 0.0, 0.0, []
    for c, d in zip(cash, draws, strict=True):
        if position == "pari_passu":
            out.append(c)
            continue
        if position == "senior":
            due = due * h + d
        else:
            due = due * h + capital * (h - 1.0)
            capital = capital + d
        p = min(c / omega, due)
        due -= p
        if position == "preferred":
            capital -= min(c - omega * p, capital)
        out.append(c + (1.0 - omega) * p)
    return out


@pytest.mark.parametrize("position", ["pari_passu", "preferred", "senior"])
def test_each_stack_position_changes_japans_receipts_as_documented(position: str) -> None:
    """The fund holds half the junior capital (ω = 0.5), hurdle 8%: the fund's cash before the
    MOU split, Japan's PVs and recoup quarter equal the documented rules, by hand."""
    row = _project("plant", stack_position=position, stack_hurdle=0.08, fund_equity_share=0.5)
    catalog = make_catalog([row], [("grid", "GW", 1.0, 1.0, False)])
    inputs = prepare_inputs(catalog, _config())
    out = numpy_engine.run(inputs, range(1), weights=np.ones(1))
    h = inputs.horizon
    draws = [0.25] * 4 + [0.0] * (h - 4)
    junior = [0.0] * 4 + [0.04] * 160 + [0.0] * (h - 164)
    fund = _stack_by_hand(junior, draws, position, 0.5, 0.08)
    got = out.cash["cash_japan"][0] + out.cash["cash_us"][0]
    np.testing.assert_allclose(got, fund, rtol=1e-12, atol=1e-15)
    japan, _, recoup = _mou(fund, draws, 163, 1 + (RATE + 0.02) / 4)
    np.testing.assert_allclose(out.cash["cash_japan"][0], japan, rtol=1e-12, atol=1e-15)
    assert out.project["pv_japan"][0, 0] == pytest.approx(_pv(japan), rel=1e-12)
    assert out.project["recoup_q"][0, 0] == recoup
    if position == "senior":  # all the junior cash (0.04 / ω) until capital + hurdle is met
        assert got[4] == pytest.approx(0.08)
    if position == "preferred":  # the hurdle's accrued return first, then pro rata
        assert 0.04 < got[4] < 0.08 and got[100] == pytest.approx(0.04)


def test_stack_positions_order_japans_recovery_and_agree_when_the_fund_is_all_junior() -> None:
    """Senior before preferred before pari passu for Japan; with the fund holding all the
    junior capital (ω = 1) the three are the same doubles."""
    rows = [
        _project(p, stack_position=p, fund_equity_share=0.5)
        for p in ("pari_passu", "preferred", "senior")
    ]
    rows += [
        _project(f"{p}_all", stack_position=p, fund_equity_share=1.0)
        for p in ("pari_passu", "preferred", "senior")
    ]
    catalog = make_catalog(rows, [("grid", "GW", 1.0, 1.0, False)])
    out = numpy_engine.run(prepare_inputs(catalog, _config()), range(1))
    pv = out.project["pv_japan"][0]
    assert pv[0] < pv[1] < pv[2]
    assert pv[3] == pv[4] == pv[5] == pv[0]


def test_a_whatif_between_two_stack_positions_runs(tmp_path: Path) -> None:
    """``portopt whatif`` with the fund senior to the sponsor against pari passu."""
    import yaml
    from conftest import write_catalog_csv
    from typer.testing import CliRunner

    from portopt.cli.main import app

    folder = write_catalog_csv(build_small_catalog(), tmp_path / "catalog")
    config = tmp_path / "whatif.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "catalog": str(folder),
                "scenarios": {"optimisation": 48, "evaluation": 48},
                "model": {"groups": {"recoupment": {"enabled": False}}},
                "deal": {"stack": {"fund_equity_share": 0.5}},
            }
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "whatif",
            str(config),
            "--variant-set",
            "deal.stack.position=senior",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    diff = json.loads(result.output)
    assert diff["variant"] == "set deal.stack.position='senior' (base 'pari_passu')"


@pytest.mark.parametrize(
    "text, key",
    [
        (
            "deal:\n  reallocation:\n    enabled: true\n    japan_share: 0\n",
            "deal.reallocation.japan_share",
        ),
        ("deal:\n  japan_share_until_recovered: 0\n", "deal.japan_share_until_recovered"),
        ("deal:\n  stack:\n    fund_equity_share: 0\n", "deal.stack.fund_equity_share"),
        ("deal:\n  stack:\n    position: mezzanine\n", "deal.stack.position"),
        ("deal:\n  stack:\n    hurdle: -0.1\n", "deal.stack.hurdle"),
        ("scenarios:\n  inflation:\n    sofr_corr: 1.5\n", "scenarios.inflation.sofr_corr"),
        ("scenarios:\n  inflation:\n    vol: -0.01\n", "scenarios.inflation.vol"),
        ("deal:\n  funding:\n    basis: 0.5\n", "deal.funding.basis"),
    ],
    ids=["realloc-share-0", "share-0", "omega-0", "position", "hurdle", "corr", "vol", "basis"],
)
def test_values_that_would_break_the_engine_exit_2_naming_the_key(
    text: str, key: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from portopt.cli.main import app

    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = CliRunner().invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert key in result.output and "Traceback" not in result.output


def test_a_bad_stack_position_in_the_catalog_names_file_row_and_column(tmp_path: Path) -> None:
    from conftest import write_catalog_csv

    from portopt.catalog import load_catalog
    from portopt.errors import CatalogError

    catalog = build_small_catalog()
    projects = catalog.projects.copy()
    projects["stack_position"] = ["senior", "", "", "", "", "equity"]
    folder = write_catalog_csv(dataclasses.replace(catalog, projects=projects), tmp_path / "c")
    with pytest.raises(CatalogError) as err:
        load_catalog(folder)
    assert "stack_position" in str(err.value) and "projects.csv" in str(err.value)


def test_materialising_baseline_agrees_with_nominal_money_and_the_stack() -> None:
    """bench/baseline_materialising.py, written the obvious way, computes the same issue-23
    model: inflation with volatility, indexation, fuel, every stack position, FX at parity."""
    import importlib.util

    from portopt.engine.scenario_set import PROJECT_FIELDS

    path = Path(__file__).parents[2] / "bench" / "baseline_materialising.py"
    spec = importlib.util.spec_from_file_location("baseline_materialising", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    catalog = _economics_catalog()
    projects = catalog.projects.copy()
    projects["indexation"] = [1.0, 0.0, 0.5, float("nan"), 0.8, 1.0]
    projects["offtake_indexed"] = [1.0, 0.0, float("nan"), 1.0, 0.0, 0.0]
    projects["fuel_share"] = [0.8, 0.0, 0.0, 0.6, float("nan"), 0.0]
    projects["stack_position"] = ["senior", "preferred", "", "senior", "preferred", ""]
    projects["fund_equity_share"] = [0.6, 0.5, 1.0, 0.9, float("nan"), 0.7]
    catalog = dataclasses.replace(catalog, projects=projects)
    config = RunConfig.model_validate(
        _merge(_ECONOMICS_DEAL, {"scenarios": {"inflation": {"vol": 0.03, "initial": 0.04}}})
    )
    inputs = prepare_inputs(catalog, config)
    scen = range(3, 83)
    engine = numpy_engine.run(inputs, scen)
    base = module.simulate(inputs, scen)
    for name in PROJECT_FIELDS:
        a, b = engine.project[name], base[name]
        if a.dtype.kind == "i":
            assert np.array_equal(a, b), name
        else:
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12, err_msg=name)


def test_straight_line_takes_the_tax_codes_conventions() -> None:
    """39-year nonresidential real property is mid-month (Pub. 946 Table A-7a: 2.4573% in a
    January first year exactly, printed 2.461; 2.564% a year; 0.107% in year 40); 27.5-year
    property likewise (Table A-6: 3.485%, 3.636%, 1.970% in year 28); shorter lives half-year;
    the engine before issue 23 took a full first year (``full_year``)."""
    from portopt.engine.inputs import macrs_rates

    r39 = macrs_rates(39.0, "straight_line")
    assert r39.size == 40 and r39.sum() == pytest.approx(1.0, abs=1e-12)
    assert r39[0] == pytest.approx(11.5 / 12 / 39) and r39[1] == pytest.approx(1 / 39)
    assert r39[-1] == pytest.approx(0.5 / 12 / 39)
    r27 = macrs_rates(27.5, "straight_line")
    np.testing.assert_allclose(r27[[0, 1, 27]] * 100, [3.485, 3.636, 1.970], atol=5e-4)
    np.testing.assert_allclose(macrs_rates(3.0, "straight_line"), [1 / 6, 1 / 3, 1 / 3, 1 / 6])
    np.testing.assert_allclose(macrs_rates(39.0, "straight_line", "full_year"), 1 / 39)
