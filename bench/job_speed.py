"""The default jobs' stages, wall and CPU time: `make run` (the plan) and `portopt run`.

    python bench/job_speed.py                 # three plans, three one-shot runs
    python bench/job_speed.py --repeat 5 --one-solver

Runs ``portopt plan configs/default.yaml --out DIR --json`` and ``portopt run ...`` each
``--repeat`` times in fresh processes (under ``/usr/bin/time`` where it exists, for CPU seconds
and peak RSS), prints each run's stage timings (metrics.json ``timings_s``), wall, user + sys
CPU, peak RSS and the load average at its start, then the medians. ``--one-solver`` adds a plan
on one engine thread and one frontier solver. Every plan's plan.csv, allocation.csv,
coverage.csv and frontier.csv are compared with the first's (they must be identical).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORTOPT = Path(sys.executable).with_name("portopt")
FILES = ("plan.csv", "allocation.csv", "coverage.csv", "frontier.csv")


def one(command: str, out: Path, extra: list[str]) -> dict:
    load = os.getloadavg()[0]
    cmd = [str(PORTOPT), command, str(ROOT / "configs" / "default.yaml"), "--out", str(out)]
    cmd += ["--json", *extra]
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    stats = out.with_suffix(".time")
    t0 = time.perf_counter()
    if timer:
        cmd = [timer, "-f", "%e %U %S %M", "-o", str(stats), *cmd]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    cpu = rss = None
    if timer:
        _, user, system, kib = stats.read_text().split()[-4:]
        cpu, rss = float(user) + float(system), int(kib) / 2**20
    timings = json.loads((out / "metrics.json").read_text())["timings_s"]
    return {"load": load, "wall": wall, "cpu": cpu, "rss_gib": rss, **timings}


def show(name: str, rows: list[dict]) -> None:
    keys = [k for k in rows[0] if k not in ("load", "wall", "cpu", "rss_gib")]
    print(f"{name}: " + " ".join(f"{k}" for k in keys))
    for r in rows:
        cells = " ".join(f"{r.get(k, 0):.2f}" for k in keys)
        extra = f"wall {r['wall']:.1f}"
        if r["cpu"] is not None:
            extra += f" cpu {r['cpu']:.1f} rss {r['rss_gib']:.2f} GiB"
        print(f"  {cells}  {extra}  load {r['load']:.2f}")
    med = " ".join(f"{statistics.median(r.get(k, 0) for r in rows):.2f}" for k in keys)
    print(f"  median {med}  wall {statistics.median(r['wall'] for r in rows):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one-solver", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portopt-speed-") as tmp:
        base = Path(tmp)
        plans = [one("plan", base / f"plan{i}", []) for i in range(args.repeat)]
        runs = [one("run", base / f"run{i}", []) for i in range(args.repeat)]
        show("portopt plan", plans)
        show("portopt run", runs)
        folders = [base / f"plan{i}" for i in range(args.repeat)]
        if args.one_solver:
            single = ["--set", "scenarios.threads=1", "--set", "plan.frontier.workers=1"]
            show("portopt plan, one thread and one solver", [one("plan", base / "one", single)])
            folders.append(base / "one")
        differ = [
            f"{folder.name}/{name}"
            for folder in folders[1:]
            for name in FILES
            if not filecmp.cmp(folders[0] / name, folder / name, shallow=False)
        ]
        print("plans' files identical" if not differ else f"files differ: {', '.join(differ)}")


if __name__ == "__main__":
    main()
