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
