#!/usr/bin/env bash
# Overhead and capacity of the gateway (issue 4), all on loopback, one run:
#   1. short requests (GET /api/version): direct to one ollama-sim against through the gateway
#      (1 worker), same load generator: RPS and p50/p99 latency, 1 and $CONNECTIONS connections;
#   2. streaming: a sim emitting one NDJSON record every 250 ms, direct against gateway,
#      alternating: added delay at the response head, the first record and every record;
#   3. concurrency: N streams held open through the gateway at once (1k, 5k): errors and the
#      gateway's peak RSS.
# haproxy / nginx are compared when installed (they are not on the project machine: say so).
#
# Usage: bench/run-overhead.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR holds llmgw, ollama-sim and bench/llmgw_load (default build/bench-release).
#   Env: DURATION_S (5), CONNECTIONS (32), STREAM_REQUESTS (5), OPEN_STREAMS ("1000 5000"),
#        HOLD_S (5).
set -euo pipefail

BUILD_DIR=${1:-build/bench-release}
OUT_DIR=${2:-$(mktemp -d /tmp/llmgw-overhead.XXXXXX)}
DURATION_S=${DURATION_S:-5}
CONNECTIONS=${CONNECTIONS:-32}
STREAM_REQUESTS=${STREAM_REQUESTS:-5}
OPEN_STREAMS=${OPEN_STREAMS:-"1000 5000"}
HOLD_S=${HOLD_S:-5}

LLMGW="$BUILD_DIR/llmgw"
SIM="$BUILD_DIR/ollama-sim"
LOAD="$BUILD_DIR/bench/llmgw_load"
for binary in "$LLMGW" "$SIM" "$LOAD"; do
  [[ -x "$binary" ]] || { echo "missing $binary (build llmgw ollama-sim llmgw_load)" >&2; exit 2; }
done
mkdir -p "$OUT_DIR"

# Each stream holds a client, a gateway-in, a gateway-out and a sim descriptor.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# start_sim NAME ARGS... : starts ollama-sim on an ephemeral port; sets PORT.
start_sim() {
  local name=$1; shift
  "$SIM" --port 0 "$@" >"$OUT_DIR/$name.log" 2>&1 &
  PIDS+=($!)
  PORT=$(wait_for_port "$OUT_DIR/$name.log" 'listening on http://[^:]*:([0-9]+)')
}

# start_gateway NAME NODE_URL... : llmgw serve with one worker; sets PORT and GATEWAY_PID.
start_gateway() {
  local name=$1; shift
  local node_flags=()
  for node in "$@"; do node_flags+=(--node "$node"); done
  "$LLMGW" serve --port 0 --listen 127.0.0.1 --workers 1 "${node_flags[@]}" --log-level info \
    --set log.access_log=false >"$OUT_DIR/$name.log" 2>&1 &
  GATEWAY_PID=$!
  PIDS+=($GATEWAY_PID)
  PORT=$(wait_for_port "$OUT_DIR/$name.log" 'listening on [^ ]*:([0-9]+)')
}

wait_for_port() {
  local log=$1 pattern=$2
  for _ in $(seq 100); do
    if [[ -f "$log" ]] && [[ $(cat "$log") =~ $pattern ]]; then
      echo "${BASH_REMATCH[1]}"; return 0
    fi
    sleep 0.1
  done
  echo "no port in $log after 10 s:" >&2; cat "$log" >&2; exit 1
}


echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%FT%TZ)"
for proxy in haproxy nginx; do
  command -v "$proxy" >/dev/null || echo "== $proxy: not installed, comparison skipped"
done

echo "== 1. short requests (GET /api/version), ${DURATION_S}s each"
start_sim sim-short --threads 1; SIM_SHORT=$PORT
start_gateway gw-short "http://127.0.0.1:$SIM_SHORT"; GW_SHORT=$PORT
for c in 1 "$CONNECTIONS"; do
  "$LOAD" rps --url "http://127.0.0.1:$SIM_SHORT" --connections "$c" --duration-s "$DURATION_S" \
    >"$OUT_DIR/rps-direct-c$c.json"
  "$LOAD" rps --url "http://127.0.0.1:$GW_SHORT" --connections "$c" --duration-s "$DURATION_S" \
    >"$OUT_DIR/rps-gateway-c$c.json"
  python3 - "$OUT_DIR/rps-direct-c$c.json" "$OUT_DIR/rps-gateway-c$c.json" "$c" <<'EOF'
import json, sys
d, g = (json.load(open(p)) for p in sys.argv[1:3])
print(f"  connections {sys.argv[3]:>3}: direct {d['rps']:9.0f} req/s p50 {d['latency_us']['p50']:7.0f} us"
      f" p99 {d['latency_us']['p99']:7.0f} us | gateway {g['rps']:9.0f} req/s"
      f" p50 {g['latency_us']['p50']:7.0f} us p99 {g['latency_us']['p99']:7.0f} us"
      f" | ratio {g['rps'] / d['rps']:.2f}x, added p50 {g['latency_us']['p50'] - d['latency_us']['p50']:.0f} us"
      f" p99 {g['latency_us']['p99'] - d['latency_us']['p99']:.0f} us"
      f" | errors {d['errors']}/{g['errors']}")
EOF
done

echo "== 2. streaming, one record every 250 ms (decode 4 tokens/s), $STREAM_REQUESTS requests each"
start_sim sim-stream --decode-tps 4 --prefill-tps 1000000 --min-output-tokens 6 \
  --max-output-tokens 6; SIM_STREAM=$PORT
start_gateway gw-stream "http://127.0.0.1:$SIM_STREAM"; GW_STREAM=$PORT
"$LOAD" stream --url-a "http://127.0.0.1:$SIM_STREAM" --url-b "http://127.0.0.1:$GW_STREAM" \
  --requests "$STREAM_REQUESTS" --tokens 6 >"$OUT_DIR/stream.json"
python3 - "$OUT_DIR/stream.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"  added at head {s['added_head_us']:.0f} us, at first record {s['added_first_record_us']:.0f} us,"
      f" per record p50 {s['added_per_record_us']['p50']:.0f} us max-ish p99 {s['added_per_record_us']['p99']:.0f} us;"
      f" record gap direct p50 {s['a']['record_gap_us']['p50']:.0f} us gateway {s['b']['record_gap_us']['p50']:.0f} us;"
      f" errors {s['a']['errors']}/{s['b']['errors']}")
EOF

echo "== 3. concurrent open streams through the gateway (hold ${HOLD_S}s)"
# Two sims behind the gateway (a sim has at most 4096 slots); the gateway round-robins them.
for n in $OPEN_STREAMS; do
  slots=$((n / 2 + 100)); (( slots > 4096 )) && slots=4096
  open_nodes=()
  for i in 1 2; do
    start_sim "sim-open-$n-$i" --num-parallel "$slots" --queue-size 100 --decode-tps 1 \
      --prefill-tps 1000000 --min-output-tokens 1000 --max-output-tokens 1000
    open_nodes+=("http://127.0.0.1:$PORT")
  done
  start_gateway "gw-open-$n" "${open_nodes[@]}"
  "$LOAD" open --url "http://127.0.0.1:$PORT" --streams "$n" --hold-s "$HOLD_S" \
    --pid "$GATEWAY_PID" >"$OUT_DIR/open-$n.json"
  python3 - "$OUT_DIR/open-$n.json" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
print(f"  {o['streams']:>5} streams: opened {o['opened']}, errors {o['errors']},"
      f" all closed after {o['all_closed_after_s']:.1f} s, gateway RSS idle {o['server_rss_idle_mib']:.1f} MiB"
      f" peak {o['server_rss_peak_mib']:.1f} MiB")
EOF
done
echo "== raw results in $OUT_DIR"
