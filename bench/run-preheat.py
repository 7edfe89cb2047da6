#!/usr/bin/env python3
"""A session moves mid-run, with and without cache preheating (bench/RESULTS.md §9, issue 15).

Starts NODES ollama-sim processes (4 KV slots each) and one `llmgw serve` in front of them, then
runs SESSIONS conversations of TURNS turns each, one thread per session (streamed /api/chat, the
history growing by a user message of ~USER_BYTES and the reply each turn). When every session has
finished turn DRAIN_AFTER, the SCENARIO's event happens; after THINK seconds of user think time the
sessions go on, spread over another THINK seconds.

- drain: node-a is drained (PATCH /admin/nodes/node-a {"draining": true}). Moved: the sessions
  that were on node-a; measured: their next turn.
- add: the gateway starts with NODES - 1 nodes; the last sim joins (POST /admin/nodes), routing
  balance_by: requests (under balance_by: sessions placed sessions stay where they are when a
  node joins, by design). Moved: the sessions the new node owns on the ring (as the gateway
  hashes it: ring_owner); measured: their next turn, wherever it went.
- recover: node-a's sim is killed and the gateway sees it unhealthy: its sessions fail over (the
  failover turn is reported apart: an unplanned move, cold in both modes unless
  --warm-on-arrival). After their failover turn node-a is started again on its port (empty KV
  cache, as a restarted Ollama) and seen healthy; THINK later the sessions go on. Moved: the
  sessions that were on node-a; measured: their first turn served by node-a again (with
  preheating the session returns only after its preheat there ended, so possibly a turn later).

Reports the moved sessions' measured turn and every turn of the other sessions after the event
(an eviction the moves cause shows in some later turn), p50 and p99, and the prompt tokens the
preheats cost. The modes (preheat.max_bytes 64 MiB and 0) alternate round by round (the machine is
shared and noisy).

Usage: bench/run-preheat.py [--build build/ci] [--scenario drain|add|recover] [--rounds 4]
                            [--sessions 16] [--turns 8] [--drain-after 4] [--think 0.5]
                            [--time-scale 0.1] [--seed 1] [--multiuser-cache] [--log-turns]
"""

import argparse
import bisect
import concurrent.futures
import hashlib
import http.client
import json
import os
import statistics
import tempfile
import threading
import time

from bench_procs import free_port, metric, running, start, start_sims, stop_all, wait_http


PREFILL_TOKENS_PER_S = 2000.0  # ollama-sim's default --prefill-tps


def ring_position(key):
    """The gateway's ring position of `key`: MD5's first 8 bytes, big-endian (DESIGN §2)."""
    return int.from_bytes(hashlib.md5(key.encode()).digest()[:8], "big")


def ring_owner(names, key, virtual_nodes=150):
    """The node of `names` (equal weights) that owns `key` on the gateway's ring."""
    points = sorted((ring_position(f"{name}#{i}"), name) for name in names
                    for i in range(virtual_nodes))
    at = bisect.bisect_left(points, (ring_position(key), ""))
    return points[at % len(points)][1]


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
    route = response.getheader("X-Gateway-Route")
    reply = ""
    line = first
    record = {}
    while line:
        record = json.loads(line)
        reply += record.get("message", {}).get("content", "")
        line = response.readline()
    conn.close()
    evaluated = round(record.get("prompt_eval_duration", 0) / 1e9 * PREFILL_TOKENS_PER_S / time_scale)
    return {"ttft": ttft, "node": node, "route": route, "reply": reply, "preheated": preheated,
            "prompt": record.get("prompt_eval_count", 0), "evaluated": evaluated}




def admin(port, method, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body,
                 {"Authorization": "Bearer bench", "Content-Type": "application/json"})
    status = conn.getresponse().status
    assert status in (200, 201), f"{method} {path}: {status}"


def wait_node_health(port, name, healthy, deadline_s=20):
    end = time.time() + deadline_s
    while time.time() < end:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health")
        for node in json.loads(conn.getresponse().read())["nodes"]:
            if node["name"] == name and node["healthy"] == healthy:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{name} never became {'healthy' if healthy else 'unhealthy'}")


def gateway_config(args, gateway_port, nodes, preheat):
    text = (f"listen:\n  address: 127.0.0.1\n  port: {gateway_port}\nworkers: 2\n"
            f"nodes:\n{''.join(nodes)}admin:\n  token: bench\n"
            f"log:\n  access_log: false\n  level: warn\n"
            f"preheat:\n  max_bytes: {67108864 if preheat else 0}\n")
    if preheat and args.warm_on_arrival:
        text += "  warm_on_arrival: true\n"
    if args.scenario == "add":
        text += "routing:\n  balance_by: requests\n"
    if args.scenario == "recover":
        # Seen down and back within a probe or two, so the benchmark measures the moves.
        text += ("health:\n  interval_ms: 100\n  unhealthy_threshold: 1\n"
                 "  healthy_threshold: 1\n  base_ejection_ms: 200\n")
    return text


def node_entry(i, port):
    return f"  - name: node-{chr(ord('a') + i)}\n    url: http://127.0.0.1:{port}\n"


class Fleet:
    """The sims and the gateway of one round, and the scenario's events."""

    def __init__(self, args, preheat, tmp):
        self.args = args
        self.sim_args = (["--num-parallel", args.num_parallel, "--time-scale", args.time_scale]
                         + (["--multiuser-cache"] if args.multiuser_cache else []))
        self.procs, self.ports = start_sims(args.build, args.nodes, self.sim_args, seed=args.seed)
        listed = args.nodes - 1 if args.scenario == "add" else args.nodes
        self.port = free_port()
        config = os.path.join(tmp, "gateway.yaml")
        with open(config, "w") as f:
            f.write(gateway_config(args, self.port,
                                   [node_entry(i, self.ports[i]) for i in range(listed)], preheat))
        self.procs.append(start([f"{args.build}/llmgw", "serve", "--config", config]))
        wait_http(self.port, "/health")

    def first_event(self):
        for proc in self.procs:  # a sim or the gateway that exited says why, rather than hang
            running(proc)
        if self.args.scenario == "drain":
            admin(self.port, "PATCH", "/admin/nodes/node-a", '{"draining": true}')
        elif self.args.scenario == "add":
            last = self.args.nodes - 1
            admin(self.port, "POST", "/admin/nodes",
                  json.dumps({"name": f"node-{chr(ord('a') + last)}",
                              "url": f"http://127.0.0.1:{self.ports[last]}"}))
        else:  # recover: node-a fails
            self.procs[0].kill()
            self.procs[0].wait()
            wait_node_health(self.port, "node-a", False)

    def second_event(self):
        """recover: node-a back on its port, with an empty KV cache."""
        stop_all([self.procs[0]])  # (exited already: its log goes)
        self.procs[0] = start([f"{self.args.build}/ollama-sim", "--port", str(self.ports[0]),
                               "--seed", str(self.args.seed)]
                              + [str(arg) for arg in self.sim_args])
        wait_http(self.ports[0], "/api/version")
        running(self.procs[0])
        wait_node_health(self.port, "node-a", True)

    def stop(self):
        stop_all(self.procs)


def run_round(args, preheat):
    tmp = tempfile.mkdtemp(prefix="llmgw-preheat-bench-")
    fleet = Fleet(args, preheat, tmp)
    try:
        events = 2 if args.scenario == "recover" else 1
        barriers = [threading.Barrier(args.sessions + 1) for _ in range(events)]
        resumes = [threading.Event() for _ in range(events)]
        results = {}

        def conversation(index):
            session = f"bench-{index}"
            system = f"You are assistant {index}. " + "Keep answers short. " * 200
            messages = [{"role": "system", "content": system}]
            seen = []  # (node, ttft) per turn
            for t in range(args.turns):
                messages.append({"role": "user", "content": f"turn {t}: " + "words " * args.user_bytes})
                got = turn(fleet.port, session, messages, args.time_scale)
                ttft, node = got["ttft"], got["node"]
                messages.append({"role": "assistant", "content": got["reply"]})
                seen.append((node, ttft))
                if args.log_turns:
                    print(f"  {'preheat' if preheat else 'plain':<8}{session:<10} turn {t} {node} "
                          f"{got['route']:<9} ttft {ttft * 1000:6.0f} ms  prompt {got['prompt']:5} evaluated "
                          f"{got['evaluated']:5}{'  preheated' if got['preheated'] else ''}",
                          flush=True)
                event = t + 1 - args.drain_after
                if 0 <= event < events:
                    barriers[event].wait()
                    resumes[event].wait()
                    # Users do not all come back at once: spread over another THINK seconds.
                    time.sleep(args.think * index / args.sessions)
            results[index] = seen

        def give_up():
            """A session or an event failed: nobody waits for the others any more."""
            for barrier in barriers:
                barrier.abort()
            for resume in resumes:
                resume.set()

        def session_thread(index):
            try:
                conversation(index)
            except BaseException:
                give_up()
                raise

        with concurrent.futures.ThreadPoolExecutor(args.sessions) as pool:
            futures = [pool.submit(session_thread, i) for i in range(args.sessions)]
            try:
                for event in range(events):
                    barriers[event].wait(timeout=600)
                    (fleet.first_event if event == 0 else fleet.second_event)()
                    time.sleep(args.think)
                    resumes[event].set()
            except BaseException:
                give_up()
                raise
            for future in futures:
                future.result()
        return summarise(args, results, fleet.port)
    finally:
        fleet.stop()


def summarise(args, results, port):
    """The moved sessions' measured turns, the failover turns (recover) and the others' turns."""
    first = args.drain_after  # the first turn after the event
    moved, failover, others = [], [], []
    new_node = f"node-{chr(ord('a') + args.nodes - 1)}"
    names = [f"node-{chr(ord('a') + i)}" for i in range(args.nodes)]
    for index, seen in results.items():
        if args.scenario == "add":
            # (Not "its next turn went to the new node": under balance_by: requests a turn may
            # spill onto it, or a moved session's turn away from it, for the load of the moment.)
            is_moved = ring_owner(names, f"bench-{index}") == new_node
        else:
            is_moved = seen[first - 1][0] == "node-a"
        if not is_moved:
            others += [ttft for _, ttft in seen[first:]]
        elif args.scenario == "recover":
            failover.append(seen[first][1])
            back = [ttft for node, ttft in seen[first + 1:] if node == "node-a"]
            if back:
                moved.append(back[0])
        else:
            moved.append(seen[first][1])
    return {
        "moved": moved,
        "failover": failover,
        "others": others,
        "preheat_tokens": metric(port, "llmgw_preheat_prompt_tokens_total"),
        "completed": metric(port, 'llmgw_preheats_total{outcome="completed"}'),
    }


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/ci")
    parser.add_argument("--scenario", choices=("drain", "add", "recover"), default="drain")
    parser.add_argument("--warm-on-arrival", action="store_true",
                        help="preheat.warm_on_arrival in the preheat mode")
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
    print(f"load average before: {os.getloadavg()}", flush=True)
    totals = {mode: {"moved": [], "failover": [], "others": [], "tokens": 0.0, "completed": 0.0}
              for mode in (True, False)}
    for r in range(args.rounds):
        for preheat in (True, False) if r % 2 == 0 else (False, True):
            got = run_round(args, preheat)
            totals[preheat]["moved"] += got["moved"]
            totals[preheat]["others"] += got["others"]
            totals[preheat]["failover"] += got["failover"]
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
    if args.scenario == "recover":
        for preheat in (True, False):
            t = totals[preheat]
            print(f"failover turn ({'preheat' if preheat else 'no preheat'}): n {len(t['failover'])}"
                  f" p50 {quantile(t['failover'], 0.5) * 1000:.0f} ms"
                  f" p99 {quantile(t['failover'], 0.99) * 1000:.0f} ms")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
