#!/usr/bin/env bash
# One prepared bench run for a lent GPU machine (the device tool runs it in one call):
#   PEAK_GBS=4800 bash bench/gpu.sh "$OUT"      # 4800 GB/s: an H200's nominal HBM bandwidth
# It uses that machine's own python (jax with CUDA, optax) and gradtx from this checkout, and
# writes OUT/big/latest.*, OUT/state/latest.* and OUT/trees/latest.* (quick.* under --quick).
# Each part runs in its own process under its own time limit, and a part that fails or runs out
# of time is reported and skipped, so the large leaf's figures (the issue's ">= 80% of HBM
# bandwidth") come back even if the trees run long. The limits add up to under 600 s.
# Here, `PYTHON=.venv/bin/python BENCH_ARGS=--quick bash bench/gpu.sh /tmp/out` checks it runs.
set -uo pipefail
out=$(mkdir -p "${1:?usage: bench/gpu.sh OUT_DIR}" && cd "$1" && pwd)
cd "$(dirname "$0")/.." || exit 1 # the checkout's root: gradtx and bench are imported from here
python=${PYTHON:-python3}
extra=()
if [[ -n "${BENCH_ARGS:-}" ]]; then read -r -a extra <<<"$BENCH_ARGS"; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
failed=0

part() { # part NAME LIMIT_S ARGS...: one bench process; a failure is reported, not fatal
  local name=$1 limit=$2
  shift 2
  timeout "$limit" "$python" "$@"
  local rc=$?
  if ((rc != 0)); then
    echo "bench/gpu.sh: part '$name' failed (rc=$rc$( ((rc == 124)) && echo ", over its ${limit} s limit"))"
    failed=1
  fi
}

part probe "${PROBE_TIMEOUT:-60}" -c 'import jax, optax; print("jax", jax.__version__, "optax", optax.__version__, jax.devices())'
# A 1 GiB leaf: a memory-bound step of it takes milliseconds on HBM, so the dispatch of each
# timed call is a small part of it.
peak=()
if [[ -n "${PEAK_GBS:-}" ]]; then peak=(--peak-gbs "$PEAK_GBS"); fi
part big "${BIG_TIMEOUT:-220}" -m bench --only big --big-params $((256 * 2 ** 20)) ${peak[@]+"${peak[@]}"} \
  --out "$out/big" ${extra[@]+"${extra[@]}"}
part state "${STATE_TIMEOUT:-40}" -m bench --only state --out "$out/state" ${extra[@]+"${extra[@]}"}
part trees "${TREES_TIMEOUT:-260}" -m bench --only trees --out "$out/trees" ${extra[@]+"${extra[@]}"}
exit "$failed"
