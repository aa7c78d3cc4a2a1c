"""Golden outputs of ``portopt plan`` and ``portopt run`` on a small configuration.

The files under ``tests/golden/<case>/`` are what the two commands wrote, timings aside, on the
bundled catalog with 100 optimisation and 200 evaluation scenarios, solved to the configured MIP
gap (the solve ends on its gap, never on the clock, so the answer does not depend on the
machine's speed or load; the time limit is raised so that it cannot end it; :data:`SETTINGS`).
``tests/test_golden.py`` runs both again and compares every file byte for byte: a restructuring must
leave them unchanged.

A change that is meant to change the outputs regenerates them, in the same commit::

    PYTHONPATH=. python tests/golden/regen.py

What is kept of each output folder (:func:`normalised`): every CSV as written; metrics.json
without its wall-clock keys (:data:`TIMING_KEYS`); the scenario Parquet files as a SHA-256 of
their table contents (the files themselves are 1.8 MB and carry the writer's version).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = ROOT / "configs" / "default.yaml"

SETTINGS = (
    "scenarios.optimisation=100",
    "scenarios.evaluation=200",
    "solver.time_limit_s=600",
    "output.report=false",
)
"""The small configuration: ``configs/default.yaml`` with these ``--set`` overrides."""

CASE_SETTINGS = {"plan": ("plan.frontier.enabled=false",)}
"""More overrides for one case: the plan's frontier (ten more solves) is tested
on its own (tests/test_tradeoff.py); a one-shot run takes no plan key."""

CASES = ("plan", "run")
"""The commands compared, one golden folder each."""

TIMING_KEYS = ("timings_s", "model_timings_s")
"""metrics.json keys that hold wall-clock seconds (left out of the comparison)."""


def produce(case: str, out: Path) -> None:
    """Run ``portopt <case>`` on the small configuration into ``out`` (a subprocess, so the
    command line is what is tested)."""
    sets = [a for s in (*SETTINGS, *CASE_SETTINGS.get(case, ())) for a in ("--set", s)]
    cmd = [sys.executable, "-m", "portopt", case, str(CONFIG), "--out", str(out), *sets]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"portopt {case} failed ({done.returncode}):\n{done.stderr[-4000:]}")


def normalised(folder: Path) -> dict[str, bytes]:
    """The compared files of an output folder: relative name -> bytes."""
    out: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".csv":
            out[name] = path.read_bytes()
        elif path.name == "metrics.json":
            metrics = json.loads(path.read_text())
            for key in TIMING_KEYS:
                metrics.pop(key, None)
            out[name] = (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode()
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            digest = hashlib.sha256()
            digest.update(",".join(map(str, frame.columns)).encode())
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
            out[name + ".sha256"] = (digest.hexdigest() + "\n").encode()
    return out


def regenerate() -> None:
    """Rewrite ``tests/golden/<case>/`` for every case."""
    with tempfile.TemporaryDirectory(prefix="portopt-golden-") as tmp:
        for case in CASES:
            produce(case, Path(tmp) / case)
            target = HERE / case
            shutil.rmtree(target, ignore_errors=True)
            for name, data in normalised(Path(tmp) / case).items():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes(data)
            print(f"wrote {target}")


if __name__ == "__main__":
    regenerate()
