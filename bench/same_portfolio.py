"""One portfolio under several deal-term sets, on the same fresh scenarios (docs/one-shot.md,
"Deal terms and Japan's recovery under Korea-style terms").

    python bench/same_portfolio.py RUN_DIR CONFIG [CONFIG ...]

``RUN_DIR`` is a ``portopt run`` output folder: its ``allocation.csv`` gives the portfolio
(``selected``, ``fund_usd``). Each ``CONFIG`` is evaluated on that portfolio, unchanged, on its
evaluation scenarios ``[optimisation, optimisation + evaluation)``: Japan's expected PV recovery
(the mean over scenarios of PV receipts / PV draws at JBIC's cost, as metrics.json's
``out_of_sample.recovery_ratio``, and E[PV receipts] / E[PV draws]), P(Japan recoups) and the CVaR
of the shortfall as a share of capital, as metrics.json's ``out_of_sample`` gives them. The
configs must share the seed and the scenario counts, or the comparison is not paired.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.evaluate import Aggregates, _figures
from portopt.pipeline import evaluation_blocks


def figures(run_dir: Path, config_path: Path) -> dict:
    config = load_config(config_path)
    table = pd.read_csv(run_dir / "allocation.csv")
    table = table.set_index("project_id" if "project_id" in table else "id")
    chosen = table.index[table["selected"].astype(bool)].tolist()
    catalog = load_catalog(config.catalog).subset(chosen)
    fund = table.loc[list(catalog.project_ids), "fund_usd"].to_numpy(np.float64)
    agg = Aggregates(catalog, np.ones(len(fund)), fund, config.scenarios.evaluation)
    for block in evaluation_blocks(catalog, config, fund):
        agg.add(block)
    out = _figures(config, agg)
    out["ratio_of_expectations"] = float(agg.japan[: agg.n].sum() / agg.draw[: agg.n].sum())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("configs", type=Path, nargs="+")
    args = parser.parse_args()
    for path in args.configs:
        f = figures(args.run_dir, path)
        alpha = next(k for k in f if k.startswith("shortfall_cvar_"))
        print(
            f"{path}: capital ${f['capital_usd'] / 1e9:.1f}B, recovery (mean over scenarios)"
            f" {f['recovery_ratio']['mean']:.3f}, E[PV receipts]/E[PV draws]"
            f" {f['ratio_of_expectations']:.3f} (P10-P90 {f['recovery_ratio']['p10']:.2f}-"
            f"{f['recovery_ratio']['p90']:.2f}), P(recoup) {f['p_recoup']:.1%},"
            f" {alpha} {f[alpha]:.1%}, {f['scenarios']} scenarios from {f['first_scenario']}"
        )


if __name__ == "__main__":
    main()
