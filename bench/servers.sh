# Sourced by bench/run-overhead.sh, bench/run-proxies.sh and bench/run-streaming.sh: starts ollama-sim, llmgw, and haproxy
# and nginx as consistent-hash proxies on X-Session-ID configured alike, each in the foreground on
# a free loopback port. Needs OUT_DIR, SIM and LLMGW (binaries). Every process started here goes
# into PIDS and is stopped when the script exits. haproxy and nginx are optional, never a
# dependency of the project (`scripts/install-deps --bench` installs them).
PATH="$PATH:/usr/sbin:/sbin"  # where Debian puts haproxy and nginx

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Each stream holds a client, a gateway-in, a gateway-out and a sim descriptor.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Exits 2 naming the first of "$@" that is not an executable.
require_binaries() {
  local binary
  for binary in "$@"; do
    [[ -x "$binary" ]] || {
      echo "missing $binary (cmake --build --preset release --target llmgw ollama-sim llmgw_load)" >&2
      exit 2
    }
  done
}

# The machine, the time and the load, for the first line of a run's output.
print_machine() {
  echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%FT%TZ);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# pin_servers CPUS PID... : every thread of each process and of its children onto CPUS.
pin_servers() {
  local cpus=$1; shift
  for pid in "$@"; do
    for p in "$pid" $(pgrep -P "$pid" || true); do taskset -a -p -c "$cpus" "$p" >/dev/null; done
  done
}

# cpu_ticks PID : user + system clock ticks of PID and its child processes (nginx's workers) so
# far, from /proc (getconf CLK_TCK per second).
cpu_ticks() {
  local total=0 pid ticks
  for pid in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    ticks=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || ticks=0
    total=$(( total + ${ticks:-0} ))
  done
  echo "$total"
}

# start_sim NAME ARGS... : starts ollama-sim on an ephemeral port; sets PORT and SERVER_PID.
start_sim() {
  local name=$1; shift
  "$SIM" --port 0 "$@" >"$OUT_DIR/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=($SERVER_PID)
  PORT=$(wait_for_port "$OUT_DIR/$name.log" 'listening on http://[^:]*:([0-9]+)')
}

# start_gateway NAME NODE_URL... : llmgw serve with GATEWAY_WORKERS workers (1); sets PORT and
# GATEWAY_PID. GATEWAY_BINARY overrides the binary (LLMGW_BEFORE).
start_gateway() {
  local name=$1; shift
  local node_flags=()
  local i=0
  for node in "$@"; do node_flags+=(--node "$node"); done
  # The overhead of the proxy path, not admission: no cap, no queue (docs/DESIGN.md §2.2), on
  # builds that have it (an older GATEWAY_BINARY refuses the key).
  if [[ -z ${GATEWAY_BINARY:-} ]]; then
    for node in "$@"; do node_flags+=(--set "nodes[$i].max_in_flight=0"); i=$((i + 1)); done
  fi
  "${GATEWAY_BINARY:-$LLMGW}" serve --port 0 --listen 127.0.0.1 --workers "${GATEWAY_WORKERS:-1}" \
    "${node_flags[@]}" --log-level info --set log.access_log=false >"$OUT_DIR/$name.log" 2>&1 &
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

# A loopback port nobody listens on right now (haproxy and nginx cannot report an ephemeral one).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_listen PORT NAME LOG : until something accepts on PORT (10 s at most).
wait_for_listen() {
  local port=$1 name=$2 log=$3
  for _ in $(seq 100); do
    if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
      "$port" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not listen on $port after 10 s:" >&2; cat "$log" >&2; exit 1
}

# start_haproxy [--threads N] NODE... : haproxy as a consistent-hash proxy on X-Session-ID over
# the nodes (host:port): N threads (1), no logging, keep-alive on both sides (its default);
# --no-delay adds `option http-no-delay` (each piece of a streamed answer sent at once).
# Sets PORT and SERVER_PID.
start_haproxy() {
  local threads=1 no_delay=""
  if [[ ${1:-} == --threads ]]; then threads=$2; shift 2; fi
  if [[ ${1:-} == --no-delay ]]; then no_delay=-nd; shift; fi
  local cfg="$OUT_DIR/haproxy-$threads$no_delay.cfg" i=0
  PORT=$(free_port)
  {
    echo "global"
    echo "  nbthread $threads"
    echo "  maxconn 4096"
    echo "defaults"
    echo "  mode http"
    echo "  timeout connect 2s"
    echo "  timeout client 120s"
    echo "  timeout server 300s"
    # Without it haproxy sends with MSG_MORE while it expects more of the response, and the
    # kernel may hold a record up to 200 ms: what a streamed LLM answer cannot take.
    if [[ -n $no_delay ]]; then echo "  option http-no-delay"; fi
    echo "frontend llm"
    echo "  bind 127.0.0.1:$PORT"
    echo "  default_backend nodes"
    echo "backend nodes"
    echo "  balance hdr(X-Session-ID)"
    echo "  hash-type consistent"
    for node in "$@"; do i=$((i + 1)); echo "  server node$i $node"; done
  } >"$cfg"
  haproxy -db -f "$cfg" >"$OUT_DIR/haproxy-$threads$no_delay.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=($SERVER_PID)
  wait_for_listen "$PORT" haproxy "$OUT_DIR/haproxy-$threads$no_delay.log"
}

# start_nginx [--workers N] NODE... : nginx as a consistent-hash proxy on X-Session-ID: N worker
# processes (1), no access log, HTTP/1.1 keep-alive to the nodes, no response buffering (an LLM
# gateway must stream, as llmgw does). Sets PORT and SERVER_PID (the master; its workers are its
# children).
start_nginx() {
  local workers=1
  if [[ ${1:-} == --workers ]]; then workers=$2; shift 2; fi
  local prefix="$OUT_DIR/nginx-$workers"
  mkdir -p "$prefix/tmp"
  PORT=$(free_port)
  {
    echo "worker_processes $workers;"
    echo "daemon off;"
    echo "pid $prefix/nginx.pid;"
    echo "error_log $prefix/error.log warn;"
    echo "events { worker_connections 8192; }"
    echo "http {"
    echo "  access_log off;"
    echo "  client_body_temp_path $prefix/tmp/body;"
    echo "  proxy_temp_path $prefix/tmp/proxy;"
    echo "  fastcgi_temp_path $prefix/tmp/fastcgi;"
    echo "  uwsgi_temp_path $prefix/tmp/uwsgi;"
    echo "  scgi_temp_path $prefix/tmp/scgi;"
    echo "  keepalive_requests 100000000;"
    echo "  keepalive_timeout 120s;"
    echo "  upstream nodes {"
    echo "    hash \$http_x_session_id consistent;"
    for node in "$@"; do echo "    server $node;"; done
    echo "    keepalive 256;"
    echo "    keepalive_requests 100000000;"
    echo "  }"
    echo "  server {"
    echo "    listen 127.0.0.1:$PORT;"
    echo "    location / {"
    echo "      proxy_pass http://nodes;"
    echo "      proxy_http_version 1.1;"
    echo "      proxy_set_header Connection \"\";"
    echo "      proxy_buffering off;"
    echo "      proxy_read_timeout 300s;"
    echo "    }"
    echo "  }"
    echo "}"
  } >"$prefix/nginx.conf"
  nginx -p "$prefix" -c "$prefix/nginx.conf" >"$OUT_DIR/nginx-$workers.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=($SERVER_PID)
  wait_for_listen "$PORT" nginx "$OUT_DIR/nginx-$workers.log"
}

# The proxies (haproxy, nginx) that are on PATH, into PROXIES; says which are not.
find_proxies() {
  PROXIES=()
  local proxy
  for proxy in haproxy nginx; do
    if command -v "$proxy" >/dev/null; then
      PROXIES+=("$proxy")
      echo "== $proxy: $("$proxy" -v 2>&1 | head -1)"
    else
      echo "== $proxy: not installed, comparison skipped (scripts/install-deps --bench)"
    fi
  done
}
