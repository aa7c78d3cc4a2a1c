"""Packaging: the conda environment matches pyproject, the wheel carries the CUDA sources,
importing portopt needs no CuPy and prints nothing, the CLI answers --help and --version."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

import portopt

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_has_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    missing = [r for r in project["dependencies"] if _name(r) not in conda]
    assert not missing, f"environment.yml lacks {missing}"
    assert "cupy" in conda, "environment.yml is for CUDA boxes: it should bring CuPy"
    for extra in ("pytest", "pytest-benchmark", "hypothesis", "ruff"):
        assert extra in conda


def test_gpu_extras_are_named_after_the_cuda_line() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(_name(r) == "cupy-cuda12x" for r in extras["cuda12"])
    assert any(_name(r) == "cupy-cuda13x" for r in extras["cuda13"])


def test_import_needs_no_cupy_and_prints_nothing() -> None:
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import portopt, portopt.cli.main\n"
        "assert 'cupy' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == ""
    assert out.stderr == ""


def test_cli_help_and_version() -> None:
    exe = Path(sys.executable).parent / "portopt"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert portopt.__version__ in out.stdout
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "validate" in out.stdout


@pytest.mark.slow
def test_wheel_carries_kernels_and_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("portopt-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "portopt/kernels/scenario.cu" in names
    assert "portopt/kernels/philox.cuh" in names
    assert "portopt/data/projects.csv" in names
    assert "portopt/data/README.md" in names
