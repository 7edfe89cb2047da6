"""Process helpers shared by the benchmark scripts (run-replicas.py, run-preheat.py,
run-keyed-latency.py)."""

import http.client
import json
import os
import re
import socket
import subprocess
import tempfile
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
    """Starts `argv` with its stdout and stderr in a log file (proc.log_path, removed by stop_all)
    so that a process that exits early can say why (running() raises with its output)."""
    fd, log_path = tempfile.mkstemp(prefix="llmgw-bench-", suffix=".log")
    with os.fdopen(fd, "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log_path
    proc.argv = argv
    return proc


def output_of(proc):
    try:
        with open(proc.log_path) as log:
            return log.read()
    except OSError:
        return ""


def running(proc):
    """Raises with the process's output when it has exited (and reaps it)."""
    if proc.poll() is not None:
        raise RuntimeError(f"{' '.join(map(str, proc.argv))} exited with {proc.returncode}: "
                           f"{output_of(proc)[-2000:]!r}")


def start_sims(build, count, extra_args=(), seed=1, deadline_s=20):
    """Starts `count` ollama-sim processes (seeds seed, seed + 1, ...), each on a port it binds
    itself (--port 0, read back from its "listening on" line: a port picked here and bound later
    may be taken meanwhile by another process on this shared machine, and the sim then exits while
    the other process answers in its place), and waits for each; returns the processes and their
    ports."""
    procs = [start([f"{build}/ollama-sim", "--port", "0", "--seed", str(seed + i)]
                   + [str(arg) for arg in extra_args]) for i in range(count)]
    ports = []
    for proc in procs:
        end = time.time() + deadline_s
        while True:
            found = re.search(r"listening on https?://[^:\s]+:(\d+)", output_of(proc))
            if found:
                ports.append(int(found.group(1)))
                break
            running(proc)
            if time.time() > end:
                raise RuntimeError(f"{proc.argv}: no port after {deadline_s} s")
            time.sleep(0.02)
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
            proc.wait()
        try:
            os.unlink(proc.log_path)
        except OSError:
            pass
