#!/usr/bin/env bash
# The routing-mode figures of bench/RESULTS.md §2, in one run: the default workload, the sweep over
# concurrent sessions and the run with 8 KV slots per sim. Every mode runs side by side inside each
# `llmgw bench` call (fresh sims and gateway per mode and seed).
#
# Usage: bench/run-routing.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR holds llmgw (default build/release); OUT_DIR receives one report per run
#   (default bench/results).
set -euo pipefail

BUILD_DIR=${1:-build/release}
OUT_DIR=${2:-bench/results}
LLMGW="$BUILD_DIR/llmgw"
[[ -x "$LLMGW" ]] || { echo "missing $LLMGW (make release)" >&2; exit 2; }
mkdir -p "$OUT_DIR"

run() {
  local name=$1; shift
  echo "== $name: llmgw bench $*"
  "$LLMGW" bench "$@" -q --out "$OUT_DIR/$name" | tee "$OUT_DIR/$name.txt"
}

date -u '+%Y-%m-%dT%H:%M:%SZ'; uptime
run default --spawn-sims 4
for sessions in 4 16 64 256; do
  run "sweep-$sessions" --spawn-sims 4 --sessions "$sessions" --time-scale 0.1
done
run slots8 --spawn-sims 4 --num-parallel 8
uptime
