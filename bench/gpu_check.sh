#!/usr/bin/env bash
# Every GPU check of portopt, for a CUDA box: the card, the gpu-marked tests, the kernel
# benchmark (bench/gpu_bench.py: kernel vs NumPy on all cores vs raw cupy.random normals at 10k,
# 100k and 1M scenarios x 200 projects x 80 quarters, 2-3 launch shapes, cross-backend equality),
# the deployment plan's start options as more columns of one launch (bench/gpu_bench.py --plan:
# the bundled catalog expanded to ~630 columns, 2,000 and 100,000 scenarios, kernel and
# engine_cupy.run, equality with NumPy) and, when the CLI has it, `portopt run
# configs/gpu_large.yaml` end to end.
#
# Installs nothing: run it where `pip install -e .[cuda12]` (or [cuda13]) was done, with .venv
# or $PYTHON. Each stage has a time limit so the whole script ends within 10 minutes (typically
# about 8 on an H100). Results go to $OUT (default bench/out): gpu_check.log, gpu_bench.json,
# gpu_plan.json.
#   bash bench/gpu_check.sh                 everything
#   GPU_CHECK_SKIP_RUN=1 bash bench/gpu_check.sh   without the end-to-end run
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 1
if [[ -n "${PYTHON:-}" ]]; then
    py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    py=.venv/bin/python
else
    py=python3
fi
out="${OUT:-bench/out}"
mkdir -p "$out"
log="$out/gpu_check.log"
: >"$log"

say() { printf '%s\n' "$*" | tee -a "$log"; }

if ! "$py" -c 'import cupy' >/dev/null 2>&1; then
    say "gpu_check: '$py' cannot import cupy. Install the CUDA extra offline first, e.g."
    say "  $py -m pip install -e '.[cuda12]'   (or '.[cuda13]' for a CUDA 13 driver)"
    say "or point PYTHON at an interpreter that has it."
    exit 1
fi
if ! "$py" -c 'import cupy, sys; sys.exit(cupy.cuda.runtime.getDeviceCount() < 1)' >/dev/null 2>&1
then
    say "gpu_check: cupy imports but sees no CUDA device; nothing to check."
    exit 1
fi

say "== card"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader \
        2>&1 | tee -a "$log"
else
    say "nvidia-smi not found"
fi
"$py" -c 'import cupy; print("cupy", cupy.__version__, "CUDA runtime",
cupy.cuda.runtime.runtimeGetVersion())' 2>&1 | tee -a "$log"

status=0
required=1  # a failing stage fails the script unless required=0 (the end-to-end timing)
stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, log it, remember failures
    local name="$1" limit="$2"
    shift 2
    say ""
    say "== $name (limit ${limit}s)"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    say "-- $name: exit $rc in $((SECONDS - t0)) s"
    if [[ $rc -ne 0 && $required -eq 1 ]]; then status=1; fi
}

stage "pytest -m gpu" 150 "$py" -m pytest -m gpu tests/engine/test_gpu.py -q -p no:cacheprovider -rs
stage "kernel benchmark" 240 "$py" bench/gpu_bench.py --json "$out/gpu_bench.json"
stage "plan start options (bundled catalog x its construction starts)" 90 \
    "$py" bench/gpu_bench.py --plan --json "$out/gpu_plan.json"

if [[ -n "${GPU_CHECK_SKIP_RUN:-}" ]]; then
    say ""
    say "== portopt run configs/gpu_large.yaml: skipped (GPU_CHECK_SKIP_RUN set)"
elif [[ ! -f configs/gpu_large.yaml ]] || ! "$py" -c 'import portopt.cli.run' >/dev/null 2>&1
then
    say ""
    say "== portopt run configs/gpu_large.yaml: skipped (no config or no run command)"
else
    required=0  # a timing: the MILP on 50,000 scenarios may outlast its limit on some boxes
    stage "portopt run configs/gpu_large.yaml (end to end)" 120 \
        "$py" -m portopt run configs/gpu_large.yaml --out "$out/gpu_large" \
        --set solver.time_limit_s=45
fi

say ""
say "gpu_check: $([[ $status -eq 0 ]] && echo 'all stages passed' || echo 'SOME STAGES FAILED')"
say "log: $log"
exit "$status"
