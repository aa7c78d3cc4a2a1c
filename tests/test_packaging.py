"""Packaging: the conda environment matches pyproject, the wheel carries the CUDA sources and
the example configs and runs from its own files, importing portopt needs no CuPy and prints
nothing, the CLI answers --help and --version."""

from __future__ import annotations

import json
import os
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
    (cuda,) = [d for d in env["dependencies"] if isinstance(d, str) and _name(d) == "cuda-version"]
    assert cuda.replace(" ", "") == "cuda-version>=12.0,<13", "the cuda12 extra's CUDA line"
    for extra in ("pytest", "pytest-benchmark", "hypothesis", "ruff"):
        assert extra in conda


def test_gpu_extras_are_named_after_the_cuda_line() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(_name(r) == "cupy-cuda12x" for r in extras["cuda12"])
    assert any(_name(r) == "cupy-cuda13x" for r in extras["cuda13"])


def test_make_run_installs_no_nvidia_compiler_wheel() -> None:
    """The NVRTC wheels live in their own extra, which only CI's `make test EXTRAS=nvrtc` adds."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    nvidia = {"nvidia-cuda-nvrtc-cu12", "cuda-bindings"}
    assert {_name(r) for r in extras["nvrtc"]} == nvidia
    assert not nvidia & {_name(r) for r in extras["dev"]}
    # CI's `make test EXTRAS=nvrtc` exports EXTRAS to this process: the dry run is a new user's
    env = {k: v for k, v in os.environ.items() if k not in {"EXTRAS", "MAKEFLAGS", "MAKELEVEL"}}
    dry = subprocess.run(
        ["make", "-n", "-B", "run", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    installs = [line for line in dry.splitlines() if "pip install" in line and "-e" in line]
    assert installs[0].endswith("-e '.'"), installs  # make run: the runtime only
    assert installs[1].endswith("-e '.[dev]'"), installs
    assert "make test EXTRAS=nvrtc" in (ROOT / ".ci" / "run").read_text()


def test_import_needs_no_cupy_and_prints_nothing() -> None:
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import portopt, portopt.cli.main\n"
        "assert 'cupy' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == ""
    assert out.stderr == ""


@pytest.mark.slow
def test_cli_help_and_version() -> None:
    exe = Path(sys.executable).parent / "portopt"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert portopt.__version__ in out.stdout
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "validate" in out.stdout


def test_license_is_mit() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the portopt authors" in text


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = folder.glob("portopt-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_kernels_data_configs_and_license(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "portopt/kernels/scenario.cu" in names
    assert "portopt/kernels/philox.cuh" in names
    assert "portopt/data/projects.csv" in names
    assert "portopt/data/README.md" in names
    shipped = {p.name for p in (ROOT / "configs").glob("*.yaml")}
    assert {f"portopt/configs/{name}" for name in shipped} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    """Unpacked away from the checkout, the wheel alone writes out and runs a bundled config."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), wheel],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "160"}

    def portopt_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "portopt", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import portopt; print(portopt.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(site)
    written = portopt_cli("init-config", "gpu_large")
    assert written.returncode == 0, written.stderr
    shipped = (ROOT / "configs" / "gpu_large.yaml").read_text()
    assert (work / "gpu_large.yaml").read_text() == shipped
    small = ["--set", "scenarios.optimisation=60", "--set", "scenarios.evaluation=60"]
    done = portopt_cli("run", "stress_coercion", "--out", "out", "--json", *small)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["out_dir"] == "out" and (work / "out" / "metrics.json").is_file()
