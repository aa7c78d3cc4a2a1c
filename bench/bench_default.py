"""The default run's optimise stage against a baseline revision, and against a tight MIP gap.

Each variant runs in a fresh child process on the same machine in one invocation: the
default config (``configs/default.yaml``, bundled catalog) of

* ``baseline``: the package as it was at ``--baseline`` (a git revision, exported with
  ``git archive``), with that revision's own default config;
* ``default``: this checkout's default config;
* ``tight``: this checkout with ``--set solver.mip_gap=1e-6``.

A child generates the optimisation scenarios, then times ``optimize`` plus the in-sample
figures (what the run's ``optimise`` stage holds), best of ``--repeat``. The ``default`` child
also reports the out-of-sample standard error of the mean coverage score of its portfolio,
:math:`\\hat\\sigma(\\mathrm{score}_s) / \\sqrt{S_{eval}}`, relative to the mean (the noise the
MIP gap is compared with).

Usage::

    python bench/bench_default.py --baseline 79b5578 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import numpy as np
from portopt.catalog import load_catalog
from portopt.config import load_config
from portopt.engine.generate import generate_scenarios
from portopt.evaluate import portfolio_figures
from portopt.model import optimize

import portopt
config_path, sets, repeat = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
noise = sys.argv[4] == "1"
config = load_config(config_path, sets)
catalog = load_catalog(config.catalog)
S = config.scenarios.optimisation
opt = generate_scenarios(catalog, config, backend="numpy", scenarios=range(S))
times = []
for _ in range(repeat):
    t0 = time.perf_counter()
    allocation = optimize(catalog, config, opt)
    portfolio_figures(catalog, config, opt, allocation.y, allocation.fund_usd)
    times.append(time.perf_counter() - t0)
row = {"optimise_s": min(times), "objective": allocation.objective, "status": allocation.status,
       "solver": allocation.solver, "mip_gap": allocation.mip_gap,
       "mip_gap_config": config.solver.mip_gap, "selected": sorted(allocation.selected),
       "package": portopt.__file__}
if noise:
    E = config.scenarios.evaluation
    fresh = generate_scenarios(catalog, config, backend="numpy", scenarios=range(S, S + E),
                               weights=allocation.fund_usd)
    from portopt.model.data import build_data, scores
    score = scores(build_data(catalog, fresh, config), allocation.y)
    row["coverage_mean_out"] = float(score.mean())
    row["coverage_se_out"] = float(score.std(ddof=1) / np.sqrt(E))
print("RESULT " + json.dumps(row))
"""


def run_child(root: Path, sets: list[str], repeat: int, noise: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    config = str(root / "configs" / "default.yaml")
    cmd = [
        sys.executable,
        "-c",
        CHILD,
        config,
        json.dumps(sets),
        str(repeat),
        "1" if noise else "0",
    ]
    out = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="79b5578", help="git revision to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", args.baseline], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        t0 = time.perf_counter()
        rows["baseline"] = run_child(Path(tmp), [], args.repeat, noise=False)
    rows["default"] = run_child(ROOT, [], args.repeat, noise=True)
    rows["tight"] = run_child(ROOT, ["solver.mip_gap=1e-6"], args.repeat, noise=False)
    rows["wall_s"] = time.perf_counter() - t0
    d, b, t = rows["default"], rows["baseline"], rows["tight"]
    rows["summary"] = {
        "default_over_baseline_optimise": d["optimise_s"] / b["optimise_s"],
        "default_vs_tight_objective_rel": (t["objective"] - d["objective"]) / t["objective"],
        "coverage_se_rel": d["coverage_se_out"] / d["coverage_mean_out"],
    }
    text = json.dumps(rows, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
