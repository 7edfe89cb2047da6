#!/usr/bin/env bash
# Overhead and capacity of the gateway (issue 4), all on loopback, one run:
#   1. short requests (GET /api/version and POST /api/show, each connection with its own
#      X-Session-ID so that every proxy takes its consistent-hash path): direct to one ollama-sim
#      against through the gateway (1 worker) and, when installed, through haproxy and nginx as
#      consistent-hash proxies over the same sim; same load generator; RPS and p50/p99 latency at
#      1 and $CONNECTIONS connections, unpinned and pinned (see PIN below);
#   2. streaming: a sim emitting one NDJSON record every 250 ms, direct against gateway,
#      alternating: added delay at the response head, the first record and every record;
#   3. concurrency: N streams held open through the gateway at once (1k, 5k): errors and the
#      gateway's peak RSS.
#
# Usage: bench/run-overhead.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR holds llmgw, ollama-sim and bench/llmgw_load (default build/bench-release).
#   Env: DURATION_S (3), CONNECTIONS (32), STREAM_REQUESTS (5), OPEN_STREAMS ("1000 5000"),
#        HOLD_S (5), SECTIONS ("1 2 3"),
#        ROUNDS (3): section 1 measures every target once per round, in turn, and reports medians
#          and the median (and range) of the per-round ratios: the machine is shared and noisy;
#        PIN (both | unpinned | pinned; default both): pinned runs the load generator on CPU
#          LOAD_CPU (0) and every server (sim, gateways, haproxy, nginx) on CPU SERVER_CPU (1), so
#          that the direct and the proxied cases split the two cores the same way;
#        LLMGW_BEFORE: another llmgw binary (an older build) measured side by side in section 1.
# haproxy and nginx are optional, never a dependency of the project: when they are not on PATH
# the script says so and skips them. Their configs are generated into OUT_DIR; they run in the
# foreground on free loopback ports and are stopped on exit.
set -euo pipefail

BUILD_DIR=${1:-build/bench-release}
OUT_DIR=${2:-$(mktemp -d /tmp/llmgw-overhead.XXXXXX)}
DURATION_S=${DURATION_S:-3}
CONNECTIONS=${CONNECTIONS:-32}
STREAM_REQUESTS=${STREAM_REQUESTS:-5}
OPEN_STREAMS=${OPEN_STREAMS:-"1000 5000"}
HOLD_S=${HOLD_S:-5}
SECTIONS=${SECTIONS:-"1 2 3"}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-both}
LOAD_CPU=${LOAD_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
LLMGW_BEFORE=${LLMGW_BEFORE:-}

LLMGW="$BUILD_DIR/llmgw"
SIM="$BUILD_DIR/ollama-sim"
LOAD="$BUILD_DIR/bench/llmgw_load"
mkdir -p "$OUT_DIR"
# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"
require_binaries "$LLMGW" "$SIM" "$LOAD" ${LLMGW_BEFORE:+"$LLMGW_BEFORE"}

print_machine
find_proxies

if [[ " $SECTIONS " == *" 1 "* ]]; then
  echo "== 1. short requests, each connection with its own X-Session-ID, ${DURATION_S}s each"
  start_sim sim-short --threads 1
  SIM_SHORT=$PORT
  SERVER_PIDS=("$SERVER_PID")
  TARGETS=("direct=$SIM_SHORT")
  start_gateway gw-short "http://127.0.0.1:$SIM_SHORT"
  TARGETS+=("llmgw=$PORT")
  SERVER_PIDS+=("$GATEWAY_PID")
  if [[ -n "$LLMGW_BEFORE" ]]; then
    GATEWAY_BINARY=$LLMGW_BEFORE start_gateway gw-short-before "http://127.0.0.1:$SIM_SHORT"
    TARGETS+=("llmgw-before=$PORT")
    SERVER_PIDS+=("$GATEWAY_PID")
  fi
  for proxy in "${PROXIES[@]}"; do
    "start_$proxy" "127.0.0.1:$SIM_SHORT"
    TARGETS+=("$proxy=$PORT")
    SERVER_PIDS+=("$SERVER_PID")
  done

  case "$PIN" in
    unpinned) MODES=(unpinned) ;;
    pinned) MODES=(pinned) ;;
    *) MODES=(unpinned pinned) ;;
  esac
  if [[ " ${MODES[*]} " == *" pinned "* ]] &&
    { (( $(nproc) < 2 )) || ! command -v taskset >/dev/null; }; then
    echo "  (pinning needs taskset and 2 CPUs: pinned runs skipped)"
    MODES=(unpinned)
  fi
  for mode in "${MODES[@]}"; do
    if [[ $mode == pinned ]]; then
      pin_servers "$SERVER_CPU" "${SERVER_PIDS[@]}"
      LOAD_RUN=(taskset -c "$LOAD_CPU" "$LOAD")
      echo "  -- pinned: load generator on CPU $LOAD_CPU; sim, gateways and proxies on CPU $SERVER_CPU"
    else
      if command -v taskset >/dev/null; then
        pin_servers "0-$(( $(nproc) - 1 ))" "${SERVER_PIDS[@]}"
      fi
      LOAD_RUN=("$LOAD")
      echo "  -- unpinned: every process may run on every CPU"
    fi
    for workload in "GET 1" "GET $CONNECTIONS" "POST $CONNECTIONS"; do
      read -r method c <<<"$workload"
      if [[ $method == GET ]]; then
        request_args=(--path /api/version)
        what="GET /api/version"
      else
        request_args=(--path /api/show --body '{"model":"llama3.2"}')
        what="POST /api/show"
      fi
      files=()
      for round in $(seq "$ROUNDS"); do
        for target in "${TARGETS[@]}"; do
          name=${target%%=*}
          port=${target#*=}
          file="$OUT_DIR/rps-$mode-$method-c$c-$name-r$round.json"
          "${LOAD_RUN[@]}" rps --url "http://127.0.0.1:$port" "${request_args[@]}" \
            --connections "$c" --duration-s "$DURATION_S" --session-prefix "bench-session-" \
            >"$file"
          files+=("$name=$round=$file")
        done
      done
      python3 - "$mode" "$what" "$c" "${files[@]}" <<'EOF'
import json, statistics, sys
mode, what, c = sys.argv[1:4]
runs = {}  # name -> round -> result
for arg in sys.argv[4:]:
    name, rnd, path = arg.split("=", 2)
    runs.setdefault(name, {})[rnd] = json.load(open(path))
rounds = sorted(runs["direct"])
med = statistics.median
def m(name, key):
    return med([runs[name][r][key] if key == "rps" else runs[name][r]["latency_us"][key]
                for r in rounds])
def ratio(a, b):  # per round (measured minutes apart at most), then the median and the range
    values = [runs[a][r]["rps"] / runs[b][r]["rps"] for r in rounds]
    return med(values), min(values), max(values)
print(f"  [{mode}] {what}, {c} connection(s), median of {len(rounds)} rounds:")
for name in runs:
    errors = sum(runs[name][r]["errors"] for r in rounds)
    line = (f"    {name:<13} {m(name, 'rps'):9.0f} req/s  p50 {m(name, 'p50'):7.0f} us"
            f"  p99 {m(name, 'p99'):7.0f} us  errors {errors}")
    if name != "direct":
        r, lo, hi = ratio(name, "direct")
        line += (f"  | {r:.2f}x direct ({lo:.2f}-{hi:.2f}),"
                 f" added p50 {m(name, 'p50') - m('direct', 'p50'):+.0f} us"
                 f" p99 {m(name, 'p99') - m('direct', 'p99'):+.0f} us")
    print(line)
others = [n for n in runs if n not in ("direct", "llmgw")]
if others:
    print("    llmgw RPS against " + ", ".join(
        "{} {:.2f}x ({:.2f}-{:.2f})".format(n, *ratio("llmgw", n)) for n in others))
EOF
    done
  done
fi

if [[ " $SECTIONS " == *" 2 "* ]]; then
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

fi

if [[ " $SECTIONS " == *" 3 "* ]]; then
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
fi
echo "== raw results in $OUT_DIR"
