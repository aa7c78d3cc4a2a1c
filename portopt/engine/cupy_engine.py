"""The CUDA scenario engine: ``kernels/scenario.cu`` through CuPy, the twin of the NumPy engine.

:func:`run` has the signature and the result of :func:`portopt.engine.numpy_engine.run` (an
:class:`~portopt.engine.scenario_set.EngineResult` of host arrays) and reproduces its numbers:
discrete
outputs equal, amounts within 1e-9 relative (the kernel evaluates every formula in the NumPy
engine's order and is compiled with ``--fmad=false``, so only the last ulp of ``exp``, ``log``,
``sin`` and ``cos`` differs). The kernel runs a block per scenario and a thread per project
(see the head of ``kernels/scenario.cu``); scenarios go in chunks sized to the device's free
memory, each chunk's outputs copied to the host before the next.

CuPy is imported inside the functions that need it, never when this module is imported, so
:func:`pack_inputs` (the buffers the kernel and its host build read) works without it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from portopt.config import SCENARIO_INDICES
from portopt.engine.inputs import EngineInputs
from portopt.engine.scenario_set import CASH_FIELDS, PROJECT_FIELDS, SCENARIO_FIELDS, EngineResult
from portopt.errors import BackendError, ScenarioError

PF_FIELDS = (
    "unit",
    "opex_share",
    "beta",
    "offtake_share",
    "offtake_floor",
    "overrun_median",
    "overrun_sigma",
    "delay_median",
    "permit_mult",
    "permit_vol",
    "intensity",
    "fail_threshold",
    "spread",
    "leverage",
    "senior_spread",
    "bonus_share",
    "itc",
    "ptc_unit",
    "yen_share",
    "indexation",
    "offtake_indexed",
    "credit_indexed",
    "fuel_share",
    "hurdle_growth",
    "fund_equity",
)
"""Per-project float64 columns of the ``pf`` buffer, in ``enum ProjectDouble`` order."""

PI_FIELDS = (
    "project_entity",
    "q0",
    "build_quarters",
    "life_quarters",
    "factor",
    "backlog",
    "sector",
    "senior_tenor",
    "annuity",
    "offtake_quarters",
    "dep_row",
    "credit_quarters",
    "funding",
    "stack",
)
"""Per-project int32 columns of the ``pi`` buffer, in ``enum ProjectInt`` order."""

SCALAR_FIELDS = (
    "sofr_theta",
    "sofr_r0",
    "sofr_floor",
    "p_start",
    "p_end",
    "tax_rate",
    "nol_limit",
    "salvage_share",
    "share_before",
    "share_after",
    "realloc_share",
    "labour_delay_beta",
    "overrun_labour_corr",
    "overrun_labour_perp",
    "backlog_mean",
    "backlog_vol",
    "sector_load",
    "sector_perp",
    "stress_vol",
    "stress_half_var",
    "stress_uplift",
    "infl_theta",
    "infl_r0",
    "infl_a",
    "infl_b",
    "infl_rho",
    "infl_perp",
)
"""Scalars at the head of the ``sc`` buffer (``enum Scalar``); then chol, ou_a, ou_b, jump,
the discount table (funding sources × quarters) and the depreciation rates (rows × years)."""

PATH_STRIDE = 9
"""Doubles per quarter of the market path in shared memory (``PATH_STRIDE`` of
kernels/scenario_body.cuh): six log prices, the rate, the coercion flag, the CPI index."""

DEFAULT_BLOCK = 256
"""Threads per block (a multiple of 32). A starting point: bench/gpu_check.sh times others."""

DEFAULT_MIN_BLOCKS = 2
"""Blocks per SM the register budget must allow (``__launch_bounds__``)."""

_NVRTC_OPTIONS = ("--std=c++17", "--fmad=false")
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
_MEMORY_SHARE = 0.6
"""Share of the device's free memory a chunk's outputs may take (the rest: CuPy's pool, the
inputs, other users of the device)."""


def pack_inputs(inputs: EngineInputs) -> dict[str, np.ndarray]:
    """The six buffers of ``kernels/scenario_body.cuh``: ``pf``, ``pi``, ``centity``,
    ``exposed``, ``sc`` and ``ic`` (layout documented there)."""
    pf = np.stack([np.asarray(getattr(inputs, f), dtype=np.float64) for f in PF_FIELDS])
    pi = np.stack(
        [np.asarray(getattr(inputs, f)).astype(np.uint32).view(np.int32) for f in PI_FIELDS]
    )
    sc = np.concatenate(
        [
            np.array([float(getattr(inputs, f)) for f in SCALAR_FIELDS], dtype=np.float64),
            np.asarray(inputs.chol, dtype=np.float64).ravel(),
            np.asarray(inputs.ou_a, dtype=np.float64),
            np.asarray(inputs.ou_b, dtype=np.float64),
            np.asarray(inputs.jump, dtype=np.float64),
            np.asarray(inputs.discount, dtype=np.float64).ravel(),
            np.asarray(inputs.dep_rates, dtype=np.float64).ravel(),
        ]
    )
    key = np.asarray(inputs.key, dtype=np.uint32).view(np.int32)
    ic = np.array(
        [
            inputs.n_projects,
            inputs.n_chokepoints,
            inputs.horizon,
            inputs.w0,
            inputs.w1,
            inputs.window_len,
            inputs.ramp_quarters,
            key[0],
            key[1],
            inputs.max_delay,
            inputs.semiannual,
            inputs.realloc_quarters,
            inputs.dep_rates.shape[1],
            inputs.shortfall_accrues,
            inputs.escalates,
            inputs.fx_parity,
        ],
        dtype=np.int32,
    )
    return {
        "pf": np.ascontiguousarray(pf),
        "pi": np.ascontiguousarray(pi),
        "centity": np.ascontiguousarray(inputs.chokepoint_entity, dtype=np.uint32),
        "exposed": np.ascontiguousarray(inputs.exposed, dtype=np.float64),
        "sc": sc,
        "ic": ic,
    }


def kernels_dir() -> Path:
    """The folder of the CUDA sources: ``portopt/kernels`` in an installed wheel, else the
    repository's ``kernels/`` (an editable install)."""
    packaged = Path(str(resources.files("portopt") / "kernels"))
    if (packaged / "scenario.cu").is_file():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "kernels"
    if (repo / "scenario.cu").is_file():
        return repo
    raise BackendError(
        "the CUDA sources (kernels/scenario.cu) are missing from this installation; reinstall"
        " portopt from its wheel or repository"
    )


def kernel_source(folder: Path | None = None) -> str:
    """``scenario.cu`` with its quoted includes inlined, each file behind ``#line 1 "<path>"``
    (and the includer's line restored after it), so NVRTC's messages name the real file and
    line, and CuPy's compile cache, keyed on the source text, sees every header's changes."""
    folder = kernels_dir() if folder is None else folder
    return _inline((folder / "scenario.cu").resolve(), set())


def _inline(path: Path, seen: set[Path]) -> str:
    seen.add(path)
    out = [f'#line 1 "{path}"']
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _INCLUDE.match(line)
        if match:
            target = (path.parent / match.group(1)).resolve()
            if target not in seen:
                out.append(_inline(target, seen))
            out.append(f'#line {number + 1} "{path}"')
        elif line.strip() == "#pragma once":
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def nvrtc_options(
    block: int = DEFAULT_BLOCK, min_blocks: int = DEFAULT_MIN_BLOCKS
) -> tuple[str, ...]:
    """The NVRTC options :func:`load_module` compiles the kernel with for one launch shape
    (CuPy adds the device's architecture)."""
    return (*_NVRTC_OPTIONS, f"-DPORTOPT_BLOCK={block}", f"-DPORTOPT_MIN_BLOCKS={min_blocks}")


@functools.lru_cache(maxsize=8)
def load_module(block: int = DEFAULT_BLOCK, min_blocks: int = DEFAULT_MIN_BLOCKS) -> Any:
    """The compiled ``cupy.RawModule`` of the kernel for one launch shape (read and compiled
    once per process; NVRTC's output is also cached on disk by CuPy)."""
    import cupy

    return cupy.RawModule(code=kernel_source(), options=nvrtc_options(block, min_blocks))


def _bytes_per_scenario(inputs: EngineInputs, weighted: bool) -> int:
    p, c, h = inputs.n_projects, inputs.n_chokepoints, inputs.horizon
    per_project = sum(np.dtype(d).itemsize for d in PROJECT_FIELDS.values())
    return p * per_project + 8 * c + 12 + (3 * 8 * h if weighted else 0)


def chunk_size(inputs: EngineInputs, weighted: bool, free_bytes: int) -> int:
    """Scenarios per launch: the outputs of a chunk take at most 60% of ``free_bytes``."""
    per = _bytes_per_scenario(inputs, weighted)
    return int(max(1, min(2**31 - 1, (_MEMORY_SHARE * free_bytes) // per)))


def _shared_bytes(horizon: int, block: int, weighted: bool) -> int:
    warps = block // 32
    return 8 * (horizon * (PATH_STRIDE + 1) + (warps * horizon * 3 if weighted else 0))


class DeviceEngine:
    """The kernel bound to one set of inputs on the current device: the inputs are copied
    once, then :meth:`launch` simulates a range of scenarios into device arrays (what
    :func:`run` chunks over, and what ``bench/gpu_bench.py`` times without host copies)."""

    def __init__(
        self,
        inputs: EngineInputs,
        weights: np.ndarray | None = None,
        block: int = DEFAULT_BLOCK,
        min_blocks: int = DEFAULT_MIN_BLOCKS,
    ) -> None:
        import cupy

        if block % 32 or not 32 <= block <= 1024:
            raise BackendError(f"block must be a multiple of 32 in [32, 1024], got {block}")
        p = inputs.n_projects
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (p,):
                raise ScenarioError(
                    f"weights must have one entry per project ({p}), got shape {weights.shape}"
                )
        self.inputs = inputs
        self.weighted = weights is not None
        self.block = block
        name = "scenario_outcomes_cash" if self.weighted else "scenario_outcomes"
        self.kernel = load_module(block, min_blocks).get_function(name)
        self.shared = _shared_bytes(inputs.horizon, block, self.weighted)
        if self.shared > 46 * 1024:  # 48 KiB without opt-in, static shared memory included
            self.kernel.max_dynamic_shared_size_bytes = self.shared
        buffers = {k: cupy.asarray(v) for k, v in pack_inputs(inputs).items()}
        self._inputs = [buffers[k] for k in ("pf", "pi", "centity", "exposed", "sc", "ic")]
        self._weights = cupy.asarray(weights) if self.weighted else None

    def allocate(self, n: int) -> dict[str, Any]:
        """Device output arrays for ``n`` scenarios (the layout of :class:`EngineResult`)."""
        import cupy

        inp = self.inputs
        p, c, h = inp.n_projects, inp.n_chokepoints, inp.horizon
        return {
            "project": {k: cupy.empty((n, p), dtype=d) for k, d in PROJECT_FIELDS.items()},
            "stress": cupy.empty((n, c), dtype=np.float64),
            "scenario": {k: cupy.empty(n, dtype=d) for k, d in SCENARIO_FIELDS.items()},
            "cash": {k: cupy.empty((n, h), dtype=np.float64) for k in CASH_FIELDS}
            if self.weighted
            else {},
        }

    def launch(self, first: int, n: int, out: dict[str, Any]) -> None:
        """Simulate scenarios ``first .. first + n - 1`` into the first ``n`` rows of ``out``
        (asynchronous: on CuPy's current stream)."""
        args = [
            *self._inputs,
            np.uint32(first),
            np.int32(n),
            *(out["project"][k] for k in PROJECT_FIELDS),
            out["stress"],
            *(out["scenario"][k] for k in SCENARIO_FIELDS),
        ]
        if self.weighted:
            args += [self._weights, *(out["cash"][k] for k in CASH_FIELDS)]
        self.kernel((n,), (self.block,), tuple(args), shared_mem=self.shared)


def run(
    inputs: EngineInputs,
    scenarios: range,
    weights: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int | None = None,
    block: int = DEFAULT_BLOCK,
    min_blocks: int = DEFAULT_MIN_BLOCKS,
) -> EngineResult:
    """Simulate ``scenarios`` on the current CUDA device; the result is on the host.

    ``weights`` (fund dollars per project) adds the portfolio cash per (scenario, quarter);
    ``progress(done, total)`` is called after each chunk; ``chunk`` caps the scenarios per
    launch (default: what the device's free memory allows); ``block`` and ``min_blocks`` pick
    the launch shape (threads per block, a multiple of 32, and the ``__launch_bounds__``
    occupancy target).
    """
    import cupy

    if scenarios.step != 1:
        raise ScenarioError("scenarios must be a contiguous range (step 1)")
    if scenarios.start < 0 or scenarios.stop > SCENARIO_INDICES:
        raise ScenarioError(f"scenario indices must lie in [0, 2^32), got {scenarios}")
    engine = DeviceEngine(inputs, weights, block, min_blocks)
    n, p, c, h = len(scenarios), inputs.n_projects, inputs.n_chokepoints, inputs.horizon
    out = EngineResult(
        project={k: np.empty((n, p), dtype=d) for k, d in PROJECT_FIELDS.items()},
        stress=np.empty((n, c), dtype=np.float64),
        scenario={k: np.empty(n, dtype=d) for k, d in SCENARIO_FIELDS.items()},
        cash={k: np.empty((n, h), dtype=np.float64) for k in CASH_FIELDS}
        if engine.weighted
        else {},
    )
    if n == 0:
        return out
    free, _ = cupy.cuda.runtime.memGetInfo()
    size = min(n, chunk or n, chunk_size(inputs, engine.weighted, free))
    dev = engine.allocate(size)
    done = 0
    for lo in range(0, n, size):
        m = min(size, n - lo)
        engine.launch(scenarios.start + lo, m, dev)
        rows = slice(lo, lo + m)
        for k in PROJECT_FIELDS:
            out.project[k][rows] = dev["project"][k][:m].get()
        out.stress[rows] = dev["stress"][:m].get()
        for k in SCENARIO_FIELDS:
            out.scenario[k][rows] = dev["scenario"][k][:m].get()
        for k in out.cash:
            out.cash[k][rows] = dev["cash"][k][:m].get()
        done += m
        if progress is not None:
            progress(done, n)
    return out
