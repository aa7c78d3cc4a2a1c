"""Which array backend runs the scenario engine: NumPy on the host, or CuPy on a CUDA device.

The choice is made once, at the public entry point (:func:`resolve_backend`), and CuPy is only
imported there, never when ``portopt`` is imported. :func:`to_host` is the one function that
copies a device array back.
"""

from __future__ import annotations

import importlib
import os
import platform
from typing import Any

import numpy as np

from portopt.errors import BackendError

BACKENDS = ("auto", "numpy", "cupy")


def _cupy() -> Any | None:
    """The ``cupy`` module when it imports and sees at least one CUDA device, else ``None``."""
    try:
        cp = importlib.import_module("cupy")
    except Exception:  # ImportError, or a CUDA runtime that fails to load
        return None
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:
        return None
    return cp


def resolve_backend(name: str = "auto") -> str:
    """``"numpy"`` or ``"cupy"`` for a requested backend.

    ``auto`` is CuPy when it imports and a CUDA device is present, else NumPy. ``cupy`` without
    CuPy or a device raises :class:`BackendError` saying how to get one.
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}'; expected one of {', '.join(BACKENDS)}")
    if name == "numpy":
        return "numpy"
    cp = _cupy()
    if cp is not None:
        return "cupy"
    if name == "auto":
        return "numpy"
    raise BackendError(
        "backend 'cupy' needs CuPy and a CUDA device; install the extra matching your CUDA line"
        " (pip install 'portopt[cuda12]' or 'portopt[cuda13]') on a machine with a GPU, or use"
        " --backend numpy"
    )


def device_info(backend: str = "numpy") -> dict[str, Any]:
    """What runs the engine: CPU model and cores for NumPy; GPU name and memory for CuPy."""
    if backend == "cupy":
        cp = _cupy()
        if cp is None:
            raise BackendError("no CUDA device is available")
        dev = cp.cuda.Device()
        props = cp.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"]
        free, total = cp.cuda.runtime.memGetInfo()
        return {
            "backend": "cupy",
            "device": name.decode() if isinstance(name, bytes) else str(name),
            "device_id": int(dev.id),
            "compute_capability": str(dev.compute_capability),
            "memory_total_mb": round(total / 2**20),
            "memory_free_mb": round(free / 2**20),
            "cupy": cp.__version__,
        }
    return {
        "backend": "numpy",
        "device": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def to_host(x: Any) -> Any:
    """A NumPy copy of a device array (or the array itself when it is already on the host).

    Dicts, lists and tuples are converted element by element.
    """
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return x
    if isinstance(x, dict):
        return {k: to_host(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(to_host(v) for v in x)
    get = getattr(x, "get", None)
    if callable(get):  # cupy.ndarray
        return get()
    return np.asarray(x)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, as in a
    container limited to 2 cores), the NumPy engine's default thread count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
