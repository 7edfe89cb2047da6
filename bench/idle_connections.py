#!/usr/bin/env python3
"""Memory of idle keep-alive client connections (issue 14: <= 6 KiB each).

Opens N connections to the gateway, sends one request on each (POST /api/show, relayed to a node,
so every connection has been through the proxy path once) and reads the answer, then leaves them
idle and open. Samples the gateway's RSS before the first connection and after the last answer
(and again after SETTLE_S seconds), and prints one JSON line: the RSS delta per connection.

Usage: bench/idle_connections.py URL PID [N]     (URL: http://127.0.0.1:PORT; N: 2000)
"""
import json
import resource
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main():
    url, pid = sys.argv[1], int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 64)), hard))
    body = b'{"model":"llama3.2"}'
    before = rss_kib(pid)
    sockets, errors = [], 0
    for i in range(count):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"POST /api/show HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-Session-ID: idle-"
                  + str(i).encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(65536)
        head, _, rest = answer.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        while length is not None and len(rest) < length:
            rest += s.recv(65536)
        if not head.startswith(b"HTTP/1.1 200"):
            errors += 1
        sockets.append(s)
    after = rss_kib(pid)
    time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 2.0)
    settled = rss_kib(pid)
    print(json.dumps({
        "connections": count, "errors": errors,
        "rss_before_kib": before, "rss_after_kib": after, "rss_settled_kib": settled,
        "kib_per_connection": (after - before) / count,
        "kib_per_connection_settled": (settled - before) / count,
    }))
    for s in sockets:
        s.close()


if __name__ == "__main__":
    main()
