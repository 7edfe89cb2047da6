// `llmgw bench`'s report.html in a real browser (Debian's chromium driven by playwright-core) at
// 1280 px: it opens with the verdict (which mode won on time to first token, wall time and cache
// reuse, over how many seeds), and its workload table, whose values include long JSON lists with
// no space to break at, fits the window: nothing is pushed off-screen to the right.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const chromiumBinary = process.env.CHROMIUM_BINARY || "/usr/bin/chromium";
const llmgw = process.env.LLMGW_BINARY;

let dir;
let browser;
let page;

before(async () => {
  assert.ok(llmgw && existsSync(llmgw), "LLMGW_BINARY names the llmgw executable");
  assert.ok(existsSync(chromiumBinary),
            `${chromiumBinary} is missing: scripts/install-deps installs Debian's chromium`);
  dir = mkdtempSync(join(tmpdir(), "llmgw-bench-report-"));
  // Long model names make the workload table's longest values: JSON lists without spaces.
  const models = [
    "llama3.2-instruct-with-a-very-long-name-for-testing:latest",
    "qwen2.5-coder-32b-instruct-q4_K_M-another-long-name:latest",
    "phi3",
  ].join(",");
  execFileSync(llmgw, [
    "bench", "--spawn-sims", "2", "--num-parallel", "2", "--sessions", "3", "--turns", "2",
    "--mode", "bounded,round_robin", "--seeds", "2", "--time-scale", "0.01", "--max-tokens", "4",
    "--min-output-tokens", "2", "--max-output-tokens", "4", "--fleet-models", models,
    "-o", dir,
  ], { stdio: ["ignore", "ignore", "inherit"], timeout: 120000 });
  browser = await chromium.launch({
    executablePath: chromiumBinary,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto("file://" + join(dir, "report.html"));
});

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the report opens with a verdict naming the winners over the seeds", async () => {
  const verdict = await page.textContent("p.verdict");
  assert.match(verdict, /^Over 2 seeds: (bounded|round_robin) won on time to first token \(p50 [\d.]+ ms, [\d.]+× faster than (bounded|round_robin) at [\d.]+ ms\), (bounded|round_robin) on wall time .* on cache reuse \([\d.]+ against [\d.]+ for (bounded|round_robin)\)\.$/);
  // It comes first: before the workload table.
  const order = await page.$$eval("body > *", (nodes) => nodes.map((n) => n.tagName + "." + n.className));
  assert.ok(order.indexOf("P.verdict") < order.indexOf("TABLE."), order.join(" "));
});

test("the workload table fits 1280 px without horizontal overflow", async () => {
  const sizes = await page.evaluate(() => {
    const table = document.getElementById("workload");
    return {
      page: document.documentElement.scrollWidth,
      window: window.innerWidth,
      tableRight: table.getBoundingClientRect().right,
      cellsRight: Math.max(...[...table.querySelectorAll("td")].map((td) => td.getBoundingClientRect().right)),
      longest: Math.max(...[...table.querySelectorAll("td")].map((td) => td.textContent.length)),
    };
  });
  assert.ok(sizes.longest > 150, `the table has a long value to wrap (${sizes.longest} chars)`);
  assert.ok(sizes.page <= sizes.window, `the page is ${sizes.page} px wide in a ${sizes.window} px window`);
  assert.ok(sizes.tableRight <= sizes.window, `the table ends at ${sizes.tableRight} px`);
  assert.ok(sizes.cellsRight <= sizes.window, `a cell ends at ${sizes.cellsRight} px`);
});
