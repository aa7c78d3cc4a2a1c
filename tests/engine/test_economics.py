"""The economics of docs/scenario-model.md held to hand computations: each project to its own
end, tax depreciation and the loss carried forward, credits, an offtake floor's term, senior
debt before the MOU split, the yen-funded share and the deal terms.

Every case is deterministic (no volatility, failure or delay; SOFR flat at 4%; no inflation and
USD/JPY flat, the real-money frame of engine v2): a $1B project
starting in 2026Q1 (quarter 0), four build quarters, no price factor unless said, no opex. With
the fund's weight 1 the portfolio cash paths are the project's own per-fund-dollar cash.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import make_catalog, project_row

from portopt.config import RunConfig
from portopt.engine import numpy_engine
from portopt.engine.generate import generate_scenarios
from portopt.engine.inputs import macrs_rates, prepare_inputs

RATE = 0.04


def _config(**deal: object) -> RunConfig:
    flat = {"reversion": 0.5, "vol": 0.0, "coercion_jump": 0.0}
    return RunConfig.model_validate(
        {
            "seed": 7,
            "scenarios": {
                "optimisation": 2,
                "tax_rate": 0.0,
                "ramp_quarters": 1,
                "sofr": {"initial": RATE, "mean": RATE, "reversion": 0.0, "vol": 0.0},
                "factors": {
                    k: flat for k in ("power", "gas", "ndpr", "copper", "chip_demand", "usdjpy")
                },
                "coercion": {"rate_per_year": 0.0},
                "backlog": {"mean_quarters": 0.0, "vol_quarters": 0.0},
                # real money (issue 23's nominal frame is held to hand in test_nominal.py)
                "inflation": {"mean": 0.0, "vol": 0.0},
                "tax": {"conventions": "full_year"},  # straight line 1/L a year, by hand
            },
            "deal": {
                "compounding": "quarterly",
                "funding": {"usd_bonds": 0.05, "fx_parity": False},
                **deal,
            },
        }
    )


def _project(pid: str = "plant", **values: object) -> dict[str, object]:
    base = {
        "base_cost_usd": 1e9,
        "build_quarters": 4,
        "earliest_start": "2026Q1",
        "life_years": 40,
        "revenue_usd_per_year": 1.6e8,  # 0.04 per quarter per dollar of cost
        "opex_share": 0.0,
        "overrun_median": 0.0,
        "overrun_p90": 0.0,
        "delay_median_quarters": 0.0,
        "failure_prob": 0.0,
        "spread": 0.02,
    }
    return project_row(pid, **{**base, **values})


def _run(rows: list[dict[str, object]], config: RunConfig | None = None):
    catalog = make_catalog(rows, [("grid", "GW", 1.0, 1.0, False)])
    config = config or _config()
    out = generate_scenarios(
        catalog, config, backend="numpy", weights=np.ones(len(rows)), scenarios=range(2)
    )
    return out, prepare_inputs(catalog, config)


def _cash(out) -> np.ndarray:
    """Distributable cash per quarter of scenario 0 (Japan's plus the US's)."""
    return out.cash["cash_japan"][0] + out.cash["cash_us"][0]


def _mou(
    cash, draws, end, g, share=0.5, after=0.1, realloc_q=None, realloc_share=1.0, accrues=True
):
    """The MOU waterfall by hand, case by case: Japan's cash, its balance path, recoup quarter.
    Without ``accrues`` the deemed interest is carried apart (``unpaid``) and earns none."""
    principal, unpaid, japan, path, recoup = 0.0, 0.0, [], [], -1
    for t, (c, d) in enumerate(zip(cash, draws, strict=True)):
        s = realloc_share if realloc_q is not None and t >= realloc_q else share
        if t <= end:
            if accrues:
                principal = principal * g + d
            else:
                unpaid += principal * (g - 1)
                principal += d
        bal = principal + unpaid
        if bal > 0 and s * c <= bal:
            j = s * c
        elif bal > 0:
            j = bal + after * (c - bal / s)
        else:
            j = after * c
        paid = min(j, bal)
        from_unpaid = min(paid, unpaid)
        unpaid -= from_unpaid
        principal = 0.0 if paid >= bal else principal - (paid - from_unpaid)
        bal = principal + unpaid
        japan.append(j)
        path.append(bal)
        if recoup < 0 and t >= 3 and bal <= 0:
            recoup = t
    return japan, path, recoup


def _pv(xs, rate=0.05):
    v = (1 + rate) ** -0.25
    return sum(v ** (t + 1) * x for t, x in enumerate(xs))


def test_claim_clearing_after_2045_by_hand():
    """Cleared after quarter 80 (2046Q1): the recoup quarter and the PVs to the end of life."""
    out, inp = _run([_project()])
    H = inp.horizon
    assert H == 4 + 160 + 80
    draws = [0.25] * 4 + [0.0] * (H - 4)
    cash = [0.0] * 4 + [0.04] * 160 + [0.0] * (H - 164)
    g = 1 + (RATE + 0.02) / 4
    japan, _, recoup = _mou(cash, draws, 163, g)
    assert recoup > 80  # after 2045
    np.testing.assert_allclose(_cash(out), cash, rtol=1e-12, atol=1e-15)
    for s in range(out.n):
        assert out["recoup_q"][s, 0] == recoup
        assert out["pv_draw"][s, 0] == pytest.approx(_pv(draws), rel=1e-12)
        assert out["pv_japan"][s, 0] == pytest.approx(_pv(japan), rel=1e-12)
        assert out["pv_us"][s, 0] == pytest.approx(_pv(np.subtract(cash, japan)), rel=1e-12)
        assert out["balance_end"][s, 0] == 0.0


def test_shortfall_is_lost_at_project_end():
    """Ten years of life are not enough: the balance at the last operating quarter is lost."""
    out, inp = _run([_project(life_years=10)])
    H = inp.horizon
    draws = [0.25] * 4 + [0.0] * (H - 4)
    cash = [0.0] * 4 + [0.04] * 40 + [0.0] * (H - 44)
    japan, path, recoup = _mou(cash, draws, 43, 1 + (RATE + 0.02) / 4)
    assert recoup == -1 and path[43] > 0 and path[-1] == path[43]  # frozen, not accruing
    assert out["recoup_q"][0, 0] == -1
    assert out["balance_end"][0, 0] == pytest.approx(path[43], rel=1e-12)
    assert out["pv_japan"][0, 0] == pytest.approx(_pv(japan), rel=1e-12)
    assert np.all(_cash(out)[44:] == 0.0)


def test_korea_reallocation_by_hand():
    deal = {"reallocation": {"enabled": True, "after_years": 10, "japan_share": 1.0}}
    out, inp = _run([_project(life_years=10)], _config(**deal))
    H = inp.horizon
    draws = [0.25] * 4 + [0.0] * (H - 4)
    cash = [0.0] * 4 + [0.04] * 40 + [0.0] * (H - 44)
    japan, path, _ = _mou(cash, draws, 43, 1 + (RATE + 0.02) / 4, realloc_q=40)
    assert japan[40] == pytest.approx(0.04)  # all of the cash once the claim is hopeless
    assert out["pv_japan"][0, 0] == pytest.approx(_pv(japan), rel=1e-12)
    assert out["balance_end"][0, 0] == pytest.approx(path[43], rel=1e-12)


def test_splits_and_semiannual_compounding_by_hand():
    config = _config(
        compounding="semiannual", japan_share_until_recovered=0.6, japan_share_after=0.2
    )
    out, inp = _run([_project(revenue_usd_per_year=8e8)], config)
    H = inp.horizon
    draws = [0.25] * 4 + [0.0] * (H - 4)
    cash = [0.0] * 4 + [0.2] * 160 + [0.0] * (H - 164)
    g = math.sqrt(1 + (RATE + 0.02) / 2)
    japan, _, recoup = _mou(cash, draws, 163, g, share=0.6, after=0.2)
    assert out["recoup_q"][0, 0] == recoup
    assert out["pv_japan"][0, 0] == pytest.approx(_pv(japan), rel=1e-12)


def test_macrs_tables_match_irs_publication_946():
    # Pub. 946 Table A-1 (half-year convention), percent
    table = {
        5: [20.00, 32.00, 19.20, 11.52, 11.52, 5.76],
        7: [14.29, 24.49, 17.49, 12.49, 8.93, 8.92, 8.93, 4.46],
        15: [
            *(5.00, 9.50, 8.55, 7.70, 6.93, 6.23, 5.90, 5.90),
            *(5.91, 5.90, 5.91, 5.90, 5.91, 5.90, 5.91, 2.95),
        ],
    }
    for years, want in table.items():
        np.testing.assert_allclose(macrs_rates(years, "macrs") * 100, want, atol=0.006)
        assert macrs_rates(years, "macrs").sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(macrs_rates(2.5, "straight_line", "full_year"), [0.4, 0.4, 0.2])
    np.testing.assert_allclose(macrs_rates(2.5, "straight_line"), [0.2, 0.4, 0.4])


def test_depreciation_and_loss_carry_forward_by_hand():
    """Straight line over 2 years, no bonus: 0.125 a quarter against 0.05 of income builds a
    loss of 0.6, offset at 80% of income (0.04 a quarter) for 15 quarters, then full tax."""
    config = _config()
    config.scenarios.tax_rate = 0.21
    row = _project(
        revenue_usd_per_year=2e8, depreciation="straight_line", tax_life_years=2.0, bonus_share=0.0
    )
    out, _ = _run([row], config)
    cash = _cash(out)
    np.testing.assert_allclose(cash[4:12], 0.05, rtol=1e-12)  # no tax while depreciating
    np.testing.assert_allclose(cash[12:27], 0.05 - 0.21 * 0.01, rtol=1e-9)
    np.testing.assert_allclose(cash[28:164], 0.05 * 0.79, rtol=1e-9)


def test_bonus_depreciation_defaults_by_sector():
    """A blank cell takes the sector's default: energy expenses 85% at once (a loss), then
    MACRS 20-year on the rest."""
    config = _config()
    config.scenarios.tax_rate = 0.21
    out, inp = _run([_project(revenue_usd_per_year=2e8)], config)
    assert inp.bonus_share[0] == 0.85
    np.testing.assert_allclose(inp.dep_rates[inp.dep_row[0]][:2], [0.0375, 0.07219], atol=1e-5)
    cash = _cash(out)
    assert cash[4] == pytest.approx(0.05)  # 0.85 + 0.15 * 0.0375 / 4 of basis: a loss
    assert np.all(cash[4:40] > 0.05 * 0.79)  # the loss shelters tax for years


def test_itc_and_ptc_by_hand():
    itc = _project(
        "itc_plant", credit="itc", credit_rate=0.3, credit_basis="fact", offtake_share=0.0
    )
    ptc = _project(
        "ptc_plant",
        credit="ptc",
        credit_rate=25.0,
        credit_unit="USD/MWh",
        credit_units_per_year=4e6,
        credit_years=2.0,
        credit_basis="fact",
    )
    out, _ = _run([itc], None)
    cash = _cash(out)
    # ITC: 30% of the cost placed in service (1 per fund dollar), sold at 0.93
    assert cash[4] == pytest.approx(0.04 + 0.3 * 0.93, rel=1e-12)
    assert cash[5] == pytest.approx(0.04, rel=1e-12)
    out, _ = _run([ptc], None)
    cash = _cash(out)
    # PTC: 25 USD/MWh x 4 TWh/yr / 4 / $1B = 0.025 a quarter for 8 quarters, at 0.93
    np.testing.assert_allclose(cash[4:12], 0.04 + 0.025 * 0.93, rtol=1e-12)
    np.testing.assert_allclose(cash[12:20], 0.04, rtol=1e-12)


def test_offtake_floor_has_a_term():
    row = _project(
        price_factor="power", price_beta=1.0, offtake_share=1.0, offtake_floor=1.5, offtake_years=1
    )
    out, _ = _run([row])
    cash = _cash(out)
    np.testing.assert_allclose(cash[4:8], 0.06, rtol=1e-12)  # floored at 1.5 for a year
    np.testing.assert_allclose(cash[8:20], 0.04, rtol=1e-12)  # market price (1.0) after it


def test_senior_debt_is_paid_before_the_mou_split():
    """Half the cost in senior debt (SOFR + 1%, one-year level amortisation): per fund dollar
    the project is twice the size; its cash goes to the lenders first, then to the split."""
    row = _project(
        senior_debt_share=0.5,
        senior_spread=0.01,
        senior_tenor_years=1.0,
        senior_amortisation="level",
        life_years=20,
    )
    out, inp = _run([row])
    H = inp.horizon
    i = (RATE + 0.01) / 4
    senior, avail, to_split = 0.0, 0.08, []
    for t in range(H):
        interest = senior * i
        age = t - 4
        operating = 0 <= age < 80
        due = interest + senior / max(4 - age, 1) if operating else 0.0
        paid = min(avail if operating else 0.0, due)
        senior = senior + interest - paid + (0.25 if t < 4 else 0.0)
        to_split.append((avail if operating else 0.0) - paid)
    assert to_split[4] == 0.0  # the first quarters' cash all goes to the lenders
    assert max(to_split) == pytest.approx(0.08)
    np.testing.assert_allclose(_cash(out), to_split, rtol=1e-9, atol=1e-15)
    draws = [0.25] * 4 + [0.0] * (H - 4)
    japan, _, _ = _mou(to_split, draws, 83, 1 + (RATE + 0.02) / 4)
    assert out["pv_japan"][0, 0] == pytest.approx(_pv(japan), rel=1e-12)
    assert out["pv_draw"][0, 0] == pytest.approx(_pv(draws), rel=1e-12)


def test_yen_funded_share_is_valued_at_usdjpy():
    """Coercion always on with a +25% USD/JPY jump (a yen 20% weaker): the yen-funded draws and
    receipts are worth 1.25 times as much in yen; yen loans discount at their own cost."""
    row = _project(jbic_funding="yen_loans")
    catalog = make_catalog([row, _project("usd", yen_share=0.0)], [("g", "GW", 1.0, 1.0, False)])
    config = _config()
    config.scenarios.factors["usdjpy"].coercion_jump = math.log(1.25)
    inp = dataclasses.replace(prepare_inputs(catalog, config), p_start=1.0, p_end=0.0)
    assert inp.yen_share.tolist() == [1.0, 0.0]  # blank: 1 for yen loans
    out = numpy_engine.run(inp, range(1))
    H = inp.horizon
    draws = [0.25] * 4 + [0.0] * (H - 4)
    cash = [0.0] * 4 + [0.04] * 160 + [0.0] * (H - 164)
    japan, _, _ = _mou(cash, draws, 163, 1 + (RATE + 0.02) / 4)
    p = out.project
    assert p["pv_draw"][0, 0] == pytest.approx(1.25 * _pv(draws, 0.017), rel=1e-12)
    assert p["pv_japan"][0, 0] == pytest.approx(1.25 * _pv(japan, 0.017), rel=1e-12)
    assert p["pv_draw"][0, 1] == pytest.approx(_pv(draws, 0.05), rel=1e-12)
    assert p["pv_us"][0, 0] == pytest.approx(_pv(np.subtract(cash, japan), 0.017), rel=1e-12)


def test_carried_interest_that_earns_none_by_hand():
    """deal.shortfall_accrues false: the deemed interest Japan is not paid is carried without
    interest, so a project that cannot pay its interest owes less at the end."""
    out, inp = _run([_project(life_years=10, revenue_usd_per_year=4e7)], _config())
    accruing = out["balance_end"][0, 0]
    out, inp = _run(
        [_project(life_years=10, revenue_usd_per_year=4e7)], _config(shortfall_accrues=False)
    )
    H = inp.horizon
    draws = [0.25] * 4 + [0.0] * (H - 4)
    cash = [0.0] * 4 + [0.01] * 40 + [0.0] * (H - 44)
    japan, path, _ = _mou(cash, draws, 43, 1 + (RATE + 0.02) / 4, accrues=False)
    assert out["balance_end"][0, 0] == pytest.approx(path[43], rel=1e-12)
    assert out["pv_japan"][0, 0] == pytest.approx(_pv(japan), rel=1e-12)
    assert out["balance_end"][0, 0] < accruing
