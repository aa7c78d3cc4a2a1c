"""GPU benchmark of the scenario kernel (run by bench/gpu_check.sh on a CUDA box).

For a synthetic catalog of ``--projects`` projects (``portopt.synth``, following the bundled
catalog) and H = 80 quarters, at each size S in ``--sizes``:

* **kernel**: ``DeviceEngine.launch`` of S scenarios into device arrays (no host copy), timed by
  ``cupyx.profiler.benchmark`` (device-synchronised), at each launch shape of ``--shapes``
  (block:min_blocks) at the first size, then at the fastest shape for every size;
* **raw normals**: ``cupy.random`` generating S × P × H float64 normals (in slices of at most
  2^28, the same count the kernel's per-quarter work covers), same timer;
* **NumPy**: the NumPy engine on every host core (one process per core over scenario slices),
  measured on ``--numpy-scenarios`` scenarios and extrapolated linearly to S (stated in the
  table); its outputs of those scenarios are the reference for the equality check of the CuPy
  engine on the same scenarios.

PSQ = project-scenario-quarters = S × P × H. ``--dry-run`` builds the catalog and prints the
plan without CuPy (what CI and a laptop can check).

``--plan`` times the deployment plan's engine columns instead (issue 11): the bundled catalog
expanded to its start options (``bench/bench_engine.py``'s :func:`plan_catalog`, about 630
columns, H = 360), the start options being more projects of one launch. At each S of
``--plan-sizes`` (default the plan's 2,000 optimisation and 100,000 scenarios): the kernel alone
(device arrays, same timer) and ``engine_cupy.run`` end to end (chunks, copies to the host);
equality with the NumPy engine on ``--numpy-scenarios`` scenarios (default 64, one process).
With ``--dry-run`` it builds the catalog and times the NumPy engine on 16 scenarios.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from portopt.catalog import load_catalog
from portopt.config import RunConfig
from portopt.engine import numpy_engine as engine_numpy
from portopt.engine.inputs import EngineInputs, prepare_inputs
from portopt.engine.scenario_set import PROJECT_FIELDS, SCENARIO_FIELDS, EngineResult

_RAW_SLICE = 2**28
_INPUTS: EngineInputs | None = None  # the pool workers' copy (inherited through fork)
_KERNEL_INFO: dict[tuple[int, int], str] = {}  # registers and spills of each launch shape


def synthetic_inputs(projects: int, seed: int = 1) -> EngineInputs:
    """Engine inputs of a synthetic ``projects``-project catalog under the default config."""
    from portopt.synth import write_synth

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_synth(projects, seed, Path(tmp) / "catalog")
        catalog = load_catalog(folder)
    return prepare_inputs(catalog, RunConfig())


def _numpy_slice(bounds: tuple[int, int]) -> tuple[float, EngineResult]:
    t0 = time.perf_counter()
    out = engine_numpy.run(_INPUTS, range(*bounds))
    return time.perf_counter() - t0, out


def numpy_all_cores(inputs: EngineInputs, n: int, processes: int) -> tuple[float, EngineResult]:
    """Wall time of the NumPy engine over scenarios [0, n) on ``processes`` processes, and the
    joined result. Forked before CuPy touches the device."""
    global _INPUTS
    _INPUTS = inputs
    step = -(-n // processes)
    bounds = [(lo, min(n, lo + step)) for lo in range(0, n, step)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        t0 = time.perf_counter()
        parts = pool.map(_numpy_slice, bounds)
        wall = time.perf_counter() - t0
    results = [r for _, r in parts]
    joined = EngineResult(
        project={k: np.concatenate([r.project[k] for r in results]) for k in PROJECT_FIELDS},
        stress=np.concatenate([r.stress for r in results]),
        scenario={k: np.concatenate([r.scenario[k] for r in results]) for k in SCENARIO_FIELDS},
        cash={},
    )
    return wall, joined


def compare(got: EngineResult, ref: EngineResult) -> tuple[bool, str]:
    """(equal, worst field): discrete outputs equal, amounts within 1e-9 relative."""
    worst, name_worst = 0.0, ""
    pairs = {
        **{k: (got.project[k], ref.project[k]) for k in PROJECT_FIELDS},
        "stress": (got.stress, ref.stress),
        **{k: (got.scenario[k], ref.scenario[k]) for k in SCENARIO_FIELDS},
    }
    for name, (a, b) in pairs.items():
        if a.dtype.kind in "iu":
            if not np.array_equal(a, b):
                return False, f"{name}: {int((a != b).sum())} differ"
            continue
        rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))
        if rel > worst:
            worst, name_worst = rel, name
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12):
            return False, f"{name}: max rel {rel:.2e}"
    return True, f"max rel {worst:.1e} ({name_worst})"


def _time(fn, repeat: int) -> float:
    from cupyx.profiler import benchmark

    # max_duration caps the repeats of the slow sizes (1M scenarios) so the script stays short
    result = benchmark(fn, n_repeat=repeat, n_warmup=1, max_duration=10.0)
    return float(np.median(result.gpu_times[0]))


def time_kernel(inputs: EngineInputs, n: int, block: int, min_blocks: int, repeat: int) -> float:
    from portopt.engine.cupy_engine import DeviceEngine

    engine = DeviceEngine(inputs, None, block, min_blocks)
    out = engine.allocate(n)
    seconds = _time(lambda: engine.launch(0, n, out), repeat)
    regs = getattr(engine.kernel, "num_regs", "?")
    local = getattr(engine.kernel, "local_size_bytes", "?")
    _KERNEL_INFO[(block, min_blocks)] = f"{regs} regs, {local} B local"
    return seconds


def time_raw_normals(count: int, repeat: int) -> float:
    import cupy

    rs = cupy.random.RandomState(1)

    def generate() -> None:
        left = count
        while left > 0:
            rs.standard_normal(min(left, _RAW_SLICE), dtype=np.float64)
            left -= _RAW_SLICE

    return _time(generate, repeat)


def card() -> str:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return f"{name} (driver {cupy.cuda.runtime.driverGetVersion()}, cupy {cupy.__version__})"


def plan_inputs() -> EngineInputs:
    """Engine inputs of the plan's start options of the bundled catalog (default config)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_engine import plan_catalog

    return prepare_inputs(plan_catalog(), RunConfig())


def plan_main(args: argparse.Namespace) -> int:
    """The ``--plan`` timings (see the module docstring)."""
    sizes = [int(s) for s in args.plan_sizes.split(",")]
    n_check = args.numpy_scenarios or 64
    t0 = time.perf_counter()
    inputs = plan_inputs()
    p, h = inputs.n_projects, inputs.horizon
    print(
        f"plan catalog: {p} start-option columns of {len(set(inputs.project_entity.tolist()))}"
        f" projects, H = {h} (built in {time.perf_counter() - t0:.1f} s)"
    )
    for n in sizes:
        print(f"plan: S = {n:>9,}  PSQ = {n * p * h:.2e}")
    if args.dry_run:
        t0 = time.perf_counter()
        engine_numpy.run(inputs, range(16))
        seconds = time.perf_counter() - t0
        print(f"dry run: NumPy engine 16 scenarios in {seconds:.2f} s on one thread")
        return 0

    from portopt.engine import cupy_engine as engine_cupy

    t0 = time.perf_counter()
    reference = engine_numpy.run(inputs, range(n_check))
    numpy_s = time.perf_counter() - t0
    device = card()
    equal, detail = compare(engine_cupy.run(inputs, range(n_check)), reference)
    block, min_blocks = (int(x) for x in args.plan_shape.split(":"))
    rows = []
    for n in sizes:
        kernel_s = time_kernel(inputs, n, block, min_blocks, args.repeat)
        engine_cupy.run(inputs, range(n))  # warm: the module is compiled and cached
        t0 = time.perf_counter()
        engine_cupy.run(inputs, range(n))
        run_s = time.perf_counter() - t0
        rows.append(
            {
                "card": device,
                "case": "plan start options",
                "scenarios": n,
                "projects": p,
                "quarters": h,
                "block": block,
                "min_blocks": min_blocks,
                "kernel_s": kernel_s,
                "run_s": run_s,
                "psq_per_s": n * p * h / kernel_s,
                "numpy_1thread_s_per_scenario": numpy_s / n_check,
                "equal": equal,
                "equality": detail,
            }
        )
    print(f"\ncard: {device}")
    print(f"CuPy = NumPy on {n_check} scenarios: {'yes' if equal else 'NO'} ({detail})")
    print(f"NumPy engine, one thread: {numpy_s / n_check * 1e3:.1f} ms per scenario\n")
    print(f"{'scenarios':>10} {'kernel s':>9} {'run s':>8} {'PSQ/s':>9}")
    for r in rows:
        print(
            f"{r['scenarios']:>10,} {r['kernel_s']:>9.4f} {r['run_s']:>8.3f} {r['psq_per_s']:>9.2e}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))
    return 0 if equal else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--shapes", default="128:4,256:2,256:3", help="block:min_blocks list")
    ap.add_argument("--shape-size", type=int, default=100_000, help="S for the shape timings")
    ap.add_argument(
        "--numpy-scenarios",
        type=int,
        default=None,
        help="scenarios for the NumPy timing and the equality check (default 128 per core)",
    )
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--dry-run", action="store_true", help="build the catalog, print the plan")
    ap.add_argument("--plan", action="store_true", help="the plan's start options (docstring)")
    ap.add_argument("--plan-sizes", default="2000,100000")
    ap.add_argument("--plan-shape", default="256:2", help="block:min_blocks of the plan timing")
    args = ap.parse_args(argv)
    if args.plan:
        return plan_main(args)

    sizes = [int(s) for s in args.sizes.split(",")]
    shapes = [tuple(int(x) for x in s.split(":")) for s in args.shapes.split(",")]
    n_check = args.numpy_scenarios or 128 * args.processes

    t0 = time.perf_counter()
    inputs = synthetic_inputs(args.projects)
    p, h = inputs.n_projects, inputs.horizon
    print(
        f"catalog: {p} synthetic projects, {inputs.n_chokepoints} chokepoints, H = {h}"
        f" (built in {time.perf_counter() - t0:.1f} s)"
    )
    for n in sizes:
        out_gb = n * (p * 48 + 8 * inputs.n_chokepoints) / 1e9
        print(f"plan: S = {n:>9,}  PSQ = {n * p * h:.2e}  device outputs {out_gb:.1f} GB")
    print(
        f"plan: shapes {shapes} timed at S = {args.shape_size:,}; NumPy on {args.processes}"
        f" processes over {n_check} scenarios (extrapolated); equality on those scenarios"
    )
    if args.dry_run:
        t0 = time.perf_counter()
        engine_numpy.run(inputs, range(16))
        rate = 16 * p * h / (time.perf_counter() - t0)
        print(f"dry run: NumPy engine {rate:.2e} PSQ/s on one core (16 scenarios)")
        return 0

    wall_np, reference = numpy_all_cores(inputs, n_check, args.processes)
    numpy_rate = n_check * p * h / wall_np

    from portopt.engine import cupy_engine as engine_cupy

    device = card()
    gpu = engine_cupy.run(inputs, range(n_check))
    equal, detail = compare(gpu, reference)

    shape_times = {
        shape: time_kernel(inputs, args.shape_size, *shape, repeat=args.repeat) for shape in shapes
    }
    best = min(shape_times, key=shape_times.get)
    rows = []
    for n in sizes:
        psq = n * p * h
        kernel_s = (
            shape_times[best]
            if n == args.shape_size
            else time_kernel(inputs, n, *best, repeat=args.repeat)
        )
        raw_s = time_raw_normals(psq, args.repeat)
        rows.append(
            {
                "card": device,
                "scenarios": n,
                "projects": p,
                "quarters": h,
                "block": best[0],
                "min_blocks": best[1],
                "kernel_s": kernel_s,
                "psq_per_s": psq / kernel_s,
                "raw_normals_s": raw_s,
                "kernel_over_raw": kernel_s / raw_s,
                "numpy_psq_per_s": numpy_rate,
                "speedup_over_numpy": psq / kernel_s / numpy_rate,
                "equal": equal,
                "equality": detail,
            }
        )

    print(f"\ncard: {device}")
    print(
        f"NumPy engine: {numpy_rate:.3e} PSQ/s on {args.processes} processes, measured on"
        f" {n_check} scenarios in {wall_np:.1f} s (ratios below extrapolate it)"
    )
    print(
        f"launch shapes at S = {args.shape_size:,}: "
        + ", ".join(
            f"{b}:{m} {t * 1e3:.1f} ms ({_KERNEL_INFO.get((b, m), '')})"
            for (b, m), t in shape_times.items()
        )
        + f" -> {best[0]}:{best[1]}"
    )
    print(f"CuPy = NumPy on {n_check} scenarios: {'yes' if equal else 'NO'} ({detail})\n")
    print(
        f"{'card':<24} {'scenarios':>10} {'kernel s':>9} {'PSQ/s':>9} {'raw s':>8}"
        f" {'k/raw':>6} {'vs NumPy':>9} {'equal':>5}"
    )
    for r in rows:
        print(
            f"{device.split(' (')[0][:24]:<24} {r['scenarios']:>10,} {r['kernel_s']:>9.4f}"
            f" {r['psq_per_s']:>9.2e} {r['raw_normals_s']:>8.4f} {r['kernel_over_raw']:>6.2f}"
            f" {r['speedup_over_numpy']:>8.0f}x {'yes' if r['equal'] else 'NO':>5}"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"shapes": {f"{b}:{m}": t for (b, m), t in shape_times.items()}, "rows": rows},
                indent=2,
            )
        )
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
