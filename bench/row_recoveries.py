"""Japan's recovery on each catalog row, alone, in the real-money frame of engine v2 and in the
nominal frame of issue 23 (README "What the default plan finds", docs/scenario-model.md).

    python bench/row_recoveries.py [--scenarios 200]

Deterministic: median prices (every volatility and coercion off), median overrun and delay,
no failure, the default deal and funding; recovery = PV(Japan's receipts) / PV(Japan's draws)
at JBIC's cost. Stochastic: the default configuration, E[pv_japan] / E[pv_draw] over the first
``--scenarios`` scenarios. Prints the distribution of rows by recovery band, the rows at 0.95
or more, their share of the catalog's cost and the median, for each frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools

import numpy as np

from portopt.catalog import load_catalog
from portopt.config import RunConfig
from portopt.engine import numpy_engine
from portopt.engine.inputs import prepare_inputs

BANDS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0, 1.25, 1.5, 2.0, np.inf)

REAL = {
    "scenarios": {
        "inflation": {"mean": 0.0, "vol": 0.0},
        "fuel_follows_gas": False,
        "tax": {"conventions": "full_year"},
    },
    "deal": {"funding": {"fx_parity": False}},
}
"""Engine v2's frame: real cash, no fuel indexation, flat USD/JPY, full-year straight line."""


def _median(inputs):
    """The deterministic median case: no volatility, coercion, failure or overrun spread."""
    return dataclasses.replace(
        inputs,
        ou_b=np.zeros_like(inputs.ou_b),
        infl_b=0.0,
        p_start=0.0,
        overrun_sigma=np.zeros_like(inputs.overrun_sigma),
        permit_vol=np.zeros_like(inputs.permit_vol),
        labour_delay_beta=0.0,
        backlog_vol=0.0,
        fail_threshold=np.full_like(inputs.fail_threshold, -np.inf),
    )


def recoveries(config: RunConfig, scenarios: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(deterministic, stochastic, cost) per catalog row."""
    catalog = load_catalog()
    inputs = prepare_inputs(catalog, config)
    det = numpy_engine.run(_median(inputs), range(1))
    det_r = det.project["pv_japan"][0] / det.project["pv_draw"][0]
    sto = numpy_engine.run(inputs, range(scenarios))
    sto_r = sto.project["pv_japan"].mean(axis=0) / sto.project["pv_draw"].mean(axis=0)
    return det_r, sto_r, catalog.projects["base_cost_usd"].to_numpy()


def describe(label: str, r: np.ndarray, cost: np.ndarray) -> None:
    counts, _ = np.histogram(r, bins=BANDS)
    high = r >= 0.95
    print(
        f"{label}: median {np.median(r):.3f}, >= 0.95: {high.sum()}/{r.size}"
        f" ({cost[high].sum() / cost.sum():.1%} of cost), min {r.min():.3f}, max {r.max():.3f}"
    )
    names = [f"{a:g}-{b:g}" for a, b in itertools.pairwise(BANDS)]
    print("  " + " | ".join(f"{n}: {c}" for n, c in zip(names, counts, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=200)
    args = parser.parse_args()
    real = RunConfig.model_validate(REAL)
    nominal = RunConfig()
    r_det, r_sto, cost = recoveries(real, args.scenarios)
    n_det, n_sto, _ = recoveries(nominal, args.scenarios)
    describe("engine v2 (real), deterministic median", r_det, cost)
    describe("issue 23 (nominal), deterministic median", n_det, cost)
    describe(f"engine v2 (real), {args.scenarios} scenarios", r_sto, cost)
    describe(f"issue 23 (nominal), {args.scenarios} scenarios", n_sto, cost)
    d = n_det - r_det
    print(
        f"change per row, deterministic: median {np.median(d):+.3f}"
        f" [{d.min():+.3f}, {d.max():+.3f}]"
    )


if __name__ == "__main__":
    main()
