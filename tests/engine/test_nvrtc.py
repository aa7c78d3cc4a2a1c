"""NVRTC accepts the exact kernel source the CUDA loader builds, for sm_80 and sm_90, with no GPU.

The NVRTC library comes from the ``nvidia-cuda-nvrtc-cu12`` wheel and ``cuda-bindings`` drives it
(both in the ``nvrtc`` extra, which .ci/run installs); compiling to PTX needs no driver and no
device, so this runs, and must pass, on CI machines without a GPU. Under CI (``CI`` set) a missing
library is a failure; elsewhere, without the extra, the test is skipped and says how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portopt.engine.cupy_engine import kernel_source, kernels_dir, nvrtc_options

if os.environ.get("CI"):
    from cuda.bindings import nvrtc
else:
    nvrtc = pytest.importorskip(
        "cuda.bindings.nvrtc", reason="the nvrtc extra: make test EXTRAS=nvrtc"
    )


def _compile(source: str, arch: str) -> tuple[bool, str, int]:
    """NVRTC on ``source`` with the loader's options for ``arch``: (ok, log, PTX bytes)."""
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), b"scenario.cu", 0, [], [])
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
    try:
        options = [o.encode() for o in (*nvrtc_options(), f"--gpu-architecture={arch}")]
        (result,) = nvrtc.nvrtcCompileProgram(prog, len(options), options)
        _, size = nvrtc.nvrtcGetProgramLogSize(prog)
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, log)
        ptx = 0
        if result == nvrtc.nvrtcResult.NVRTC_SUCCESS:
            _, ptx = nvrtc.nvrtcGetPTXSize(prog)
        return result == nvrtc.nvrtcResult.NVRTC_SUCCESS, log.decode(errors="replace"), ptx
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_loader_source_compiles(arch: str) -> None:
    ok, log, ptx = _compile(kernel_source(), arch)
    assert ok, log
    assert ptx > 10_000  # both entry points made it into the PTX


def test_errors_point_at_the_real_file_and_line(tmp_path: Path) -> None:
    # a copy of the kernels with one broken line in the body header: NVRTC must reject it and
    # name scenario_body.cuh and that line (the loader's #line markers)
    for f in kernels_dir().glob("*.cu*"):
        (tmp_path / f.name).write_text(f.read_text())
    body = tmp_path / "scenario_body.cuh"
    lines = body.read_text().splitlines()
    at = next(n for n, line in enumerate(lines) if "struct Params {" in line)
    lines.insert(at, "this is not C++;")
    body.write_text("\n".join(lines) + "\n")
    ok, log, _ = _compile(kernel_source(tmp_path), "sm_90")
    assert not ok
    assert f"scenario_body.cuh({at + 1})" in log, log
