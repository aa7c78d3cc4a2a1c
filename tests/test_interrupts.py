"""Ctrl-C (SIGINT) and SIGTERM sent to a ``portopt plan`` process in each of its stages: it exits
130, the output folder of an earlier plan is left byte for byte as it was, no staging folder is
left beside it, and an interrupted solve is never written up as optimal. A run killed outright
(SIGKILL) leaves its staging folder, which the next run into the same folder removes.

Each test starts the CLI as a subprocess (its own pid) and watches its progress display on
stderr (``TTY_COMPATIBLE=1`` makes rich draw it live into the pipe) or its staging folder to
know which stage it is in, then signals it.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from portopt.errors import EXIT_INTERRUPTED
from portopt.outputs import STAGING_MARK

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = str(ROOT / "configs" / "default.yaml")
QUICK = [
    "--set",
    "solver.time_limit_s=2",
    "--set",
    "scenarios.optimisation=200",
    "--set",
    "scenarios.evaluation=500",
    "--set",
    "plan.frontier.enabled=false",  # its ten plans lie outside the stages signalled here
]

pytestmark = pytest.mark.slow


class _Process:
    """A ``portopt`` subprocess whose stderr is collected as it comes."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TTY_COMPATIBLE": "1",  # rich draws the live progress into the pipe
            "COLUMNS": "240",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "portopt", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.err = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(65536):
            self.err.extend(chunk)

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 300) -> None:
        end = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"exited {self.proc.returncode} before {what}:\n{self.stderr[-3000:]}")
            if time.monotonic() > end:
                self.proc.kill()
                pytest.fail(f"no {what} within {timeout} s")
            time.sleep(0.02)

    def signal(self, sig: int) -> tuple[int, float]:
        """Send ``sig``; the exit code and the seconds it took to exit."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"still running 120 s after {signal.Signals(sig).name}")
        self.reader.join(timeout=10)
        return code, time.monotonic() - t0


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _staging(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*"))


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of an earlier, complete plan (small and quick)."""
    out = tmp_path_factory.mktemp("earlier") / "out"
    args = ["plan", DEFAULT, "--out", str(out), *QUICK]
    done = subprocess.run(
        [sys.executable, "-m", "portopt", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return out


def _again(earlier: Path, tmp_path: Path) -> Path:
    """A copy of the earlier plan's folder to be overwritten by the interrupted one."""
    out = tmp_path / "out"
    subprocess.run(["cp", "-a", str(earlier), str(out)], check=True)
    return out


STAGES = {
    # stage: (its label on the progress display, the settings that make it last)
    "scenarios": (
        "Generating 4,000 optimisation scenarios",
        ["--set", "scenarios.optimisation=4000"],
    ),
    "solve": ("Choosing the plan", ["--set", "solver.time_limit_s=60"]),
    "evaluation": (
        "fresh evaluation scenarios",
        ["--set", "scenarios.evaluation=400000"],
    ),
}


@pytest.mark.parametrize(
    ("stage", "sig"),
    [(stage, signal.SIGINT) for stage in STAGES] + [("scenarios", signal.SIGTERM)],
    ids=[*(f"{stage}-SIGINT" for stage in STAGES), "scenarios-SIGTERM"],
)
def test_a_signal_in_a_stage_exits_130_and_keeps_the_earlier_output(
    stage: str, sig: int, earlier: Path, tmp_path: Path
) -> None:
    label, settings = STAGES[stage]
    out = _again(earlier, tmp_path)
    before = _digest(out)
    args = ["plan", DEFAULT, "--out", str(out), "--set", "output.overwrite=true", *QUICK]
    run = _Process([*args, *settings], tmp_path)
    run.wait_for(lambda: label in run.stderr, f"the stage '{label}'")
    time.sleep(1.0)  # well inside the stage
    code, _ = run.signal(sig)
    assert code == EXIT_INTERRUPTED, run.stderr[-3000:]
    assert "interrupted" in run.stderr
    assert "Traceback" not in run.stderr
    assert _digest(out) == before  # the earlier plan, metrics.json included, as it was
    assert _staging(out) == []


def test_a_signal_while_writing_keeps_the_earlier_output(earlier: Path, tmp_path: Path) -> None:
    out = _again(earlier, tmp_path)
    before = _digest(out)
    args = ["plan", DEFAULT, "--out", str(out), "--set", "output.overwrite=true", *QUICK]
    run = _Process(args, tmp_path)
    run.wait_for(lambda: bool(_staging(out)), "a staging folder")
    code, _ = run.signal(signal.SIGINT)
    assert code == EXIT_INTERRUPTED, run.stderr[-3000:]
    assert _digest(out) == before
    assert _staging(out) == []


def test_an_interrupted_solve_is_not_reported_optimal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["plan", DEFAULT, "--out", str(out), *QUICK, "--set", "solver.time_limit_s=60"]
    run = _Process(args, tmp_path)
    run.wait_for(lambda: "Choosing the plan" in run.stderr, "the solve")
    time.sleep(1.0)
    code, _ = run.signal(signal.SIGINT)
    assert code == EXIT_INTERRUPTED, run.stderr[-3000:]
    assert not out.exists()  # no metrics.json, so no "optimal" for a solve that was cut short
    assert _staging(out) == []


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["plan", DEFAULT, "--out", str(out), *QUICK]
    run = _Process(args, tmp_path)
    # with its mark written: a folder killed between its mkdtemp and its mark is no folder
    # portopt can tell for its own, and is left alone
    run.wait_for(lambda: any((f / STAGING_MARK).is_file() for f in _staging(out)), "a mark")
    run.proc.kill()
    run.proc.wait()
    assert _staging(out)  # SIGKILL leaves it
    again = subprocess.run(
        [sys.executable, "-m", "portopt", *args, "--set", "scenarios.evaluation=0"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert again.returncode == 2  # refused before any work, and still cleans up
    assert _staging(out) == []
