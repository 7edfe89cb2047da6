#!/usr/bin/env bash
# llmgw against haproxy and nginx on short requests, as issue 14 states the comparison: wrk with one
# thread, 32 and 64 keep-alive connections, `GET /api/version` with 1,000 session ids
# (X-Session-ID, bench/wrk-sessions.lua) over three ollama-sim nodes, and `POST /api/show` the same
# way. llmgw answers /api/version for the fleet (the lowest version of the nodes, from what their
# health probes read, docs/DESIGN.md "Fleet endpoints"), so there it asks no node where the proxies
# relay to one; /api/show it relays to the session's node like they do. llmgw with 1 worker against
# haproxy `nbthread 1` (`balance hdr(X-Session-ID)`, `hash-type consistent`) and nginx with one
# worker (`hash $http_x_session_id consistent`), then 2 workers against `nbthread 2` and 2 nginx
# workers. Targets are interleaved (A B C A B C ...) over ROUNDS rounds; each round gives req/s and
# p99 of every target, and the summary the medians and the per-round ratio to haproxy. Each run
# also reads the proxy's CPU time (user + system of the process and its children, /proc) and
# reports it per request: on a shared machine req/s moves with the neighbours' load, the CPU a
# request costs much less.
#
# Usage: bench/run-proxies.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR holds llmgw and ollama-sim (default build/release).
#   Env: DURATION_S (5), ROUNDS (5), CONNECTIONS ("32 64"), WORKERS ("1 2"), SESSIONS (1000),
#        WORKLOADS ("version show"),
#        LLMGW_BEFORE: another llmgw binary (an older build) measured in the same rounds.
# Needs wrk; haproxy and nginx are compared when installed (scripts/install-deps --bench).
set -euo pipefail

BUILD_DIR=${1:-build/release}
OUT_DIR=${2:-$(mktemp -d /tmp/llmgw-proxies.XXXXXX)}
DURATION_S=${DURATION_S:-5}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-"32 64"}
WORKERS=${WORKERS:-"1 2"}
SESSIONS=${SESSIONS:-1000}
WORKLOADS=${WORKLOADS:-"version show"}
LLMGW_BEFORE=${LLMGW_BEFORE:-}
LLMGW="$BUILD_DIR/llmgw"
SIM="$BUILD_DIR/ollama-sim"
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)

command -v wrk >/dev/null || { echo "wrk is not installed (scripts/install-deps --bench)" >&2; exit 2; }
mkdir -p "$OUT_DIR"
# shellcheck source=bench/servers.sh
source "$SCRIPT_DIR/servers.sh"
require_binaries "$LLMGW" "$SIM" ${LLMGW_BEFORE:+"$LLMGW_BEFORE"}

print_machine
echo "== wrk: $(wrk -v 2>&1 | head -1)"
find_proxies

NODES=()
for i in 1 2 3; do
  start_sim "sim-$i" --threads 1
  NODES+=("127.0.0.1:$PORT")
done
NODE_URLS=("${NODES[@]/#/http://}")

for workers in $WORKERS; do
  TARGETS=()
  GATEWAY_WORKERS=$workers start_gateway "llmgw-w$workers" "${NODE_URLS[@]}"
  TARGETS+=("llmgw=$PORT=$GATEWAY_PID")
  if [[ -n "$LLMGW_BEFORE" ]]; then
    GATEWAY_WORKERS=$workers GATEWAY_BINARY=$LLMGW_BEFORE start_gateway "llmgw-before-w$workers" \
      "${NODE_URLS[@]}"
    TARGETS+=("llmgw-before=$PORT=$GATEWAY_PID")
  fi
  STARTED=()
  for proxy in "${PROXIES[@]}"; do
    if [[ $proxy == haproxy ]]; then start_haproxy --threads "$workers" "${NODES[@]}"; fi
    if [[ $proxy == nginx ]]; then start_nginx --workers "$workers" "${NODES[@]}"; fi
    TARGETS+=("$proxy=$PORT=$SERVER_PID")
    STARTED+=("$SERVER_PID")
  done
  STARTED+=("$GATEWAY_PID")

  for workload in $WORKLOADS; do
  if [[ $workload == version ]]; then
    export WRK_METHOD=GET WRK_PATH=/api/version; unset WRK_BODY
  else
    export WRK_METHOD=POST WRK_PATH=/api/show WRK_BODY='{"model":"llama3.2"}'
  fi
  for c in $CONNECTIONS; do
    files=()
    for round in $(seq "$ROUNDS"); do
      for target in "${TARGETS[@]}"; do
        IFS== read -r name port pid <<<"$target"
        file="$OUT_DIR/$workload-w$workers-c$c-$name-r$round.json"
        ticks_before=$(cpu_ticks "$pid")
        WRK_SESSIONS=$SESSIONS wrk -t1 -c"$c" -d"${DURATION_S}s" \
          -s "$SCRIPT_DIR/wrk-sessions.lua" "http://127.0.0.1:$port" >"$OUT_DIR/wrk.out"
        ticks=$(( $(cpu_ticks "$pid") - ticks_before ))
        grep '^{' "$OUT_DIR/wrk.out" | tail -1 | sed "s/^{/{\"cpu_ticks\": $ticks, /" >"$file"
        files+=("$name=$round=$file")
      done
    done
    python3 - "$workers" "$c" "$WRK_METHOD $WRK_PATH" "$(cut -d' ' -f1-3 /proc/loadavg)" \
      "$(getconf CLK_TCK)" "${files[@]}" <<'PY'
import json, statistics, sys
workers, c, what, load, hz = sys.argv[1:6]
runs = {}
for arg in sys.argv[6:]:
    name, rnd, path = arg.split("=", 2)
    runs.setdefault(name, {})[int(rnd)] = json.load(open(path))
rounds = sorted(next(iter(runs.values())))
med = statistics.median
def cpu_us(run):  # the proxy's CPU time (user + system, every thread and worker) per request
    return run["cpu_ticks"] * 1e6 / int(hz) / max(run["requests"], 1)
print(f"  {workers} worker(s)/thread(s), {c} connections, {what}, "
      f"{len(rounds)} rounds (load average at the end {load}):")
print("    per round req/s (p99 ms): " + "; ".join(
    f"r{r} " + " ".join(f"{n} {runs[n][r]['rps']:.0f} ({runs[n][r]['p99_us'] / 1000:.2f})"
                        for n in runs) for r in rounds))
for name in runs:
    errors = sum(runs[name][r]["errors"] + runs[name][r]["non_2xx"] for r in rounds)
    line = (f"    {name:<13} {med([runs[name][r]['rps'] for r in rounds]):8.0f} req/s"
            f"  p50 {med([runs[name][r]['p50_us'] for r in rounds]) / 1000:5.2f} ms"
            f"  p99 {med([runs[name][r]['p99_us'] for r in rounds]) / 1000:5.2f} ms"
            f"  CPU {med([cpu_us(runs[name][r]) for r in rounds]):5.1f} us/req  errors {errors}")
    if name != "llmgw":
        ratios = [runs["llmgw"][r]["rps"] / runs[name][r]["rps"] for r in rounds]
        p99s = [runs["llmgw"][r]["p99_us"] / runs[name][r]["p99_us"] for r in rounds]
        cpus = [cpu_us(runs["llmgw"][r]) / cpu_us(runs[name][r]) for r in rounds]
        line += (f"  | llmgw {med(ratios):.2f}x req/s ({min(ratios):.2f}-{max(ratios):.2f}),"
                 f" p99 {med(p99s):.2f}x, CPU/req {med(cpus):.2f}x")
    print(line)
PY
  done
  done
  for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
done
echo "== raw results in $OUT_DIR"
