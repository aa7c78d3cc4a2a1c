"""portopt's memory estimate (portopt.memory) against the peak a command really reaches.

    python bench/bench_memory.py COMMAND [KEY=VALUE ...]

``COMMAND`` is ``plan`` or ``run``; each further argument is a config override (as ``--set``),
e.g. ``scenarios.optimisation=10000 scenarios.evaluation=20000``. Runs ``portopt COMMAND`` on
``configs/default.yaml`` in a subprocess, samples its resident memory every 50 ms, and prints
the peak within each stage (read off the live progress display), the peak RSS the kernel
reports (``ru_maxrss``), portopt's estimate by part, and the estimate over the peak
(bench/RESULTS.md, "Memory").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from portopt.config import load_config
from portopt.memory import MIB
from portopt.pipeline import memory_estimate
from portopt.planning import Plan
from portopt.run import OneShot

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "default.yaml"
STAGE_WORDS = {
    "Loading": "catalog",
    "optimisation scenarios": "scenarios_optimisation",
    "Choosing": "optimise",
    "Re-solving": "marginal",
    "fresh evaluation": "scenarios_evaluation",
    "Evaluating": "evaluate",
    "Writing tables": "write",
    "Writing the report": "report",
}


def measure(command: str, overrides: list[str]) -> dict[str, object]:
    """Run ``portopt command`` with ``overrides``; its peak RSS by stage and overall."""
    out = Path(tempfile.mkdtemp(prefix="portopt-mem-")) / "out"
    args = [sys.executable, "-m", "portopt", command, str(CONFIG), "--out", str(out)]
    for item in overrides:
        args += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TTY_COMPATIBLE": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        args, env=env, cwd=out.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    text = bytearray()
    stage = ["start"]
    peaks: dict[str, int] = {}

    def read() -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read1(65536):
            text.extend(chunk)
            tail = text[-4000:].decode("utf-8", "replace")
            spinning = [ln for ln in re.split(r"[\r\n]", tail) if "✓" not in ln]
            for words, name in STAGE_WORDS.items():
                if any(words in ln for ln in spinning[-3:]):
                    stage[0] = name

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ps = psutil.Process(proc.pid)
    t0 = time.perf_counter()
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss
        except psutil.Error:
            break
        peaks[stage[0]] = max(peaks.get(stage[0], 0), rss)
        time.sleep(0.05)
    _, status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
    reader.join(timeout=10)
    if proc.returncode not in (0, None) or status:
        raise SystemExit(text.decode("utf-8", "replace")[-3000:])
    maxrss = usage.ru_maxrss * 1024 if usage is not None else max(peaks.values())
    return {"stages": peaks, "maxrss": maxrss, "seconds": time.perf_counter() - t0}


def main(command: str, overrides: list[str]) -> None:
    config = load_config(CONFIG, overrides)
    estimate = memory_estimate(Plan() if command == "plan" else OneShot(), config)
    found = measure(command, overrides)
    print(f"portopt {command} {' '.join(overrides)}  (load {os.getloadavg()[0]:.1f})")
    for name, rss in found["stages"].items():  # type: ignore[union-attr]
        print(f"  peak in {name:24s} {rss / MIB:9,.0f} MiB")
    peak = int(found["maxrss"])  # type: ignore[arg-type]
    print(f"  peak RSS (ru_maxrss)            {peak / MIB:9,.0f} MiB")
    print(f"  estimate                        {estimate.total / MIB:9,.0f} MiB")
    for name, b in estimate.parts.items():
        print(f"    {name:30s} {b / MIB:9,.0f} MiB")
    print(f"  estimate / peak                 {estimate.total / peak:9.3f}")
    print(f"  wall                            {found['seconds']:9.1f} s")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
