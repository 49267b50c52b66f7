#!/usr/bin/env bash
# One prepared bench run for a lent GPU machine (the device tool runs it in one call):
#   PEAK_GBS=4800 bash bench/gpu.sh "$OUT"      # 4800 GB/s: an H200's nominal HBM bandwidth
# It uses that machine's own python (jax with CUDA, optax) and gradtx from this checkout, and
# writes OUT/big/latest.* and OUT/trees/latest.*. Each part has a time limit, so that the large
# leaf's figures (the issue's ">= 80% of HBM bandwidth") come back even if the trees run long.
# Here, `PYTHON=.venv/bin/python BENCH_ARGS=--quick bash bench/gpu.sh /tmp/out` checks it runs.
set -euo pipefail
out=${1:?usage: bench/gpu.sh OUT_DIR}
python=${PYTHON:-python3}
read -r -a extra <<<"${BENCH_ARGS:-}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" -c 'import jax, optax; print("jax", jax.__version__, "optax", optax.__version__, jax.devices())'
# A 1 GiB leaf: a memory-bound step of it takes milliseconds on HBM, so the dispatch of each
# timed call is a small part of it.
peak=()
if [[ -n "${PEAK_GBS:-}" ]]; then peak=(--peak-gbs "$PEAK_GBS"); fi
timeout "${BIG_TIMEOUT:-240}" "$python" -m bench --only big --big-params $((256 * 2 ** 20)) "${peak[@]}" \
  --out "$out/big" "${extra[@]}"
timeout "${TREES_TIMEOUT:-300}" "$python" -m bench --only trees,state --out "$out/trees" "${extra[@]}"
