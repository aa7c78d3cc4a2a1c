"""The outputs of ``portopt plan`` and ``portopt run`` on a small configuration are the files
committed in tests/golden/ (timings aside): restructuring the code must not change them.

A change meant to change them regenerates them with ``python tests/golden/regen.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
import regen


@pytest.mark.slow
@pytest.mark.parametrize("case", regen.CASES)
def test_outputs_equal_the_golden_files(case: str, tmp_path: Path) -> None:
    regen.produce(case, tmp_path / case)
    got = regen.normalised(tmp_path / case)
    want = {
        p.relative_to(regen.HERE / case).as_posix(): p.read_bytes()
        for p in sorted((regen.HERE / case).rglob("*"))
        if p.is_file()
    }
    assert sorted(got) == sorted(want)
    changed = [name for name in want if got[name] != want[name]]
    assert changed == [], f"differs from tests/golden/{case}: {changed} (regen.py if intended)"


def test_the_comparison_sees_a_changed_number(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "metrics.json").write_text('{"a": 1.0, "timings_s": {"total": 3.0}}')
    first = regen.normalised(folder)
    (folder / "metrics.json").write_text('{"a": 1.0, "timings_s": {"total": 9.0}}')
    assert regen.normalised(folder) == first
    (folder / "metrics.json").write_text('{"a": 1.5, "timings_s": {"total": 3.0}}')
    assert regen.normalised(folder) != first
