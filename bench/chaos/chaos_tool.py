#!/usr/bin/env python3
"""Helpers of bench/chaos/run.sh (`make chaos`): a /health watcher and small JSON queries.

  chaos_tool.py watch URL OUT          poll URL/health every 100 ms until killed; one JSON line per
                                       poll: {"t": epoch seconds, "nodes": {name: {healthy,
                                       ejections, ejected_for_ms}}}
  chaos_tool.py when OUT NODE STATE T  seconds from epoch T to the first poll at or after T that
                                       shows NODE healthy (STATE=up) or ejected (STATE=down);
                                       -1 when none did
  chaos_tool.py out OUT NODE T0 T1     fraction of the polls in [T0, T1] that show NODE ejected
  chaos_tool.py max OUT NODE FIELD     largest value of a node's FIELD over every poll
  chaos_tool.py get FILE EXPR          evaluates EXPR with d = the JSON object in FILE and prints it
  chaos_tool.py metric URL NAME [SUB]  sum of the Prometheus samples of NAME whose labels contain
                                       SUB, read from URL/metrics
"""
import json
import sys
import time
import urllib.request


def watch(url, out):
    with open(out, "a", buffering=1) as f:
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as r:
                    body = json.load(r)
                nodes = {n["name"]: {k: n.get(k) for k in ("healthy", "ejections", "ejected_for_ms")}
                         for n in body["nodes"]}
                f.write(json.dumps({"t": time.time(), "nodes": nodes}) + "\n")
            except Exception as e:  # the gateway may be busy or gone: note it and go on
                f.write(json.dumps({"t": time.time(), "error": str(e)}) + "\n")
            time.sleep(0.1)


def polls(out):
    with open(out) as f:
        for line in f:
            try:
                p = json.loads(line)
            except ValueError:
                continue  # a line cut by the watcher's kill
            if "nodes" in p:
                yield p


def when(out, node, state, t):
    want = state == "up"
    for p in polls(out):
        if p["t"] >= t and node in p["nodes"] and p["nodes"][node]["healthy"] == want:
            return round(p["t"] - t, 2)
    return -1


def out_fraction(out, node, t0, t1):
    seen = [p for p in polls(out) if t0 <= p["t"] <= t1 and node in p["nodes"]]
    if not seen:
        return 0.0
    return round(sum(1 for p in seen if not p["nodes"][node]["healthy"]) / len(seen), 3)


def max_field(out, node, field):
    return max((p["nodes"][node][field] or 0 for p in polls(out) if node in p["nodes"]), default=0)


def metric(url, name, sub=""):
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in "{ ") and sub in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total) if total.is_integer() else total


def main(argv):
    cmd = argv[1]
    if cmd == "watch":
        watch(argv[2], argv[3])
    elif cmd == "when":
        print(when(argv[2], argv[3], argv[4], float(argv[5])))
    elif cmd == "out":
        print(out_fraction(argv[2], argv[3], float(argv[4]), float(argv[5])))
    elif cmd == "max":
        print(max_field(argv[2], argv[3], argv[4]))
    elif cmd == "get":
        with open(argv[2]) as f:
            d = json.load(f)
        print(eval(argv[3], {"d": d}))  # the expressions are run.sh's own
    elif cmd == "metric":
        print(metric(argv[2], argv[3], argv[4] if len(argv) > 4 else ""))
    else:
        sys.exit(f"chaos_tool.py: unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
