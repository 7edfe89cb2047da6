// A fleet for the operations tests: ollama-sim nodes and `llmgw serve` as child processes on
// ephemeral loopback ports (LLMGW_BINARY and OLLAMA_SIM_BINARY name the binaries; ctest sets
// them). Every wait is bounded; stop() ends every child by its PID.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function requireEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (ctest sets it; see tests/ops/CMakeLists.txt)`);
  return value;
}

// A child process whose stdout and stderr are collected; `waitFor(regex)` resolves with the
// match once the output has it, or rejects after `timeoutMs`.
export class Child {
  constructor(command, args, name) {
    this.name = name;
    this.output = "";
    this.waiters = [];
    this.exited = false;
    this.process = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const collect = (chunk) => {
      this.output += chunk.toString();
      this.waiters = this.waiters.filter((w) => !w.check());
    };
    this.process.stdout.on("data", collect);
    this.process.stderr.on("data", collect);
    this.process.on("exit", (code, signal) => {
      this.exited = true;
      this.exitCode = code;
      for (const w of this.waiters) w.fail(new Error(`${name} exited (${code ?? signal}):\n${this.output}`));
      this.waiters = [];
    });
  }

  waitFor(regex, timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: no ${regex} within ${timeoutMs} ms; output:\n${this.output}`));
      }, timeoutMs);
      const waiter = {
        check: () => {
          const m = regex.exec(this.output);
          if (m) { clearTimeout(timer); resolve(m); }
          return m !== null;
        },
        fail: (e) => { clearTimeout(timer); reject(e); },
      };
      if (waiter.check()) return;
      if (this.exited) { waiter.fail(new Error(`${this.name} already exited:\n${this.output}`)); return; }
      this.waiters.push(waiter);
    });
  }

  async stop(timeoutMs = 10000) {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.process.once("exit", resolve));
    this.process.kill("SIGTERM");
    const timer = setTimeout(() => this.process.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

// A free loopback port (bound, read back, released) for programs that cannot take port 0 and
// report the one they got, such as Prometheus.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function startSim(name, seed) {
  const sim = new Child(requireEnv("OLLAMA_SIM_BINARY"), [
    "--host", "127.0.0.1", "--port", "0", "--time-scale", "0.02", "--seed", String(seed),
    "--min-output-tokens", "4", "--max-output-tokens", "12", "--num-parallel", "4",
  ], name);
  const [, url] = await sim.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { name, url, child: sim };
}

// `nodes` sims named sim-a, sim-b, ... behind one gateway. `extraYaml` is appended to the
// generated configuration.
export async function startFleet({ nodes = 3, extraYaml = "" } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "llmgw-ops-"));
  const sims = [];
  const fleet = { dir, sims, gateway: null, url: null };
  fleet.stop = async () => {
    await Promise.all([fleet.gateway, ...sims.map((s) => s.child)].filter(Boolean).map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < nodes; ++i) sims.push(await startSim("sim-" + String.fromCharCode(97 + i), i));
    const yaml = [
      "listen:", "  address: 127.0.0.1", "  port: 0", "workers: 1", "nodes:",
      ...sims.flatMap((s) => [`  - name: ${s.name}`, `    url: ${s.url}`]),
      "health:", "  interval_ms: 300", "  timeout_ms: 500", "  unhealthy_threshold: 2",
      "  base_ejection_ms: 60000",
      "log:", "  level: info",
      extraYaml,
    ].join("\n") + "\n";
    writeFileSync(join(dir, "gateway.yaml"), yaml);
    fleet.gateway = new Child(requireEnv("LLMGW_BINARY"), ["serve", "--config", join(dir, "gateway.yaml")], "llmgw");
    const [, port] = await fleet.gateway.waitFor(/llmgw listening on 127\.0\.0\.1:(\d+)/);
    fleet.url = `http://127.0.0.1:${port}`;
    return fleet;
  } catch (e) {
    await fleet.stop();
    throw e;
  }
}

// One non-streamed generation through the gateway; `session` sets X-Session-ID.
export async function generate(base, prompt, session) {
  const headers = { "Content-Type": "application/json" };
  if (session) headers["X-Session-ID"] = session;
  const response = await fetch(base + "/api/generate", {
    method: "POST", headers,
    body: JSON.stringify({ model: "llama3.2", prompt, stream: false }),
  });
  await response.text();
  return response.status;
}

// `count` generations spread over `sessions` sessions, plus a few without a session key.
export async function sendTraffic(base, { count = 12, sessions = 4, tag = "t" } = {}) {
  const statuses = [];
  for (let i = 0; i < count; ++i) {
    const session = i % 5 === 4 ? undefined : `ops-${tag}-${i % sessions}`;
    statuses.push(await generate(base, `turn ${i} of the operations test`, session));
  }
  return statuses;
}

export async function waitUntil(what, predicate, timeoutMs = 15000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
