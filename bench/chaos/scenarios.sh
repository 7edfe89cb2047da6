# shellcheck shell=bash disable=SC2153
# The scenarios of `make chaos`, sourced by bench/chaos/run.sh (its helpers: scenario, start_sims,
# start_gateway, requests, expect, report...). Each function is one scenario, bounded in time.

# 1. A node SIGKILLed under load, restarted on its port 5 s later. Non-streamed requests must all
# succeed (a dead node fails before any response byte, so the request goes to another node);
# streams running on the node at the kill end with an error record, never silently.
scenario_1() {
  scenario 1 kill || return 0
  local load_s kill_at restart_at
  load_s=$(quick 12 20)
  start_sims 3 "${FAST_SIM[@]}"
  start_gateway -- "${NODES[@]}" "${GW_FAST_HEALTH[@]}"
  start_watch
  local t0
  t0=$(now)
  requests "$DIR/plain.json" --no-stream --connections 8 --duration-s "$load_s" \
    --session-prefix kill- &
  local plain=$!
  requests "$DIR/streams.json" --connections 4 --tokens 64 --duration-s "$load_s" \
    --session-prefix kill-stream- &
  local streams=$!
  sleep_until "$(python3 -c "print($t0 + 3)")"
  kill -KILL "${SIM_PIDS[1]}"
  kill_at=$(now)
  sleep_until "$(python3 -c "print($t0 + 8)")"
  start_sim b-restarted "${SIM_PORTS[1]}" --seed 1 "${FAST_SIM[@]}"
  restart_at=$(now)
  wait "$plain" "$streams"
  # Readmission: the ejection time (5 s, or 10 s if the restart came too late) plus two checks.
  for _ in $(seq 200); do
    [[ $($TOOL when "$DIR/health.jsonl" b up "$restart_at") != -1 ]] && break
    sleep 0.1
  done
  local eject readmit
  eject=$($TOOL when "$DIR/health.jsonl" b down "$kill_at")
  readmit=$($TOOL when "$DIR/health.jsonl" b up "$restart_at")
  expect "non-streamed requests failed" "$(get "$DIR/plain.json" 'd["failed"]') == 0"
  expect "streams cut without an error record" \
    "$(get "$DIR/streams.json" 'd["cut"] + d["transport_errors"]') == 0"
  expect "node not ejected" "$eject >= 0"
  expect "node not readmitted within 20 s of its restart" "$readmit >= 0"
  expect "gateway died" "$(gateway_alive && echo 1 || echo 0) == 1"
  report "non-streamed: $(describe "$DIR/plain.json"); streams: $(describe "$DIR/streams.json");\
 ejected $eject s after the kill, readmitted $readmit s after the restart\
 (health.interval_ms 1000, base_ejection_ms 5000)"
  stop_all
}

# 2. A node that hangs on generations while its /api/version answers: requests wait at most
# first_byte_ms (2 s here) on it and go on to another node; the node is ejected, stays out for the
# ejection time although its health checks pass, and a second ejection lasts longer.
scenario_2() {
  scenario 2 hang || return 0
  local load_s
  load_s=$(quick 16 24)
  start_sims 3 "${FAST_SIM[@]}"
  start_gateway -- "${NODES[@]}" "${GW_FAST_HEALTH[@]}" \
    --set timeouts.first_byte_ms=2000 --set timeouts.first_byte_total_ms=10000 \
    --set routing.key_sources=header
  start_watch
  local t0 fault_at
  t0=$(now)
  # No session header, and only the header as a key source (the load sends one body, whose
  # prefix key would put every request on one node): round-robin keeps sending the hung node its
  # share once it is back.
  requests "$DIR/plain.json" --no-stream --connections 6 --duration-s "$load_s" &
  local load=$!
  sleep_until "$(python3 -c "print($t0 + 2)")"
  curl -s --max-time 5 "http://127.0.0.1:${SIM_PORTS[1]}/admin/fault" -d '{"mode":"hang"}' \
    >/dev/null
  fault_at=$(now)
  wait "$load"
  local version end eject eject_at readmit ejections longest out
  version=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    "http://127.0.0.1:${SIM_PORTS[1]}/api/version")
  end=$(now)
  eject=$($TOOL when "$DIR/health.jsonl" b down "$fault_at")
  eject_at=$(python3 -c "print($fault_at + max($eject, 0))")
  readmit=$($TOOL when "$DIR/health.jsonl" b up "$eject_at")
  ejections=$($TOOL max "$DIR/health.jsonl" b ejections)
  longest=$($TOOL max "$DIR/health.jsonl" b ejected_for_ms)
  out=$($TOOL out "$DIR/health.jsonl" b "$eject_at" "$end")
  expect "requests failed" "$(get "$DIR/plain.json" 'd["failed"]') == 0"
  expect "hung node not ejected" "$eject >= 0"
  expect "its /api/version did not answer 200 (the test needs it to)" "'$version' == '200'"
  expect "readmitted before its ejection time was over" \
    "$readmit == -1 or $readmit >= $BASE_EJECTION_S - 0.2"
  expect "a repeated ejection did not last longer" "$ejections < 2 or $longest > $BASE_EJECTION_S * 1000"
  expect "gateway died" "$(gateway_alive && echo 1 || echo 0) == 1"
  report "$(describe "$DIR/plain.json"), latency p50 $(get "$DIR/plain.json" 'round(d["latency_us"]["p50"] / 1000)') ms\
 p99 $(get "$DIR/plain.json" 'round(d["latency_us"]["p99"] / 1000)') ms (first_byte_ms 2000);\
 ejected $eject s after the fault, back $readmit s after the ejection (-1: not in the run),\
 $ejections ejection(s), longest $((longest / 1000)) s, out $(python3 -c "print(round($out * 100))") % of the\
 time since while its /api/version answered $version"
  stop_all
}

# One idle-lull run: sims with SIM_ARGS, a gateway with GATEWAY_ARGS, a burst of 80 streamed
# session turns on 40 connections, IDLE_S seconds of nothing, the same burst again. No request may
# fail, none may be served by a failover node and no node may be ejected.
idle_case() {
  local id=$1 label=$2 idle_s=$3
  shift 3
  local sim_args=() gateway_args=()
  while [[ $1 != -- ]]; do sim_args+=("$1"); shift; done
  shift
  gateway_args=("$@")
  start_sims 3 "${FAST_SIM[@]}" "${sim_args[@]}"
  start_gateway -- "${NODES[@]}" "${gateway_args[@]}"
  local burst=(--connections 40 --requests 80 --tokens 16 --session-prefix "idle-$id-")
  requests "$DIR/$id-1.json" "${burst[@]}"
  sleep "$idle_s"
  requests "$DIR/$id-2.json" "${burst[@]}"
  local failed failover ejections stale
  failed=$(($(get "$DIR/$id-1.json" 'd["failed"]') + $(get "$DIR/$id-2.json" 'd["failed"]')))
  failover=$(($(failovers "$DIR/$id-1.json") + $(failovers "$DIR/$id-2.json")))
  ejections=$(ejections_total)
  stale=$(stale_retries)
  expect "$label: requests failed" "$failed == 0"
  expect "$label: requests served by a failover node" "$failover == 0"
  expect "$label: nodes ejected" "$ejections == 0"
  IDLE_LINES+=("$label, idle ${idle_s} s: failed $failed of 160, failover $failover,\
 ejections $ejections, stale pooled connections retried $stale")
  stop_all
}

# 3. Idle lulls longer than the nodes' keep-alive (issue 8: "burst, 70 s idle, burst").
scenario_3() {
  scenario 3 idle || return 0
  IDLE_LINES=()
  idle_case keepalive5 "sims keep-alive 5 s" 7 --keep-alive-timeout-ms 5000 --
  idle_case pool60 "sims keep-alive 2 s, gateway upstream_idle_ms 60000" 4 \
    --keep-alive-timeout-ms 2000 -- --set timeouts.upstream_idle_ms=60000
  idle_case defaults "default sims and gateway" "$(quick 8 70)" --
  report "$(IFS=';'; echo "${IDLE_LINES[*]}")"
}

# 4. Nodes that close the connection after every streamed response while announcing keep-alive,
# as llama.cpp's server does: no request may fail or leave its session's node.
scenario_4() {
  scenario 4 close || return 0
  start_sims 3 "${FAST_SIM[@]}" --close-after-stream
  start_gateway -- "${NODES[@]}"
  requests "$DIR/streams.json" --connections 8 --requests "$(quick 200 400)" --tokens 8 \
    --session-prefix close-
  local ejections stale
  ejections=$(ejections_total)
  stale=$(stale_retries)
  expect "requests failed" "$(get "$DIR/streams.json" 'd["failed"]') == 0"
  expect "requests served by a failover node" "$(failovers "$DIR/streams.json") == 0"
  expect "nodes ejected" "$ejections == 0"
  report "$(describe "$DIR/streams.json"), failover $(failovers "$DIR/streams.json"),\
 ejections $ejections, stale pooled connections retried $stale"
  stop_all
}

# 5. A node that closes its streams after 3 tokens: every cut stream ends with an error record
# (the client's connection stays usable: no request after it fails for want of an answer), and
# the node is ejected; the other nodes are not.
scenario_5() {
  scenario 5 break || return 0
  start_sims 3 "${FAST_SIM[@]}"
  kill -TERM "${SIM_PIDS[1]}"
  wait "${SIM_PIDS[1]}" 2>/dev/null || true
  start_sim b-breaking "${SIM_PORTS[1]}" --seed 1 "${FAST_SIM[@]}" --fault close_mid_stream \
    --fault-after-tokens 3
  start_gateway -- "${NODES[@]}" "${GW_FAST_HEALTH[@]}"
  start_watch
  local t0
  t0=$(now)
  requests "$DIR/streams.json" --connections 8 --tokens 16 --duration-s "$(quick 6 10)" \
    --session-prefix break-
  local eject others
  eject=$($TOOL when "$DIR/health.jsonl" b down "$t0")
  others=$(($($TOOL max "$DIR/health.jsonl" a ejections) + $($TOOL max "$DIR/health.jsonl" c ejections)))
  expect "streams cut without an error record" "$(get "$DIR/streams.json" 'd["cut"]') == 0"
  expect "requests without an answer (connection not reusable after a cut)" \
    "$(get "$DIR/streams.json" 'd["transport_errors"]') == 0"
  expect "no stream was cut (the fault did not strike)" \
    "$(get "$DIR/streams.json" 'd["error_records"]') > 0"
  expect "breaking node not ejected" "$eject >= 0"
  expect "healthy nodes ejected" "$others == 0"
  report "$(describe "$DIR/streams.json"); breaking node ejected $eject s after the start,\
 healthy nodes ejected $others times"
  stop_all
}

# 6. The gateway with 256 descriptors (soft and hard) and 1,000 streams opened at once: what does
# not fit is the gateway's problem, answered 503 (or left waiting in the listen queue), never a
# 502 charged to a node; no node is ejected and the gateway serves normally afterwards.
scenario_6() {
  scenario 6 descriptors || return 0
  start_sims 2 --num-parallel 700 --queue-size 100 --prefill-tps 1000000 --decode-tps 2 \
    --min-output-tokens 1000 --max-output-tokens 1000
  start_gateway bash -c 'ulimit -n 256 && exec "$@"' ulimit -- "${NODES[@]}"
  "$LOAD" open --url "$GW" --streams 1000 --hold-s 5 --pid "$GW_PID" >"$DIR/open.json"
  local ejections after_failed
  # The follow-up requests first: right after the storm the streams that got in still hold every
  # connection the descriptors allow, so /health itself would be answered 503 (ejections are a
  # running count, so reading them after loses nothing). One second first for the gateway to
  # see the storm's clients gone: it holds their connections until it does.
  sleep 1
  requests "$DIR/after.json" --no-stream --connections 2 --requests 10 --tokens 1
  after_failed=$(get "$DIR/after.json" 'd["failed"]')
  ejections=$(ejections_total)
  expect "streams answered 502" "$(get "$DIR/open.json" 'd["statuses"].get("502", 0)') == 0"
  expect "nodes ejected" "$ejections == 0"
  expect "requests failed after the flood" "$after_failed == 0"
  expect "gateway died" "$(gateway_alive && echo 1 || echo 0) == 1"
  report "1000 streams under ulimit -n 256: opened $(get "$DIR/open.json" 'd["opened"]'),\
 statuses $(get "$DIR/open.json" '",".join("%s:%d" % kv for kv in sorted(d["statuses"].items()))'),\
 gateway RSS peak $(get "$DIR/open.json" 'round(d["server_rss_peak_mib"], 1)') MiB;\
 ejections $ejections; afterwards $after_failed of 10 requests failed;\
 $(grep -c 'accept failed' "$GW_LOG" || true) accept-failure log lines"
  stop_all
}

# 7. Slowloris: 1,000 connections sending a request head one byte per second, while normal
# traffic flows. Normal requests must all succeed with p99 under a second, and the gateway must
# close the slow connections at timeouts.client_header_ms (10 s here; default 30 s).
scenario_7() {
  scenario 7 slowloris || return 0
  start_sims 3 "${FAST_SIM[@]}"
  start_gateway -- "${NODES[@]}" --set timeouts.client_header_ms=10000
  requests "$DIR/baseline.json" --no-stream --connections 4 --duration-s 5
  "$LOAD" slowloris --url "$GW" --connections 1000 --duration-s 16 --interval-ms 1000 \
    >"$DIR/slowloris.json" &
  local slow=$!
  sleep 2
  requests "$DIR/during.json" --no-stream --connections 4 --duration-s 12
  wait "$slow"
  local p99 base_p99
  p99=$(get "$DIR/during.json" 'round(d["latency_us"]["p99"] / 1000, 1)')
  base_p99=$(get "$DIR/baseline.json" 'round(d["latency_us"]["p99"] / 1000, 1)')
  expect "normal requests failed" "$(get "$DIR/during.json" 'd["failed"]') == 0"
  expect "normal p99 over 1 s" "$p99 < 1000"
  expect "slow connections left open past client_header_ms" \
    "$(get "$DIR/slowloris.json" 'd["open_at_end"]') == 0"
  expect "gateway died" "$(gateway_alive && echo 1 || echo 0) == 1"
  report "normal traffic beside 1000 slow connections: $(describe "$DIR/during.json"),\
 $(get "$DIR/during.json" 'round(d["rps"])') req/s, p50\
 $(get "$DIR/during.json" 'round(d["latency_us"]["p50"] / 1000, 1)') ms p99 $p99 ms\
 (alone: $(get "$DIR/baseline.json" 'round(d["rps"])') req/s, p50\
 $(get "$DIR/baseline.json" 'round(d["latency_us"]["p50"] / 1000, 1)') ms p99 $base_p99 ms);\
 slow connections: $(get "$DIR/slowloris.json" 'd["connected"]') opened,\
 $(get "$DIR/slowloris.json" 'd["closed_by_server"]') closed by the gateway after\
 $(get "$DIR/slowloris.json" 'round(d["closed_after_s"]["p50"], 1)') s (p50),\
 statuses $(get "$DIR/slowloris.json" '",".join("%s:%d" % kv for kv in sorted(d["statuses"].items()))')"
  stop_all
}

# 8. A body-memory flood: 32 connections each POSTing a 15 MiB body over 8 s. With the gateway's
# request-body budget (limits.max_buffered_body_bytes, 256 MiB, its default) the gateway's memory
# may grow by the budget and some slack, never by the 480 MiB sent; bodies past the budget get
# 503 at once.
scenario_8() {
  scenario 8 bodies || return 0
  local budget_mib=256 budget_args=() has_budget=0
  # Not `| grep -q`: under pipefail, grep's early exit gives llmgw a SIGPIPE and the test fails.
  if [[ "$("$LLMGW" serve --help-config 2>/dev/null)" == *max_buffered_body_bytes* ]]; then
    has_budget=1
    budget_args=(--set "limits.max_buffered_body_bytes=$((budget_mib * 1024 * 1024))")
  fi
  start_sims 3 "${FAST_SIM[@]}"
  start_gateway -- "${NODES[@]}" "${budget_args[@]}"
  "$LOAD" flood --url "$GW" --connections 32 --body-bytes $((15 * 1024 * 1024)) --send-s 8 \
    --pid "$GW_PID" >"$DIR/flood.json"
  sleep 2
  local before peak after
  before=$(get "$DIR/flood.json" 'round(d["server_rss_before_mib"], 1)')
  peak=$(get "$DIR/flood.json" 'round(max(d["server_rss_peak_mib"], d["server_hwm_mib"]), 1)')
  after=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$GW_PID/status")
  expect "connections without an answer" "$(get "$DIR/flood.json" 'd["statuses"].get("none", 0)') == 0"
  expect "no request-body budget in this build (limits.max_buffered_body_bytes)" "$has_budget == 1"
  expect "gateway memory grew past the body budget + 64 MiB" \
    "$has_budget == 0 or $peak - $before <= $budget_mib + 64"
  expect "gateway died" "$(gateway_alive && echo 1 || echo 0) == 1"
  report "32 x 15 MiB bodies over 8 s: statuses\
 $(get "$DIR/flood.json" '",".join("%s:%d" % kv for kv in sorted(d["statuses"].items()))'),\
 $(get "$DIR/flood.json" 'round(d["sent_mib"])') MiB sent; gateway RSS before $before MiB, peak $peak MiB,\
 2 s after $after MiB"
  stop_all
}
