"""docs/adding-a-group.md's example, done for real: each code block of the page is put where
its heading line says, in a copy of the package and its tests, and the copy's tests run in a
fresh interpreter. The page's claim of what a new group costs (files, lines of code) is
counted on the same blocks."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "adding-a-group.md"
BLOCK = re.compile(r"```python (\S+), ([^\n]+)\n(.*?)```", re.S)
COPIED = (
    "portopt",
    "configs",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/model/test_model_support.py",
    "tests/model/test_model_groups.py",
    "tests/test_config.py",
)
"""What the copy holds: the package, the configs and the tests the new group must pass."""


def blocks() -> list[tuple[str, str, str]]:
    """(file, where, code) of each placed code block of the page, in order."""
    return [(path, where.strip(), code) for path, where, code in BLOCK.findall(DOC.read_text())]


def code_lines(code: str) -> int:
    """Lines of code: neither blank nor a comment."""
    return sum(1 for line in code.splitlines() if line.strip() and not line.strip().startswith("#"))


def place(text: str, where: str, code: str) -> str:
    """``text`` with ``code`` put ``where`` (the heading line's words)."""
    if where == "at the end":
        return text.rstrip("\n") + "\n\n\n" + code
    if where == "a new file":
        assert text == "", "a new file exists already"
        return code
    lines = text.splitlines(keepends=True)
    name = re.fullmatch(r"(?:above|last in) class (\w+)", where)
    assert name, f"unknown place {where!r}"
    cls = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == name[1])
    at = cls.lineno - 1 if where.startswith("above") else cls.end_lineno
    return "".join([*lines[:at], code, "\n\n" if where.startswith("above") else "", *lines[at:]])


def test_the_page_places_three_files_and_at_most_forty_lines_of_code() -> None:
    placed = blocks()
    assert {path for path, _, _ in placed} == {
        "portopt/config.py",
        "portopt/model/groups.py",
        "tests/test_region_cap.py",
    }
    total = sum(code_lines(code) for _, _, code in placed)
    assert total <= 40
    said = re.search(r"touches \*\*three\s+files\*\*, (\d+) lines of code", DOC.read_text())
    assert said and int(said[1]) == total, "the page states the lines it counts"


def test_place_puts_code_above_and_into_a_class() -> None:
    text = "x = 1\n\n\nclass A:\n    a: int = 1\n    b: int = 2\n\n\ny = 2\n"
    above = place(text, "above class A", "class B:\n    pass\n")
    assert above.index("class B") < above.index("class A")
    ast.parse(above)
    into = place(text, "last in class A", "    c: int = 3\n")
    assert into.index("c: int") > into.index("b: int") and into.index("c: int") < into.index("y")
    ast.parse(into)


@pytest.mark.slow
def test_the_documented_group_works_in_a_copy_of_the_package(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    for name in COPIED:
        source, target = ROOT / name, copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    for path, where, code in blocks():
        target = copy / path
        text = target.read_text() if target.exists() else ""
        target.write_text(place(text, where, code))
    tests = [
        "tests/test_region_cap.py",
        "tests/model/test_model_groups.py::test_the_registry_and_the_config_name_the_same_groups",
        "tests/test_config.py::test_default_yaml_states_the_schema_defaults",
        "tests/test_config.py::test_every_shipped_config_validates",
    ]
    env = {**os.environ, "PYTHONPATH": str(copy)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "passed" in done.stdout and "region_cap" not in (ROOT / "portopt/config.py").read_text()
    probe = "import portopt.model.groups as g; print(g.__file__, [c.name for c in g.GROUPS][-1])"
    where = subprocess.run(
        [sys.executable, "-c", probe], cwd=copy, env=env, capture_output=True, text=True
    )
    assert where.stdout.split() == [str(copy / "portopt/model/groups.py"), "region_cap"]
