"""The MOU waterfall step and the MOU's Deemed Allocation Amount schedule."""

from __future__ import annotations

import numpy as np
import pytest

from portopt.engine.waterfall import daa_schedule, waterfall_step


def _step(balance: float, cash: float, growth: float, draw: float):
    b = np.array(balance)
    jp, us = waterfall_step(b, np.array(cash), growth, draw)
    return float(b), float(jp), float(us)


def test_worked_example_first_year_due():
    # $10B at 5.5% (4.5% SOFR + 1% spread) over 20 years: 0.55 + 0.50 = $1.05B in year 1
    sched = daa_schedule(10e9, 0.055, 20)
    assert sched.interest[0] == pytest.approx(0.55e9)
    assert sched.principal[0] == pytest.approx(0.50e9)
    assert sched.due[0] == pytest.approx(1.05e9)
    assert sched.due.size == 20
    assert sched.principal.sum() == pytest.approx(10e9)
    # the last year owes interest on the last twentieth only
    assert sched.due[-1] == pytest.approx(0.5e9 * 1.055)


def test_worked_example_shortfall_year():
    # the project earns only $0.5B: Japan receives $0.25B and $0.8B of the $1.05B is unpaid
    balance, jp, us = _step(10e9, 0.5e9, 1.055, 0.0)
    assert jp == pytest.approx(0.25e9)
    assert us == pytest.approx(0.25e9)
    due = daa_schedule(10e9, 0.055, 20).due[0]
    assert due - jp == pytest.approx(0.8e9)
    # the balance convention carries the shortfall: 10.55 - 0.25 = 10.30
    assert balance == pytest.approx(10.30e9)


@pytest.mark.parametrize("periods", [1, 4])
def test_twice_the_due_clears_the_balance_at_the_end_of_life(periods):
    principal, rate, years = 10e9, 0.055, 20
    sched = daa_schedule(principal, rate, years, periods)
    balance = np.array(0.0)
    waterfall_step(balance, np.array(0.0), 1.0, principal)  # the draw, period 0
    got = []
    for k, due in enumerate(sched.due):
        jp, _ = waterfall_step(balance, np.array(2.0 * due), 1.0 + rate / periods, 0.0)
        got.append(float(jp))
        if k < sched.due.size - 1:
            # the balance follows the MOU's outstanding principal, linearly to zero
            assert float(balance) == pytest.approx(sched.outstanding[k + 1], rel=1e-12)
    assert np.allclose(got, sched.due, rtol=1e-12)  # Japan receives exactly the MOU's due
    assert abs(float(balance)) < 1e-6 * principal / sched.due.size


def test_three_branches_by_hand():
    # balance 1.0 grows 2% to 1.02, plus a draw of 0.5 -> 1.52; cash 1.0: half 0.5 <= 1.52
    b, jp, us = _step(1.0, 1.0, 1.02, 0.5)
    assert (b, jp, us) == (1.52 - 0.5, 0.5, 0.5)
    # balance 0.3, cash 1.0: half 0.5 > 0.3, so 0.6 clears it 50/50, the remaining 0.4 goes
    # 90/10: Japan 0.3 + 0.04
    b, jp, us = _step(0.3, 1.0, 1.0, 0.0)
    assert b == 0.0
    assert jp == pytest.approx(0.34, abs=1e-15)
    assert us == pytest.approx(0.66, abs=1e-15)
    # cleared: 90/10 in the US's favour
    b, jp, us = _step(0.0, 2.0, 1.05, 0.0)
    assert (b, jp, us) == (0.0, 0.2, 1.8)


def _by_cases(balance: float, cash: float, growth: float, draw: float):
    """docs/scenario-model.md's three cases, in plain Python floats."""
    balance = balance * growth + draw
    if balance > 0 and 0.5 * cash <= balance:
        jp = 0.5 * cash
        balance = balance - jp
    elif balance > 0:
        jp = balance + 0.1 * (cash - 2 * balance)
        balance = 0.0
    else:
        jp = 0.1 * cash
    return balance, jp, cash - jp


def test_vectorised_equals_the_cases_bitwise():
    rng = np.random.default_rng(5)
    n = 2001
    bal = rng.uniform(0, 2, n) * (rng.uniform(size=n) < 0.7)
    cash = rng.uniform(0, 3, n) * (rng.uniform(size=n) < 0.8)
    bal[:5] = [0.5, 0.5, 0.0, 0.0, 1e-300]
    cash[:5] = [1.0, 0.0, 0.0, 2.0, 1.0]  # cash/2 == J exactly, no cash, nothing, ...
    growth = 1.0 + rng.uniform(0, 0.02, n)
    draw = rng.uniform(0, 0.2, n) * (rng.uniform(size=n) < 0.3)
    vb = bal.copy()
    jp, us = waterfall_step(vb, cash, growth, draw)
    for i in range(n):
        assert _by_cases(bal[i], cash[i], growth[i], draw[i]) == (vb[i], jp[i], us[i])
        assert _step(bal[i], cash[i], growth[i], draw[i]) == (vb[i], jp[i], us[i])
