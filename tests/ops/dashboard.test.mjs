// The Grafana dashboard and the alert rules against a real Prometheus (Debian's `prometheus`):
// sims and a gateway serve traffic while Prometheus scrapes the gateway every second with
// deploy/prometheus/alerts.yml loaded; then every PromQL expression of deploy/grafana/llmgw.json
// must answer with data (at least one finite sample), every alert rule must load and evaluate
// without error, and `promtool check metrics` must accept the gateway's exposition.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Child, freePort, requireEnv, sendTraffic, startFleet, waitUntil } from "./lib/fleet.mjs";

const source = requireEnv("LLMGW_SOURCE_DIR");
const prometheusBinary = process.env.PROMETHEUS_BINARY || "/usr/bin/prometheus";
const promtool = process.env.PROMTOOL_BINARY || "/usr/bin/promtool";

let fleet;
let prometheus;
let prometheusUrl;

async function query(expr) {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await response.json();
  assert.equal(body.status, "success", `${expr}: ${JSON.stringify(body)}`);
  return body.data.result;
}

// The dashboard's expressions with Grafana's variables set as a user of the default view has
// them: every node, the llmgw job, a rate window that spans a few 1 s scrapes.
function dashboardExpressions() {
  const dashboard = JSON.parse(readFileSync(join(source, "deploy/grafana/llmgw.json"), "utf8"));
  const out = [];
  const visit = (panels) => {
    for (const panel of panels) {
      for (const target of panel.targets || []) out.push({ panel: panel.title, expr: target.expr });
      visit(panel.panels || []);
    }
  };
  visit(dashboard.panels);
  return out.map(({ panel, expr }) => ({
    panel,
    expr: expr.replaceAll("$__rate_interval", "20s").replaceAll("$job", "llmgw")
              .replaceAll("$node", ".*"),
  }));
}

before(async () => {
  assert.ok(spawnSync(prometheusBinary, ["--version"]).status === 0,
            `${prometheusBinary} is missing: scripts/install-deps installs Debian's prometheus`);
  fleet = await startFleet({ nodes: 3 });
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  const config = [
    "global:", "  scrape_interval: 1s", "  evaluation_interval: 1s",
    "rule_files:", `  - ${join(source, "deploy/prometheus/alerts.yml")}`,
    "scrape_configs:", "  - job_name: llmgw", "    static_configs:",
    `      - targets: ["${fleet.url.replace("http://", "")}"]`,
  ].join("\n") + "\n";
  writeFileSync(join(fleet.dir, "prometheus.yml"), config);
  prometheus = new Child(prometheusBinary, [
    `--config.file=${join(fleet.dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${join(fleet.dir, "tsdb")}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ], "prometheus");
  await prometheus.waitFor(/Server is ready to receive web requests/, 30000);
  await waitUntil("Prometheus to scrape the gateway", async () =>
    (await query('up{job="llmgw"} == 1')).length === 1, 20000, 250);
  // Traffic across several scrapes: keyed sessions, unkeyed requests, metadata calls.
  const until = Date.now() + 5000;
  for (let round = 0; Date.now() < until; ++round) {
    const statuses = await sendTraffic(fleet.url, { count: 10, sessions: 5, tag: String(round) });
    assert.deepEqual(statuses.filter((s) => s !== 200), []);
    assert.equal((await fetch(fleet.url + "/api/tags")).status, 200);
  }
  // Two more scrapes, so that the last requests are inside every rate window.
  const scrapes = async () =>
    Number((await query('count_over_time(up{job="llmgw"}[5m])'))[0]?.value[1] ?? 0);
  const seen = await scrapes();
  await waitUntil("two more scrapes", async () => (await scrapes()) >= seen + 2, 10000, 200);
});

after(async () => {
  await prometheus?.stop();
  await fleet?.stop();
});

test("promtool check metrics accepts the gateway's exposition after traffic", async () => {
  const text = await (await fetch(fleet.url + "/metrics")).text();
  const check = spawnSync(promtool, ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
  for (const name of ["llmgw_build_info", "process_cpu_seconds_total", "process_start_time_seconds",
                      "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                      "process_virtual_memory_bytes"]) {
    assert.match(text, new RegExp(`^${name}[ {]`, "m"), name);
  }
});

test("every dashboard expression returns data from a real Prometheus", async () => {
  const expressions = dashboardExpressions();
  assert.ok(expressions.length >= 20, `only ${expressions.length} expressions found`);
  const empty = [];
  for (const { panel, expr } of expressions) {
    const result = await query(expr);
    const finite = result.filter((r) => Number.isFinite(Number(r.value[1])));
    if (finite.length === 0) empty.push(`${panel}: ${expr} -> ${JSON.stringify(result)}`);
  }
  assert.deepEqual(empty, [], "expressions without data");
});

test("the alert rules load and evaluate without errors, and none fires on a healthy fleet", async () => {
  const rules = await (await fetch(`${prometheusUrl}/api/v1/rules?type=alert`)).json();
  const loaded = rules.data.groups.flatMap((g) => g.rules);
  assert.deepEqual(loaded.map((r) => r.name).sort(), [
    "LlmgwFirstTokenP99Regression", "LlmgwGatewayDown", "LlmgwHighErrorRatio",
    "LlmgwInteractiveRejected", "LlmgwNoHealthyNode", "LlmgwNodeEjected", "LlmgwQueueSaturated"]);
  for (const rule of loaded) {
    assert.equal(rule.health, "ok", `${rule.name}: ${rule.lastError}`);
    assert.equal(rule.state, "inactive", `${rule.name} is ${rule.state}`);
  }
});
