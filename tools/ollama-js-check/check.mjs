// Drives the official Ollama JavaScript client (the npm package `ollama`) against the gateway and
// prints what it saw as one JSON line: tests/integration/gateway/gateway_fleet_client_test.cpp
// checks it. Usage: node check.mjs <gateway url> <model to pull> <nodes to pull on> <model whose
// pull fails>
import { Ollama } from 'ollama';

const [host, model, nodes, failing] = process.argv.slice(2);
const fleet = new Ollama({ host });
const picked = new Ollama({ host, headers: { 'X-Gateway-Nodes': nodes } });

const before = await fleet.list();
const progress = [];
for await (const part of await picked.pull({ model, stream: true })) {
  progress.push(part);
}
const after = await fleet.list();
const ps = await fleet.ps();
let pullError = null;
try {
  for await (const part of await fleet.pull({ model: failing, stream: true })) {
    void part;
  }
} catch (error) {
  pullError = error.message;
}
console.log(JSON.stringify({
  before: before.models.map((m) => m.name).sort(),
  after: after.models.map((m) => m.name).sort(),
  progress_nodes: [...new Set(progress.filter((p) => p.node).map((p) => p.node))].sort(),
  last_status: progress.at(-1)?.status,
  ps: ps.models.map((m) => ({ name: m.name, node: m.node })),
  pull_error: pullError,
}));
