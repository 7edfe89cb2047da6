#!/usr/bin/env python3
"""Agreement of gateway replicas (bench/RESULTS.md §7, issue 10).

Starts NODES ollama-sim processes, a redis-server (for the runs with a store) and R `llmgw serve`
replicas with one node list, then sends the turns of SESSIONS multi-turn conversations, each turn
to a replica chosen at random (as an L4 balancer without stickiness would), CONCURRENCY at a time.
Reports, per replica count and with/without routing.placement_store: the share of follow-up turns
that reached the session's turn-1 node, the max/mean sessions per node (turn-1 nodes), and failed
requests.

Usage: bench/run-replicas.py [--build build/release] [--replicas 1,2,4,8] [--sessions 60]
                             [--turns 4] [--nodes 4] [--concurrency 8] [--seed 1]
                             [--stores none,redis] [--timeout-ms 20]
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import random
import subprocess
import sys
import time

from bench_procs import free_port, start, wait_http


def run(args, replicas, store):
    procs = []
    try:
        nodes = []
        for i in range(args.nodes):
            port = free_port()
            procs.append(start([f"{args.build}/ollama-sim", "--port", str(port), "--num-parallel",
                                "4", "--time-scale", "0.01", "--seed", str(i + 1)]))
            wait_http(port, "/api/version")
            nodes.append(f"node-{i}=http://127.0.0.1:{port}")
        settings = []
        if store:
            redis_port = free_port()
            procs.append(start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"]))
            time.sleep(0.3)
            settings = ["--set", f"routing.placement_store=redis://127.0.0.1:{redis_port}/0",
                        "--set", f"routing.placement_store_timeout_ms={args.timeout_ms}"]
        ports = []
        for _ in range(replicas):
            port = free_port()
            argv = [f"{args.build}/llmgw", "serve", "--listen", "127.0.0.1", "--port", str(port),
                    "--workers", "1", "--log-level", "warn"] + settings
            for node in nodes:
                argv += ["--node", node]
            procs.append(start(argv))
            ports.append(port)
        for port in ports:
            wait_http(port, "/health")
        if store:
            for port in ports:  # the store answers on every replica before the first turn
                end = time.time() + 20
                while time.time() < end:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/health")
                    body = json.loads(conn.getresponse().read())
                    if (body["routing"].get("placement_store") or {}).get("available"):
                        break
                    time.sleep(0.05)
        result = drive(args, ports)
        fallbacks = 0
        for port in ports:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/metrics")
            for line in conn.getresponse().read().decode().splitlines():
                if line.startswith("llmgw_placement_store_fallbacks_total{"):
                    fallbacks += float(line.split()[-1])
        return result + (int(fallbacks),)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def drive(args, ports):
    rng = random.Random(args.seed)
    home = {}
    moved = follow_ups = failed = 0
    history = {s: [] for s in range(args.sessions)}

    def turn(session, number, port):
        messages = history[session] + [{"role": "user", "content": f"turn {number} of {session}"}]
        body = json.dumps({"model": "llama3.2", "messages": messages, "stream": False})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/api/chat", body, {"Content-Type": "application/json",
                                                 "X-Session-ID": f"bench-{args.seed}-{session}"})
        response = conn.getresponse()
        data = response.read()
        return response.status, response.getheader("X-Gateway-Node"), data, messages

    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        for number in range(args.turns):
            order = list(range(args.sessions))
            rng.shuffle(order)
            jobs = {pool.submit(turn, s, number, rng.choice(ports)): s for s in order}
            for job in concurrent.futures.as_completed(jobs):
                session = jobs[job]
                status, node, data, messages = job.result()
                if status != 200:
                    failed += 1
                    continue
                reply = json.loads(data).get("message", {"role": "assistant", "content": ""})
                history[session] = messages + [reply]
                if number == 0:
                    home[session] = node
                else:
                    follow_ups += 1
                    moved += home.get(session) != node
    per_node = {}
    for node in home.values():
        per_node[node] = per_node.get(node, 0) + 1
    imbalance = max(per_node.values()) / (len(home) / args.nodes) if home else 0
    agreement = 100.0 * (follow_ups - moved) / follow_ups if follow_ups else 0
    return agreement, imbalance, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--replicas", default="1,2,4,8")
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stores", default="none,redis", help="none, redis or both")
    parser.add_argument("--timeout-ms", type=int, default=20,
                        help="routing.placement_store_timeout_ms")
    args = parser.parse_args()
    if not os.access(f"{args.build}/llmgw", os.X_OK):
        sys.exit(f"missing {args.build}/llmgw")
    print(f"{args.sessions} sessions x {args.turns} turns, {args.nodes} sims (4 KV slots), "
          f"concurrency {args.concurrency}, seed {args.seed}, random replica per turn")
    print("| replicas | placement store | follow-ups on turn-1 node | max/mean sessions per node "
          "| failed | plain-ring fallbacks |")
    print("|---|---|---|---|---|---|")
    for replicas in [int(r) for r in args.replicas.split(",")]:
        for store in [name == "redis" for name in args.stores.split(",")]:
            agreement, imbalance, failed, fallbacks = run(args, replicas, store)
            print(f"| {replicas} | {'redis' if store else 'none'} | {agreement:.1f} % "
                  f"| {imbalance:.2f} | {failed} | {fallbacks} |", flush=True)


if __name__ == "__main__":
    main()
