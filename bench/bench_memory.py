"""portopt's memory estimate (portopt.memory) against the peak a command really reaches.

    python bench/bench_memory.py COMMAND [KEY=VALUE ...]

``COMMAND`` is ``plan`` or ``run``; each further argument is a config override (as ``--set``),
e.g. ``scenarios.optimisation=10000 scenarios.evaluation=20000``. Runs ``portopt COMMAND`` on
``configs/default.yaml`` in a subprocess and prints the peak memory of its process tree overall
and within each stage (read off the live progress display), portopt's estimate by part, and the
estimate over the peak (bench/RESULTS.md, "Memory of a plan"); with ``--json``, one JSON line.

The peak (:func:`tree_peak`) is the memory of the whole process tree, the command and the
worker processes it starts (a plan's frontier solves its points in parallel processes), at the
moment the tree holds the most: the largest sum of the processes' resident memory over samples
every 50 ms, and at least the command's own high-water mark (``VmHWM``, which catches a peak
between two samples). Workers that run together count together; a worker's peak and the
command's do not add when they fall at different times. The kernel's ``ru_maxrss`` of the child
is not used: Linux carries the high-water mark of the process that started the child (here the
bench or pytest, possibly large) into the child through fork and exec, so a small command
started from a large process reports the large one's peak.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from portopt.config import load_config  # noqa: E402
from portopt.memory import MIB  # noqa: E402
from portopt.pipeline import memory_estimate  # noqa: E402
from portopt.planning import Plan  # noqa: E402
from portopt.run import OneShot  # noqa: E402

CONFIG = ROOT / "configs" / "default.yaml"
STAGE_WORDS = {
    "Loading": "catalog",
    "optimisation scenarios": "scenarios_optimisation",
    "Choosing": "optimise",
    "Re-solving": "marginal",
    "expected-recovery floors": "frontier",
    "fresh evaluation": "scenarios_evaluation",
    "Evaluating": "evaluate",
    "Writing tables": "write",
    "Writing the report": "report",
}


def high_water(pid: int) -> int:
    """The process's own peak resident bytes (``VmHWM`` of /proc/PID/status; 0 where there is
    none). Unlike ``ru_maxrss`` it starts afresh at exec."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class TreePeak:
    """What :func:`tree_peak` saw."""

    peak: int = 0
    """Bytes: the largest sum of the tree's resident memory, at least the command's VmHWM."""
    stages: dict[str, int] = field(default_factory=dict)
    """The largest sum of the tree's resident memory within each stage."""
    own_stages: dict[str, int] = field(default_factory=dict)
    """The command's own largest resident memory within each stage (its workers left out)."""
    processes: int = 1
    """The most processes alive in the tree at once."""
    worker_peak: int = 0
    """The largest resident memory of one child process."""
    seconds: float = 0.0


def tree_peak(
    proc: subprocess.Popen, stage: list[str] | None = None, every: float = 0.05
) -> TreePeak:  # type: ignore[type-arg]
    """Sample the memory of ``proc`` and its descendants until ``proc`` exits (the module
    docstring); ``stage[0]``, when given, names the stage each sample falls in."""
    seen = TreePeak()
    root = psutil.Process(proc.pid)
    t0 = time.perf_counter()
    own = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        total = mine = 0
        for p in tree:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            if p.pid != root.pid:
                seen.worker_peak = max(seen.worker_peak, rss)
            else:
                mine = rss
        own = max(own, high_water(proc.pid))
        seen.processes = max(seen.processes, len(tree))
        seen.peak = max(seen.peak, total)
        if stage is not None:
            seen.stages[stage[0]] = max(seen.stages.get(stage[0], 0), total)
            seen.own_stages[stage[0]] = max(seen.own_stages.get(stage[0], 0), mine)
        time.sleep(every)
    seen.peak = max(seen.peak, own)
    seen.seconds = time.perf_counter() - t0
    return seen


def measure(command: str, overrides: list[str]) -> TreePeak:
    """Run ``portopt command`` with ``overrides``; the peak of its process tree."""
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
    found = tree_peak(proc, stage)
    proc.wait()
    reader.join(timeout=10)
    if proc.returncode:
        raise SystemExit(text.decode("utf-8", "replace")[-3000:])
    return found


def main(command: str, overrides: list[str], as_json: bool = False) -> None:
    config = load_config(CONFIG, overrides)
    estimate = memory_estimate(Plan() if command == "plan" else OneShot(), config)
    found = measure(command, overrides)
    load = os.getloadavg()[0]
    peak = found.peak
    stage = max(found.stages, key=lambda s: found.stages[s]) if found.stages else "?"
    if as_json:
        row = {
            "command": command,
            "overrides": overrides,
            "peak_mib": round(peak / MIB),
            "peaked_in": stage,
            "stages_mib": {k: round(v / MIB) for k, v in found.stages.items()},
            "own_stages_mib": {k: round(v / MIB) for k, v in found.own_stages.items()},
            "processes": found.processes,
            "worker_peak_mib": round(found.worker_peak / MIB),
            "estimate_mib": round(estimate.total / MIB),
            "parts_mib": {k: round(v / MIB) for k, v in estimate.parts.items()},
            "ratio": round(estimate.total / peak, 3),
            "wall_s": round(found.seconds, 1),
            "load": round(load, 1),
        }
        print(json.dumps(row), flush=True)
        return
    print(f"portopt {command} {' '.join(overrides)}  (load {load:.1f})")
    for name, rss in found.stages.items():
        own = found.own_stages.get(name, 0)
        print(f"  peak in {name:24s} {rss / MIB:9,.0f} MiB  (the command alone {own / MIB:,.0f})")
    print(f"  peak of the process tree        {peak / MIB:9,.0f} MiB  (in {stage})")
    print(f"  processes at once               {found.processes:9d}")
    print(f"  largest worker                  {found.worker_peak / MIB:9,.0f} MiB")
    print(f"  estimate                        {estimate.total / MIB:9,.0f} MiB")
    for name, b in estimate.parts.items():
        print(f"    {name:30s} {b / MIB:9,.0f} MiB")
    print(f"  estimate / peak                 {estimate.total / peak:9.3f}")
    print(f"  wall                            {found.seconds:9.1f} s")


if __name__ == "__main__":
    flags = [a for a in sys.argv[2:] if a == "--json"]
    main(sys.argv[1], [a for a in sys.argv[2:] if a != "--json"], bool(flags))
