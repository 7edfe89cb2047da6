#!/usr/bin/env bash
# Runs one libFuzzer target for FUZZ_SECONDS (default 10) over its committed seed corpus.
#   run-fuzzer.sh <fuzzer binary> <seed corpus dir> <work dir>
# New interesting inputs go to <work dir>/corpus (the seeds are only read), a crashing input to
# <work dir>/artifacts/. Exit status: 0 when nothing was found, libFuzzer's non-zero otherwise.
set -euo pipefail
fuzzer=$1
seeds=$2
work=$3
mkdir -p "$work/corpus" "$work/artifacts"
# `make test` (no FUZZ_SECONDS): a fixed seed and a fixed number of inputs, so every run of the
# suite tries the same inputs and a red CI is a finding that reproduces, not the luck of a timer.
# `make fuzz` (FUZZ_SECONDS set): random seeds for that long.
if [[ -n ${FUZZ_SECONDS:-} ]]; then
  limits=(-max_total_time="$FUZZ_SECONDS")
else
  limits=(-seed=1 -runs="${FUZZ_RUNS:-10000}" -max_total_time=120)
fi
# -timeout: one input taking this long is a finding (a hang); -rss_limit_mb: so is this much memory.
exec "$fuzzer" "${limits[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"
