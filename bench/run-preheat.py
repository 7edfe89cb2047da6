#!/usr/bin/env python3
"""Drain mid-run, with and without cache preheating (bench/RESULTS.md §9, issue 15).

Starts NODES ollama-sim processes (4 KV slots each) and one `llmgw serve` in front of them, then
runs SESSIONS conversations of TURNS turns each, one thread per session (streamed /api/chat, the
history growing by a user message of ~USER_BYTES and the reply each turn). When every session has
finished turn DRAIN_AFTER, node-a is drained (PATCH /admin/nodes/node-a {"draining": true}); after
THINK seconds of user think time the sessions go on, spread over another THINK seconds. Reports, for the sessions that were on node-a
(moved) and for the others, the time to first token of the turn after the drain (moved) or of every turn after the drain
(others: an eviction the moves cause shows in some later turn), p50 and p99, and
the prompt tokens the preheats cost. The modes (preheat.max_bytes 64 MiB and 0) alternate round by
round (the machine is shared and noisy).

Usage: bench/run-preheat.py [--build build/ci] [--rounds 4] [--sessions 16] [--turns 8]
                            [--drain-after 4] [--think 0.5] [--time-scale 0.1] [--seed 1]
                            [--multiuser-cache] [--log-turns]
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import statistics
import tempfile
import threading
import time

from bench_procs import free_port, metric, start, start_sims, wait_http


PREFILL_TOKENS_PER_S = 2000.0  # ollama-sim's default --prefill-tps


def turn(port, session, messages, time_scale):
    """One streamed chat turn: a dict of its time to first token (s), node, reply text, prompt
    tokens, the tokens the node evaluated (the rest came from its KV cache, read back from the
    final record's prompt_eval_duration) and X-Gateway-Preheated."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps({"model": "llama3.2", "messages": messages})
    started = time.perf_counter()
    conn.request("POST", "/api/chat", body,
                 {"Content-Type": "application/json", "X-Session-ID": session})
    response = conn.getresponse()
    first = response.readline()
    ttft = time.perf_counter() - started
    node = response.getheader("X-Gateway-Node")
    preheated = response.getheader("X-Gateway-Preheated") == "true"
    reply = ""
    line = first
    record = {}
    while line:
        record = json.loads(line)
        reply += record.get("message", {}).get("content", "")
        line = response.readline()
    conn.close()
    evaluated = round(record.get("prompt_eval_duration", 0) / 1e9 * PREFILL_TOKENS_PER_S / time_scale)
    return {"ttft": ttft, "node": node, "reply": reply, "preheated": preheated,
            "prompt": record.get("prompt_eval_count", 0), "evaluated": evaluated}




def run_round(args, preheat):
    procs = []
    tmp = tempfile.mkdtemp(prefix="llmgw-preheat-bench-")
    try:
        nodes = []
        sims, ports = start_sims(args.build, args.nodes,
                                 ["--num-parallel", args.num_parallel, "--time-scale",
                                  args.time_scale]
                                 + (["--multiuser-cache"] if args.multiuser_cache else []),
                                 seed=args.seed)
        procs += sims
        for i, port in enumerate(ports):
            nodes.append(f"  - name: node-{chr(ord('a') + i)}\n    url: http://127.0.0.1:{port}\n")
        gateway_port = free_port()
        config = os.path.join(tmp, "gateway.yaml")
        with open(config, "w") as f:
            f.write(f"listen:\n  address: 127.0.0.1\n  port: {gateway_port}\nworkers: 2\n"
                    f"nodes:\n{''.join(nodes)}admin:\n  token: bench\n"
                    f"log:\n  access_log: false\n  level: warn\n"
                    f"preheat:\n  max_bytes: {67108864 if preheat else 0}\n")
        procs.append(start([f"{args.build}/llmgw", "serve", "--config", config]))
        wait_http(gateway_port, "/health")

        barrier = threading.Barrier(args.sessions + 1)
        resume = threading.Event()
        results = {}

        def conversation(index):
            session = f"bench-{index}"
            system = f"You are assistant {index}. " + "Keep answers short. " * 200
            messages = [{"role": "system", "content": system}]
            nodes_seen = []
            after = None
            later = []
            for t in range(args.turns):
                messages.append({"role": "user", "content": f"turn {t}: " + "words " * args.user_bytes})
                got = turn(gateway_port, session, messages, args.time_scale)
                ttft, node = got["ttft"], got["node"]
                messages.append({"role": "assistant", "content": got["reply"]})
                nodes_seen.append(node)
                if args.log_turns:
                    print(f"  {'preheat' if preheat else 'plain':<8}{session:<10} turn {t} {node} "
                          f"ttft {ttft * 1000:6.0f} ms  prompt {got['prompt']:5} evaluated "
                          f"{got['evaluated']:5}{'  preheated' if got['preheated'] else ''}",
                          flush=True)
                if t + 1 == args.drain_after:
                    barrier.wait()
                    resume.wait()
                    # Users do not all come back at once: spread over another THINK seconds.
                    time.sleep(args.think * index / args.sessions)
                elif t >= args.drain_after:
                    after = after or ttft
                    later.append(ttft)
            results[index] = (nodes_seen, after, later)

        with concurrent.futures.ThreadPoolExecutor(args.sessions) as pool:
            futures = [pool.submit(conversation, i) for i in range(args.sessions)]
            barrier.wait()
            conn = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=10)
            conn.request("PATCH", "/admin/nodes/node-a", '{"draining": true}',
                         {"Authorization": "Bearer bench", "Content-Type": "application/json"})
            assert conn.getresponse().status == 200
            time.sleep(args.think)
            resume.set()
            for future in futures:
                future.result()
        moved = [after for nodes_seen, after, _ in results.values()
                 if nodes_seen[args.drain_after - 1] == "node-a"]
        # Every turn after the drain: an eviction the moves cause shows in some later turn.
        others = [ttft for nodes_seen, _, later in results.values()
                  if nodes_seen[args.drain_after - 1] != "node-a" for ttft in later]
        return {
            "moved": moved,
            "others": others,
            "preheat_tokens": metric(gateway_port, "llmgw_preheat_prompt_tokens_total"),
            "completed": metric(gateway_port, 'llmgw_preheats_total{outcome="completed"}'),
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/ci")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--num-parallel", type=int, default=4, help="KV slots per sim")
    parser.add_argument("--drain-after", type=int, default=4)
    parser.add_argument("--think", type=float, default=0.5)
    parser.add_argument("--user-bytes", type=int, default=300)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1, help="the sims' seeds are SEED, SEED+1, ...")
    parser.add_argument("--multiuser-cache", action="store_true",
                        help="sims choose KV slots as Ollama with OLLAMA_MULTIUSER_CACHE=1")
    parser.add_argument("--log-turns", action="store_true",
                        help="print every turn's node, TTFT and prompt tokens evaluated")
    args = parser.parse_args()
    totals = {mode: {"moved": [], "others": [], "tokens": 0.0, "completed": 0.0}
              for mode in (True, False)}
    for r in range(args.rounds):
        for preheat in (True, False) if r % 2 == 0 else (False, True):
            got = run_round(args, preheat)
            totals[preheat]["moved"] += got["moved"]
            totals[preheat]["others"] += got["others"]
            totals[preheat]["tokens"] += got["preheat_tokens"]
            totals[preheat]["completed"] += got["completed"]
    print(f"{'mode':<12}{'moved n':>8}{'moved p50':>11}{'moved p99':>11}"
          f"{'others n':>9}{'others p50':>12}{'others p99':>12}{'preheats':>10}{'preheat tokens':>16}")
    for preheat in (True, False):
        t = totals[preheat]
        print(f"{'preheat' if preheat else 'no preheat':<12}{len(t['moved']):>8}"
              f"{quantile(t['moved'], 0.5) * 1000:>9.0f}ms{quantile(t['moved'], 0.99) * 1000:>9.0f}ms"
              f"{len(t['others']):>9}{quantile(t['others'], 0.5) * 1000:>10.0f}ms"
              f"{quantile(t['others'], 0.99) * 1000:>10.0f}ms{t['completed']:>10.0f}"
              f"{t['tokens']:>16.0f}")


if __name__ == "__main__":
    main()
