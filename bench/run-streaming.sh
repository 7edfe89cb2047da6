#!/usr/bin/env bash
# Streaming through llmgw against haproxy and nginx (issue 14), all on loopback:
#   1. throughput: one ollama-sim with --ignore-eos --time-scale 0 writes the records of a
#      num_predict=RECORDS reply as fast as it can; curl reads the stream directly and through
#      each proxy (1 worker / nbthread 1 / 1 nginx worker), interleaved over ROUNDS rounds:
#      records/s per round. The proxies run on CPU PROXY_CPU, the sim and curl on the other one,
#      so "records/s on one core" is the proxy's;
#   2. delay per record at RATE records/s (a sim decoding RATE tokens/s): llmgw_load stream,
#      direct and through the gateway alternating, DELAY_REQUESTS requests of DELAY_TOKENS records:
#      the added delay per record (p50 and p99 over record indexes); then the same through
#      haproxy and nginx when installed, so the machine's own floor shows beside llmgw's figure.
#   haproxy runs twice: as installed, and with `option http-no-delay` ("haproxy-nd"): by default it
#   sends with MSG_MORE while more of a response is due, which batches records (more records/s,
#   and records held up to 200 ms: +108 ms per record at 50 records/s in bench/RESULTS.md §12.8).
#
# Usage: bench/run-streaming.sh [BUILD_DIR] [OUT_DIR]
#   Env: RECORDS (200000), ROUNDS (5), PROXY_CPU (1), RATE (50), DELAY_REQUESTS (10),
#        DELAY_TOKENS (100), LLMGW_BEFORE (another llmgw, measured in the same rounds).
set -euo pipefail

BUILD_DIR=${1:-build/release}
OUT_DIR=${2:-$(mktemp -d /tmp/llmgw-streaming.XXXXXX)}
RECORDS=${RECORDS:-200000}
ROUNDS=${ROUNDS:-5}
PROXY_CPU=${PROXY_CPU:-1}
RATE=${RATE:-50}
DELAY_REQUESTS=${DELAY_REQUESTS:-10}
DELAY_TOKENS=${DELAY_TOKENS:-100}
LLMGW_BEFORE=${LLMGW_BEFORE:-}
LLMGW="$BUILD_DIR/llmgw"
SIM="$BUILD_DIR/ollama-sim"
LOAD="$BUILD_DIR/bench/llmgw_load"
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT_DIR"
OTHER_CPU=$(( PROXY_CPU == 0 ? 1 : 0 ))
# shellcheck source=bench/servers.sh
source "$SCRIPT_DIR/servers.sh"
require_binaries "$LLMGW" "$SIM" "$LOAD" ${LLMGW_BEFORE:+"$LLMGW_BEFORE"}

print_machine
find_proxies

echo "== 1. throughput: $RECORDS records as fast as the sim writes them, ${ROUNDS} rounds;" \
  "proxies on CPU $PROXY_CPU, sim and curl on CPU $OTHER_CPU"
start_sim sim-fast --threads 1 --ignore-eos --time-scale 0 --context-length 1000000
SIM_FAST=$PORT
pin_servers "$OTHER_CPU" "$SERVER_PID"
TARGETS=("direct=$SIM_FAST")
start_gateway llmgw-stream "http://127.0.0.1:$SIM_FAST"
pin_servers "$PROXY_CPU" "$GATEWAY_PID"
TARGETS+=("llmgw=$PORT")
if [[ -n "$LLMGW_BEFORE" ]]; then
  GATEWAY_BINARY=$LLMGW_BEFORE start_gateway llmgw-before-stream "http://127.0.0.1:$SIM_FAST"
  pin_servers "$PROXY_CPU" "$GATEWAY_PID"
  TARGETS+=("llmgw-before=$PORT")
fi
for proxy in "${PROXIES[@]}"; do
  "start_$proxy" "127.0.0.1:$SIM_FAST"
  pin_servers "$PROXY_CPU" "$SERVER_PID"
  TARGETS+=("$proxy=$PORT")
  if [[ $proxy == haproxy ]]; then  # and as a streaming deployment configures it
    start_haproxy --no-delay "127.0.0.1:$SIM_FAST"
    pin_servers "$PROXY_CPU" "$SERVER_PID"
    TARGETS+=("haproxy-nd=$PORT")
  fi
done
body="{\"model\":\"llama3.2\",\"prompt\":\"go\",\"stream\":true,\"options\":{\"num_predict\":$RECORDS}}"
results=()
for round in $(seq "$ROUNDS"); do
  for target in "${TARGETS[@]}"; do
    name=${target%%=*}
    port=${target#*=}
    start=$(date +%s.%N)
    lines=$(taskset -c "$OTHER_CPU" curl -sN -H 'X-Session-ID: stream-1' \
      "http://127.0.0.1:$port/api/generate" -d "$body" | wc -l)
    end=$(date +%s.%N)
    results+=("$name $round $lines $start $end")
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
expected = int(sys.argv[1]) + 1  # every token, then the final record
runs = {}
for line in sys.stdin:
    name, rnd, lines, start, end = line.split()
    runs.setdefault(name, {})[int(rnd)] = (int(lines), float(end) - float(start))
rounds = sorted(runs["direct"])
def rate(name, r):
    lines, seconds = runs[name][r]
    return lines / seconds
print("    per round records/s: " + "; ".join(
    f"r{r} " + " ".join(f"{n} {rate(n, r):.0f}" for n in runs) for r in rounds))
for name in runs:
    short = sum(1 for r in rounds if runs[name][r][0] != expected)
    line = f"    {name:<13} {statistics.median([rate(name, r) for r in rounds]):9.0f} records/s"
    line += f"  incomplete streams {short}"
    for other in ("direct", "haproxy", "haproxy-nd", "nginx"):
        if other != name and other in runs and name.startswith("llmgw"):
            ratios = [rate(name, r) / rate(other, r) for r in rounds]
            line += (f" | {statistics.median(ratios):.2f}x {other}"
                     f" ({min(ratios):.2f}-{max(ratios):.2f})")
    print(line)
' "$RECORDS"

echo "== 2. delay per record at $RATE records/s: $DELAY_REQUESTS requests of $DELAY_TOKENS records," \
  "direct and through each proxy alternating (llmgw, then ${PROXIES[*]:-no other proxy})"
start_sim sim-paced --threads 1 --decode-tps "$RATE" --prefill-tps 1000000 --ignore-eos
SIM_PACED=$PORT
start_gateway llmgw-paced "http://127.0.0.1:$SIM_PACED"
PACED=("llmgw=$PORT")
for proxy in "${PROXIES[@]}"; do
  "start_$proxy" "127.0.0.1:$SIM_PACED"
  PACED+=("$proxy=$PORT")
  if [[ $proxy == haproxy ]]; then
    start_haproxy --no-delay "127.0.0.1:$SIM_PACED"
    PACED+=("haproxy-nd=$PORT")
  fi
done
# The same measure for every proxy: what a proxy adds on this machine (loopback wake-ups of a
# VM) is the floor none of them goes below.
for target in "${PACED[@]}"; do
  name=${target%%=*}
  "$LOAD" stream --url-a "http://127.0.0.1:$SIM_PACED" --url-b "http://127.0.0.1:${target#*=}" \
    --requests "$DELAY_REQUESTS" --tokens "$DELAY_TOKENS" >"$OUT_DIR/paced-$name.json"
  python3 - "$OUT_DIR/paced-$name.json" "$name" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
per = s["added_per_record_us"]
print(f"    {sys.argv[2]:<8} added per record p50 {per['p50']:.0f} us, p99 {per['p99']:.0f} us;"
      f" at the head {s['added_head_us']:.0f} us; record gap direct p50"
      f" {s['a']['record_gap_us']['p50']:.0f} us, through it {s['b']['record_gap_us']['p50']:.0f} us;"
      f" errors {s['a']['errors']}/{s['b']['errors']}")
PY
done
echo "== raw results in $OUT_DIR (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
