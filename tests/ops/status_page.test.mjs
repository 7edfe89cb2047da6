// The /status page in a real browser (Debian's chromium driven by playwright-core): it renders
// every node, loads nothing from anywhere but the gateway, updates its counts after traffic, and
// shows an ejection with its reason. Leaves a screenshot in $LLMGW_SCREENSHOT_DIR (default: the
// fleet's temporary directory) as status-page.png.

import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { sendTraffic, startFleet, waitUntil } from "./lib/fleet.mjs";

const chromiumBinary = process.env.CHROMIUM_BINARY || "/usr/bin/chromium";

let fleet;
let browser;
let page;
const foreignRequests = [];
const consoleErrors = [];

// The page's numbers as the user reads them.
const totalRequests = async () => Number(await page.textContent("#total-requests"));
const nodeRequests = async () =>
  (await page.$$eval("#nodes td.requests", (cells) => cells.map((c) => Number(c.textContent))))
    .reduce((a, b) => a + b, 0);

before(async () => {
  assert.ok(existsSync(chromiumBinary),
            `${chromiumBinary} is missing: scripts/install-deps installs Debian's chromium`);
  fleet = await startFleet({ nodes: 3 });
  browser = await chromium.launch({
    executablePath: chromiumBinary,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("request", (request) => {
    if (!request.url().startsWith(fleet.url + "/")) foreignRequests.push(request.url());
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
});

test("the page renders every node, the version and the routing mode", async () => {
  const response = await page.goto(fleet.url + "/status?refresh=300");
  assert.equal(response.status(), 200);
  for (const sim of fleet.sims) {
    await page.waitForSelector(`#nodes tr[data-node="${sim.name}"]`, { timeout: 10000 });
    assert.match(await page.textContent(`#nodes tr[data-node="${sim.name}"]`), /healthy/);
  }
  const health = await (await fetch(fleet.url + "/health")).json();
  assert.equal(await page.textContent("#version"), health.version);
  assert.equal(await page.textContent("#status"), "ok");
  assert.match(await page.textContent("#routing"), /bounded loads by sessions/);
  // The page's own loads of /status, /health and /metrics are not requests.
  assert.equal(await totalRequests(), 0);
});

test("the counts, rates and first-token times update after traffic", async () => {
  const statuses = await sendTraffic(fleet.url, { count: 12, sessions: 4 });
  assert.deepEqual(statuses.filter((s) => s !== 200), []);
  await waitUntil("the page to show 12 requests", async () => (await totalRequests()) === 12);
  await waitUntil("the node rows to add up to 12", async () => (await nodeRequests()) === 12);
  await waitUntil("a first-token percentile", async () =>
    /p50 \d/.test(await page.textContent("#ttft")));
  assert.match(await page.textContent("#rate"), /req\/s/);
  const routes = await page.textContent("#routes");
  assert.match(routes, /affinity/);
  assert.match(await page.textContent("#sources"), /header:X-Session-ID|prefix|none/);
  assert.match(await page.textContent("#process"), /resident/);
});

test("an ejected node shows as ejected with the reason", async () => {
  const stopped = fleet.sims[2];
  await stopped.child.stop();
  const row = `#nodes tr[data-node="${stopped.name}"]`;
  await waitUntil("the stopped node to show as ejected", async () =>
    /ejected/.test(await page.textContent(row)), 15000, 200);
  const text = await page.textContent(row);
  assert.match(text, /health check/, text);
  assert.equal(await page.textContent("#status"), "degraded");
  await sendTraffic(fleet.url, { count: 6, sessions: 3, tag: "after" });
  await waitUntil("the page to show 18 requests", async () => (await totalRequests()) === 18);
  const dir = process.env.LLMGW_SCREENSHOT_DIR || fleet.dir;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, "status-page.png"), fullPage: true });
});

test("nothing was loaded from elsewhere and the page logged no error", () => {
  assert.deepEqual(foreignRequests, []);
  assert.deepEqual(consoleErrors, []);
});
