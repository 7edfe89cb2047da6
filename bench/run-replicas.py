#!/usr/bin/env python3
"""Agreement of gateway replicas (bench/RESULTS.md §7, issue 10).

Starts NODES ollama-sim processes, a redis-server (for the runs with a store) and R `llmgw serve`
replicas with one node list, then sends the turns of SESSIONS multi-turn conversations, each turn
to a replica chosen at random (as an L4 balancer without stickiness would), CONCURRENCY at a time.
Reports, per replica count and with/without routing.placement_store: the share of follow-up turns
that reached the session's turn-1 node, the max/mean sessions per node (turn-1 nodes), and failed
requests.

With --outage, redis-server is killed after the first turn and started again (empty, on the same
port) before the last one: the failed column then counts the requests that failed while it was
down or after it came back (the target is 0), and the fallbacks column the sessions routed without
it. Latency columns: each request's time to the whole answer, p50/p99, first turns (which ask the
store) apart from follow-ups (answered from the replica's cache).

Usage: bench/run-replicas.py [--build build/release] [--replicas 1,2,4,8] [--sessions 60]
                             [--turns 4] [--nodes 4] [--concurrency 8] [--seed 1]
                             [--stores none,redis] [--timeout-ms 20] [--outage]
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import random
import sys
import time

from bench_procs import free_port, start, start_sims, stop_all, wait_http, wait_placement_store


def run(args, replicas, store):
    procs = []
    redis = {}
    try:
        sims, ports = start_sims(args.build, args.nodes, ["--num-parallel", 4, "--time-scale", 0.01])
        procs += sims
        nodes = [f"node-{i}=http://127.0.0.1:{port}" for i, port in enumerate(ports)]
        settings = []
        if store:
            redis_port = free_port()
            redis_argv = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"]
            redis["proc"] = start(redis_argv)
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
                wait_placement_store(port)
        def outage(turn_number):
            if not (store and args.outage):
                return
            if turn_number == 1:  # before the second turn: Redis goes away
                redis["proc"].kill()
                redis["proc"].wait()
            elif turn_number == args.turns - 1:  # before the last turn: back, empty
                redis["proc"] = start(redis_argv)
                time.sleep(2.5)  # the replicas reconnect (backoff up to 2 s)

        result = drive(args, ports, outage)
        fallbacks = 0
        for port in ports:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/metrics")
            for line in conn.getresponse().read().decode().splitlines():
                if line.startswith("llmgw_placement_store_fallbacks_total{"):
                    fallbacks += float(line.split()[-1])
        return result + (int(fallbacks),)
    finally:
        if "proc" in redis:
            procs.append(redis["proc"])
        stop_all(procs)


def percentile(values, q):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(args, ports, before_turn):
    rng = random.Random(args.seed)
    home = {}
    moved = follow_ups = failed = 0
    history = {s: [] for s in range(args.sessions)}
    latency = {True: [], False: []}  # first turn or not -> seconds

    def turn(session, number, port):
        messages = history[session] + [{"role": "user", "content": f"turn {number} of {session}"}]
        body = json.dumps({"model": "llama3.2", "messages": messages, "stream": False,
                           "options": {"num_predict": 8}})
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/api/chat", body,
                         {"Content-Type": "application/json",
                          "X-Session-ID": f"bench-{args.seed}-{session}"})
            response = conn.getresponse()
            data = response.read()
        except OSError:
            return 0, None, b"", messages, 0.0
        return (response.status, response.getheader("X-Gateway-Node"), data, messages,
                time.perf_counter() - started)

    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        for number in range(args.turns):
            before_turn(number)
            order = list(range(args.sessions))
            rng.shuffle(order)
            jobs = {pool.submit(turn, s, number, rng.choice(ports)): s for s in order}
            for job in concurrent.futures.as_completed(jobs):
                session = jobs[job]
                status, node, data, messages, took = job.result()
                if status != 200:
                    failed += 1
                    continue
                latency[number == 0].append(took * 1000)
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
    return (agreement, imbalance, failed, percentile(latency[True], 0.5),
            percentile(latency[True], 0.99), percentile(latency[False], 0.5),
            percentile(latency[False], 0.99))


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
    parser.add_argument("--outage", action="store_true",
                        help="kill redis-server after turn 1, start it again before the last")
    args = parser.parse_args()
    if not os.access(f"{args.build}/llmgw", os.X_OK):
        sys.exit(f"missing {args.build}/llmgw")
    print(f"{args.sessions} sessions x {args.turns} turns, {args.nodes} sims (4 KV slots), "
          f"concurrency {args.concurrency}, seed {args.seed}, random replica per turn")
    if args.outage:
        print("Redis killed before turn 2 and started again (empty) before the last turn")
    print("| replicas | placement store | follow-ups on turn-1 node | max/mean sessions per node "
          "| failed | plain-ring fallbacks | first turn p50 / p99 ms | follow-ups p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for replicas in [int(r) for r in args.replicas.split(",")]:
        for store in [name == "redis" for name in args.stores.split(",")]:
            agreement, imbalance, failed, p50_1, p99_1, p50_n, p99_n, fallbacks = \
                run(args, replicas, store)
            print(f"| {replicas} | {'redis' if store else 'none'} | {agreement:.1f} % "
                  f"| {imbalance:.2f} | {failed} | {fallbacks} | {p50_1:.2f} / {p99_1:.2f} "
                  f"| {p50_n:.2f} / {p99_n:.2f} |", flush=True)


if __name__ == "__main__":
    main()
