#!/usr/bin/env bash
# Everything a GPU can tell us in one short run: every benchmark (quick forms, both sides
# of each comparison on the same card), then the fast tests with JAX on the GPU, all the
# figures in one JSON.
#
#   bash benchmarks/gpu.sh [OUT_DIR]     # default runs/gpu; under 10 min on one H200
#
# Writes OUT_DIR/figures.json ({benchmark: {figure: value}}, plus "gpu.sh": each step's
# exit code and seconds, and the card) and OUT_DIR/gpu.log (every step's output). Each
# step has its own time limit, so one that hangs costs only its own figures. Needs jax with
# CUDA, flax, optax, chex, numpy, scikit-learn; torch (optional) for the PyTorch columns.
# Set PYTHON to choose the interpreter (default python3); wdjax runs from this checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/gpu}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONPATH="$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
export WDJAX_BENCH_JSON="$out/figures.json" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
# jax and torch share the card: no up-front grab of 75% of its memory by jax.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
[ -n "${GPU_SH_ONLY:-}" ] || rm -f "$WDJAX_BENCH_JSON" "$out/gpu.log"
scale=${GPU_SH_SCALE:-1}   # multiply every step's time limit (e.g. 2 on a slower card)
only=${GPU_SH_ONLY:-}      # e.g. "bench_core bench_lm": run only these steps

note() {  # note KEY JSON: one figure of this script into figures.json
  "$py" -c "import json,sys; from _bench import record; record('gpu.sh', sys.argv[1], json.loads(sys.argv[2]))" "$1" "$2"
}

step() {  # step NAME SECONDS CMD...: run, log, record the exit code and the wall time (ms)
  local name=$1 limit=$(( $2 * scale )) t0 rc
  shift 2
  if [ -n "$only" ] && [[ " $only " != *" $name "* ]]; then return 0; fi
  echo "== $name (limit ${limit} s): $*" | tee -a "$out/gpu.log"
  t0=$(date +%s%N)
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$out/gpu.log" | tail -n "${TAIL:-25}"
  rc=${PIPESTATUS[0]}
  note "$name" "{\"rc\": $rc, \"ms\": $(( ($(date +%s%N) - t0) / 1000000 ))}"
  echo "-- $name: rc $rc" | tee -a "$out/gpu.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem \
  --format=csv,noheader 2>&1 | tee -a "$out/gpu.log"
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
note card "\"${card:-none}\""
step versions 15 "$py" -c "import jax, flax, optax, numpy, sklearn; print(jax.devices(), jax.default_backend()); print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__, 'sklearn', sklearn.__version__)
try:
  import torch; print('torch', torch.__version__, torch.cuda.is_available())
except ImportError: print('no torch')
assert jax.default_backend() == 'gpu', 'JAX sees no GPU: the figures below are CPU figures'"

# The sweeps first (run W: the engine's outputs to pinned host memory on a GPU, measured
# against device memory), the tests next, then the other benchmarks, the path last (its
# solvers run on the host CPU by default; diabetes only, with its GPU rows). The limits add
# up to 515 s, 585 s with each step's 10 s to die, so the script fits one 10-minute device
# call. On an H200 (2026-11-28, runs U-W) versions, bench_sweep, the tests, bench_core,
# bench_lm and bench_track took 10-13, 89-107 (107 with unrolled steps by default in run
# W), 94-106, 148 (run W, the default fused configuration only), 34 and 20 s (run U; in
# run W, with unrolled steps by default, they ran out of time compiling); bench_path ran
# past 60 s on diabetes and part of the synthetic problem, past 25 s before its first row
# in run W: it gets the time the others do not need.
step bench_sweep 110 "$py" benchmarks/bench_sweep.py --quick --repeats 3
# The math and semantics tests, with JAX on the GPU (the suite's fast core, and the fused
# AdamW kernel compiled by Triton against optax's step); 4 workers
# when pytest-xdist is there (each compiles its own functions).
xdist=$("$py" -c "import xdist" 2>/dev/null && echo "-n 4")
TAIL=8 step tests 120 "$py" -m pytest -q --maxfail=20 -p no:cacheprovider -p no:benchmark -m "not slow" $xdist \
  tests/test_penalties.py tests/test_prox.py tests/test_transforms.py tests/test_pinned.py \
  tests/test_variants.py tests/test_reference.py tests/test_constrained.py tests/test_sweep.py \
  tests/test_train.py tests/test_kernels.py
step bench_core 160 "$py" benchmarks/bench_core.py --quick --no-variants --fused-configs ""
step bench_lm 40 "$py" benchmarks/bench_lm.py --quick
step bench_track 25 "$py" benchmarks/bench_track.py --quick --rounds 2
step bench_path 45 "$py" benchmarks/bench_path.py --problems diabetes --repeats 1
echo "figures: $WDJAX_BENCH_JSON" | tee -a "$out/gpu.log"
