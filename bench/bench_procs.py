"""Process helpers shared by the benchmark scripts (run-replicas.py, run-preheat.py,
run-keyed-latency.py)."""

import http.client
import json
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, deadline_s=20):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered on port {port}{path}")


def wait_placement_store(port, deadline_s=20):
    """Waits until the replica on `port` reports its placement store available in /health."""
    end = time.time() + deadline_s
    while time.time() < end:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health")
        body = json.loads(conn.getresponse().read())
        if (body["routing"].get("placement_store") or {}).get("available"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the placement store never became available on port {port}")


def start(argv):
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_sims(build, count, extra_args=(), seed=1):
    """Starts `count` ollama-sim processes on free ports (seeds seed, seed + 1, ...) and waits for
    each; returns the processes and their ports."""
    procs, ports = [], []
    for i in range(count):
        port = free_port()
        procs.append(start([f"{build}/ollama-sim", "--port", str(port), "--seed", str(seed + i)]
                           + [str(arg) for arg in extra_args]))
        ports.append(port)
    for port in ports:
        wait_http(port, "/api/version")
    return procs, ports


def metric(port, name):
    """The sum of a metric's samples on the gateway at `port`: a bare name sums every labelled
    series, a name with labels (`x{a="b"}`) is that one series."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    total = 0.0
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def stop_all(procs, timeout_s=10):
    """Terminates `procs` (last started first) and waits for each, killing what does not end."""
    for proc in reversed(procs):
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
