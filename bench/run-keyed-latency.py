#!/usr/bin/env python3
"""What the shared placement store costs a request (bench/RESULTS.md §7.2, issue 10).

Starts NODES ollama-sim processes and, per round, 2 `llmgw serve` replicas with one node list,
with routing.placement_store (a real redis-server on loopback) or without; then drives them with
`llmgw_load keyed`: an open loop at RATE requests/s for DURATION s, sessions of TURNS turns, each
request to one of the replicas at random. Reports the latency (scheduled arrival to whole answer)
of first turns (which ask the store: one round trip and the placement script) and of later turns
(answered from the replica's cache), p50 and p99, per mode. Modes alternate round by round
(none, redis, none, redis, ...) so that a change of the machine's load hits both alike.

Usage: bench/run-keyed-latency.py [--build build/release] [--rounds 3] [--rate 1000]
                                  [--duration 10] [--turns 4] [--window 100] [--nodes 3]
"""

import argparse
import http.client
import json
import subprocess
import time

from bench_procs import (free_port, metric, start, start_sims, stop_all, wait_http,
                         wait_placement_store)




def one_round(args, nodes, store, round_index):
    procs = []
    try:
        settings = []
        if store:
            redis_port = free_port()
            procs.append(start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"]))
            time.sleep(0.3)
            settings = ["--set", f"routing.placement_store=redis://127.0.0.1:{redis_port}/0"]
        ports = []
        for _ in range(2):
            port = free_port()
            argv = [f"{args.build}/llmgw", "serve", "--listen", "127.0.0.1", "--port", str(port),
                    "--workers", "1", "--log-level", "warn", "--set", "log.access_log=false"]
            argv += settings
            for node in nodes:
                argv += ["--node", node]
            for i in range(len(nodes)):  # no admission cap: queueing would hide the store's cost
                argv += ["--set", f"nodes[{i}].max_in_flight=0"]
            procs.append(start(argv))
            ports.append(port)
        for port in ports:
            wait_http(port, "/health")
            if store:
                wait_placement_store(port)
        load = [f"{args.build}/bench/llmgw_load", "keyed", "--rate", str(args.rate), "--duration-s",
                str(args.duration), "--turns", str(args.turns), "--window", str(args.window),
                "--session-prefix", f"r{round_index}-", "--seed", str(round_index + 1)]
        for port in ports:
            load += ["--url", f"http://127.0.0.1:{port}"]
        out = subprocess.run(load, capture_output=True, text=True, check=True).stdout
        result = json.loads(out)
        result["fallbacks"] = sum(metric(port, "llmgw_placement_store_fallbacks_total")
                                  for port in ports)
        return result
    finally:
        stop_all(procs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()

    sims = []
    try:
        sims, ports = start_sims(args.build, args.nodes,
                                 ["--num-parallel", 64, "--time-scale", 0.001])
        nodes = [f"node-{i}=http://127.0.0.1:{port}" for i, port in enumerate(ports)]
        # A round of each mode first, not reported: the sims' first requests (model loads,
        # connections) would otherwise land on whichever mode runs first.
        for store in (False, True):
            one_round(args, nodes, store, 100 + int(store))
        print("| round | store | sent | errors | fallbacks | max in flight "
              "| first turn p50 / p99 ms | later turns p50 / p99 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for r in range(args.rounds):
            for store in (False, True):
                result = one_round(args, nodes, store, 2 * r + int(store))
                first, later = result["first_turn_us"], result["later_turns_us"]
                print(f"| {r + 1} | {'redis' if store else 'none'} | {result['sent']} "
                      f"| {result['errors']} | {result['fallbacks']:.0f} | {result['max_in_flight']} "
                      f"| {first['p50'] / 1000:.2f} / {first['p99'] / 1000:.2f} "
                      f"| {later['p50'] / 1000:.2f} / {later['p99'] / 1000:.2f} |", flush=True)
    finally:
        stop_all(sims)


if __name__ == "__main__":
    main()
