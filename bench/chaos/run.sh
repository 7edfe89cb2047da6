#!/usr/bin/env bash
# `make chaos`: the gateway's reliability under faults (issue 8), with real processes on loopback:
# ollama-sim nodes on ephemeral ports, one `llmgw serve`, the load generator llmgw_load
# (bench/load/chaos_modes.hpp) and curl. Each scenario is bounded in time, prints one line of
# figures and checks what a user must be able to rely on; the script exits 1 when any check fails.
#
#   1 kill          a node SIGKILLed and restarted under load
#   2 hang          a node that accepts generations and never answers (its /api/version still does)
#   3 idle          an idle lull longer than the nodes' keep-alive (5 s sims; 2 s sims behind a
#                   gateway that keeps pooled connections 60 s; default sims and a 70 s lull)
#   4 close         nodes that close after every stream although they announce keep-alive
#                   (llama.cpp's server)
#   5 break         a node that breaks its streams mid-way
#   6 descriptors   the gateway under `ulimit -n 256` with 1,000 streams opened at once
#   7 slowloris     1,000 connections sending a request head one byte per second, beside normal
#                   traffic
#   8 bodies        32 connections each POSTing a 15 MiB body slowly: the gateway's memory
#
# Usage: bench/chaos/run.sh [BUILD_DIR]   (default build/release: llmgw, ollama-sim,
#                                          bench/llmgw_load)
# Env: CHAOS_QUICK=1   shorter runs and idles (the 70 s lull becomes 8 s);
#      CHAOS_ONLY="1 5" only these scenarios;
#      CHAOS_OUT=DIR    where logs and raw JSON go (default a new /tmp/llmgw-chaos.XXXXXX).
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD_DIR=${1:-build/release}
QUICK=${CHAOS_QUICK:-0}
ONLY=${CHAOS_ONLY:-"1 2 3 4 5 6 7 8"}
OUT_DIR=${CHAOS_OUT:-$(mktemp -d /tmp/llmgw-chaos.XXXXXX)}
LLMGW="$BUILD_DIR/llmgw"
SIM="$BUILD_DIR/ollama-sim"
LOAD="$BUILD_DIR/bench/llmgw_load"
TOOL="python3 bench/chaos/chaos_tool.py"
for binary in "$LLMGW" "$SIM" "$LOAD"; do
  [[ -x "$binary" ]] || {
    echo "chaos: missing $binary (cmake --preset release && cmake --build --preset release" \
      "--target llmgw ollama-sim llmgw_load)" >&2
    exit 2
  }
done
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/summary.txt"
: >"$SUMMARY"
# The load generator holds a thousand connections; the gateway inherits the limit too (scenario 6
# lowers its own).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

quick() { if [[ $QUICK == 1 ]]; then echo "$1"; else echo "$2"; fi; }

# Fast nodes: a generation of 8 tokens takes ~20 ms.
FAST_SIM=(--prefill-tps 100000 --decode-tps 400 --num-parallel 16)
# Every gateway: loopback, 2 workers, no access log, a short drain so stopping is quick.
GW_BASE=(--listen 127.0.0.1 --port 0 --workers 2 --set log.access_log=false
  --set shutdown.drain_ms=2000)
# Health settings for the scenarios that time an ejection and a readmission (defaults: 5 s
# interval, 30 s base ejection).
GW_FAST_HEALTH=(--set health.interval_ms=1000 --set health.base_ejection_ms=5000)
BASE_EJECTION_S=5

PIDS=()       # this scenario's processes, stopped by stop_all
VIOLATIONS=0
cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$1" "$(now)"; }
get() { $TOOL get "$@"; }

# sleep_until EPOCH : sleeps until that time (no-op if past).
sleep_until() {
  local left
  left=$(python3 -c "import sys, time; print(max(0.0, float(sys.argv[1]) - time.time()))" "$1")
  sleep "$left"
}

wait_for_port() {
  local log=$1 pattern=$2
  for _ in $(seq 100); do
    if [[ -f "$log" ]] && [[ $(cat "$log") =~ $pattern ]]; then
      echo "${BASH_REMATCH[1]}"
      return 0
    fi
    sleep 0.1
  done
  echo "chaos: no port in $log after 10 s:" >&2
  cat "$log" >&2
  exit 1
}

# A new log file name in the scenario's directory for each process started (NAME.N.log).
LOG_SEQ=0
new_log() {
  LOG_SEQ=$((LOG_SEQ + 1))
  LOG="$DIR/$1.$LOG_SEQ.log"
}

# start_sim NAME PORT ARGS... : ollama-sim on PORT (0 = ephemeral); sets PORT and SIM_PID.
start_sim() {
  local name=$1 port=$2
  shift 2
  new_log "sim-$name"
  "$SIM" --port "$port" "$@" >"$LOG" 2>&1 &
  SIM_PID=$!
  PIDS+=("$SIM_PID")
  PORT=$(wait_for_port "$LOG" 'listening on http://[^:]*:([0-9]+)')
}

# start_sims N ARGS... : N sims named a, b, c...; sets NODES (--node flags), SIM_PORTS, SIM_PIDS.
start_sims() {
  local count=$1
  shift
  NODES=()
  SIM_PORTS=()
  SIM_PIDS=()
  local names=(a b c d)
  for ((i = 0; i < count; i++)); do
    start_sim "${names[$i]}" 0 --seed "$i" "$@"
    NODES+=(--node "${names[$i]}=http://127.0.0.1:$PORT")
    SIM_PORTS+=("$PORT")
    SIM_PIDS+=("$SIM_PID")
  done
}

# start_gateway [PREFIX...] -- ARGS... : llmgw serve, run through PREFIX (e.g. a ulimit wrapper);
# sets GW (its URL), GW_PID and GW_LOG.
start_gateway() {
  local prefix=()
  while [[ $1 != -- ]]; do prefix+=("$1"); shift; done
  shift
  new_log gateway
  GW_LOG=$LOG
  "${prefix[@]}" "$LLMGW" serve "${GW_BASE[@]}" "$@" >"$GW_LOG" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  GW="http://127.0.0.1:$(wait_for_port "$GW_LOG" 'listening on [^ ]*:([0-9]+)')"
}

start_watch() {
  $TOOL watch "$GW" "$DIR/health.jsonl" &
  WATCH_PID=$!
  PIDS+=("$WATCH_PID")
}

# Total ejections of every node so far, from /health (-1 when the gateway does not answer).
ejections_total() {
  curl -s --max-time 5 "$GW/health" |
    python3 -c 'import json, sys; print(sum(n["ejections"] for n in json.load(sys.stdin)["nodes"]))' \
      2>/dev/null || echo -1
}

# stale_retries : pooled connections found closed by the node and retried on a new one.
stale_retries() {
  $TOOL metric "$GW" llmgw_upstream_errors_total stale_connection 2>/dev/null || echo -1
}

gateway_alive() { kill -0 "$GW_PID" 2>/dev/null; }

stop_all() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

# scenario NUMBER NAME : starts a scenario (its own directory); returns 1 when it is not selected.
scenario() {
  [[ " $ONLY " == *" $1 "* ]] || return 1
  DIR="$OUT_DIR/$1-$2"
  mkdir -p "$DIR"
  SCENARIO="$1 $2"
  PROBLEMS=()
  echo "== $SCENARIO ($(date -u +%T))" >&2
}

# expect DESCRIPTION PYTHON_EXPRESSION : a check of the current scenario.
expect() {
  if [[ $(python3 -c "print(1 if ($2) else 0)") != 1 ]]; then
    PROBLEMS+=("$1")
  fi
}

# report FIGURES : the scenario's one line, with its verdict.
report() {
  local line
  if ((${#PROBLEMS[@]} == 0)); then
    line="[$SCENARIO] $1 => ok"
  else
    line="[$SCENARIO] $1 => FAILED: $(IFS=';'; echo "${PROBLEMS[*]}")"
    VIOLATIONS=$((VIOLATIONS + 1))
  fi
  echo "$line" | tee -a "$SUMMARY"
}

# requests OUT ARGS... : llmgw_load requests against the gateway into OUT.
requests() {
  local out=$1
  shift
  "$LOAD" requests --url "$GW" "$@" >"$out"
}

# The one-line description of a requests result: sent, failed and why.
describe() {
  get "$1" '"sent %d failed %d (statuses %s, no answer %d, error records %d, cut silently %d)" % (d["sent"], d["failed"], ",".join("%s:%d" % kv for kv in sorted(d["statuses"].items())), d["transport_errors"], d["error_records"], d["cut"])'
}

failovers() { get "$1" 'd["routes"].get("failover", 0)'; }

source bench/chaos/scenarios.sh

echo "== llmgw chaos: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$(date -u +%FT%TZ), quick=$QUICK, out $OUT_DIR" | tee -a "$SUMMARY"
started=$(now)
for number in 1 2 3 4 5 6 7 8; do
  "scenario_$number"
done
echo "== done in $(since "$started") s, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "$VIOLATIONS scenario(s) failed; logs in $OUT_DIR" | tee -a "$SUMMARY"
((VIOLATIONS == 0))
