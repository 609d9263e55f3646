/**
 * A local user floods stacd's D-Bus API (issue 15 item 1): as nobody, for
 * FLOOD_SECONDS, list_controllers(true) calls with NO_REPLY_EXPECTED, then
 * the same calls from a client that never reads its replies. stacd manages
 * 1,000 controllers (bench/host/stacd_without_kernel.ts: a fake kernel, as
 * the D-Bus path is what is under test). Throughout, root's process_info
 * must answer within 1 s, stacd's RSS stay under RSS_LIMIT_MB and its
 * health socket answer.
 *
 * Needs no kernel, and its figures are times: the campaign runs it on the
 * host, not in the TCG guest (`deno task faults dbus_flood`), in ~25 s.
 */
import assert from "node:assert/strict";
import { rssMb, spawnComposed } from "../../bench/host/composed.ts";
import { StacClient } from "../../lib/dbus/stac_client.ts";
import { checkHealth } from "../../lib/daemon/health_socket.ts";
import { startPrivateBus } from "../dbus/private_bus.ts";
import { denoAsNobody } from "../dbus/stac_fixture.ts";
import { faultTest, sleep } from "./fault_kit.ts";

const CONTROLLERS = 1_000;
/** Long enough for a backlog to show (the old code lost root within 1 s); short for the campaign. */
const FLOOD_SECONDS = 10;
/** Root's wait for process_info, at most. */
const LATENCY_LIMIT_MS = 1_000;
/** stacd idles at ~60 MB with 1,000 controllers; the old code reached 220-270 MB in 15 s. */
const RSS_LIMIT_MB = 150;
const CLIENT = new URL("../dbus/flood_client.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

interface Figures {
  calls: number;
  maxLatencyMs: number;
  maxRssMb: number;
  unhealthy: number;
  failures: string[];
}

/** Runs the hostile client as nobody while root asks process_info every 100 ms. */
async function underFlood(
  stacd: { pid: number; dir: string },
  bus: { address: string; socketPath: string },
  mode: "flood" | "nonreader",
): Promise<Figures> {
  const figures: Figures = { calls: 0, maxLatencyMs: 0, maxRssMb: 0, unhealthy: 0, failures: [] };
  const root = await StacClient.connect({ address: bus.address, timeoutMs: 5_000 });
  try {
    const client = denoAsNobody([
      "run",
      "--allow-all",
      "--no-check",
      `--config=${CONFIG}`,
      CLIENT,
      bus.socketPath,
      mode,
      String(FLOOD_SECONDS),
    ]);
    let done = false;
    const finished = client.finally(() => done = true);
    // And a little after: what the flood left queued must drain too.
    for (let after = 0; !done || after++ < 10;) {
      const started = performance.now();
      await root.processInfo().catch((e) => figures.failures.push(String(e).slice(0, 100)));
      figures.maxLatencyMs = Math.max(figures.maxLatencyMs, performance.now() - started);
      figures.maxRssMb = Math.max(figures.maxRssMb, rssMb(stacd.pid));
      if (!await checkHealth(stacd.dir)) figures.unhealthy++;
      await sleep(100);
    }
    const ran = await finished;
    assert.equal(ran.code, 0, ran.stderr);
    figures.calls = JSON.parse(ran.stdout).sent;
  } finally {
    await root.close();
  }
  return figures;
}

faultTest("D-Bus flood from nobody (1,000 controllers)", async (record) => {
  // Quiet: the bus logs each of the non-reader's calls past its 128 pending (~200,000 lines).
  await using bus = await startPrivateBus({ quiet: true });
  await using stacd = await spawnComposed({ controllers: CONTROLLERS, busAddress: bus.address });
  await stacd.ready;
  const all: Figures[] = [];
  for (const mode of ["flood", "nonreader"] as const) {
    const f = await underFlood(stacd, bus, mode);
    all.push(f);
    record.notes.push(
      `${mode}: ${f.calls} calls, root max ${Math.round(f.maxLatencyMs)} ms, ` +
        `RSS max ${Math.round(f.maxRssMb)} MB, health failed ${f.unhealthy}x`,
    );
    console.log(record.notes.at(-1));
  }
  record.injected = `${all.reduce((n, f) => n + f.calls, 0)} calls`;
  const healthy = all.every((f) => f.unhealthy === 0 && f.failures.length === 0);
  record.survived = healthy && (await checkHealth(stacd.dir));
  for (const f of all) {
    assert.deepEqual(f.failures, [], "root's process_info failed");
    assert.equal(f.unhealthy, 0, "--health failed during the flood");
    assert.ok(f.maxLatencyMs < LATENCY_LIMIT_MS, `root waited ${f.maxLatencyMs} ms`);
    assert.ok(f.maxRssMb < RSS_LIMIT_MB, `stacd grew to ${f.maxRssMb} MB`);
  }
  // The D-Bus path is under test, not the controllers: the state is the fake kernel's.
  record.stateCorrect = true;
});
