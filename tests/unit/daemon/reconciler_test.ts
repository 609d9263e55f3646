import assert from "node:assert/strict";
import { FakeClock } from "../../fake_clock.ts";
import type { StacdConfig } from "../../../lib/config/stacd_conf.ts";
import type { DiscoveredPage } from "../../../lib/core/desired_set.ts";
import { decodeLastKnown, encodeLastKnown } from "../../../lib/daemon/last_known_store.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import { type Inputs, Reconciler } from "../../../lib/daemon/reconciler.ts";
import { runningTimerText, terminatorTimerText } from "../../../lib/core/timer_text.ts";
import { TIMERS } from "../../../lib/daemon/timers.ts";
import type { Resolver } from "../../../lib/daemon/host_resolver.ts";
import { makeTid } from "../../../lib/core/transport_id.ts";
import {
  configText,
  controllerLine,
  Deferred,
  FakeKernel,
  HOSTNQN,
  logEntry,
  MemoryStore,
  page,
  settle,
  stacdConfig,
  SUBNQN,
  sysConfig,
} from "../fakes.ts";

const KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";

/** `count` distinct I/O controller addresses, starting at 10.0.0.<from>. */
const addresses = (count: number, from = 1) =>
  Array.from({ length: count }, (_, i) => `10.0.0.${from + i}`);

const SCOPE = "[I/O controller connection management]";
function config(traddrs: readonly string[], head = "", extra: string[] = []): StacdConfig {
  return stacdConfig(configText([...traddrs.map((a) => controllerLine(a)), ...extra], head));
}

/** A reconciler on a fake kernel, a fake clock and an in-memory store. */
function setup(
  options: { kernel?: FakeKernel; store?: MemoryStore; resolver?: Resolver; settleMs?: number } =
    {},
) {
  const clock = new FakeClock();
  const kernel = options.kernel ?? new FakeKernel();
  const store = options.store ?? new MemoryStore();
  const sink = new MemorySink();
  const log = createLogger(sink, { tron: true });
  const reconciler = new Reconciler({
    clock,
    kernel,
    log,
    store,
    resolver: options.resolver,
    resyncMs: TIMERS.resyncMs,
    settleMs: options.settleMs,
  });
  const set = (
    cfg: StacdConfig,
    over: Partial<Inputs> = {},
    flags: { reload?: boolean } = {},
  ) => {
    reconciler.setInputs({
      config: cfg,
      sys: sysConfig(),
      discovered: undefined,
      bootConnections: false,
      retry: TIMERS,
      ...over,
    }, flags);
  };
  /** One pass, and whatever it started (connects, disposals) run to their end. */
  const pass = async () => {
    await reconciler.runPass();
    await settle();
  };
  const advance = async (ms: number) => {
    await clock.advance(ms);
    await settle();
  };
  /** The managed controllers, as the latest pass published them. */
  const managed = () => reconciler.snapshot.controllers;
  const deviceOf = (traddr: string) => managed().find((c) => c.tid.traddr === traddr)?.device;
  const managedAddrs = () => managed().map((c) => c.tid.traddr).sort();
  /** A controller's `retry connect timer`, as D-Bus shows it. */
  const retryText = (traddr: string) => {
    const c = managed().find((c) => c.tid.traddr === traddr)!;
    return runningTimerText(c.retry, c.lastDelayMs, clock.now());
  };
  return {
    clock,
    kernel,
    store,
    sink,
    reconciler,
    set,
    pass,
    advance,
    managed,
    deviceOf,
    managedAddrs,
    retryText,
  };
}

const sorted = (list: readonly string[]) => [...list].sort();
const saved = (store: MemoryStore) => decodeLastKnown(store.text ?? "").entries;

Deno.test("Reconciler connects 32 configured controllers once each", async () => {
  const { kernel, set, pass, managed } = setup();
  const all = addresses(32);
  set(config(all));
  await pass();
  assert.equal(kernel.connects.length, 32);
  assert.deepEqual(sorted(kernel.connects), sorted(all));
  assert.equal(kernel.controllers.length, 32);
  assert.ok(managed().every((c) => c.connected));
  await pass();
  await pass();
  assert.equal(kernel.connects.length, 32, "later passes connect nothing again");
  assert.deepEqual(kernel.disconnects, []);
});

Deno.test("Reconciler disconnects controllers removed from config under only-stas-connections", async () => {
  const { kernel, set, pass, deviceOf, managedAddrs } = setup();
  const all = addresses(32);
  set(config(all));
  await pass();
  const removed = all.slice(0, 8);
  const removedDevices = removed.map(deviceOf);
  const keptDevices = all.slice(8).map(deviceOf);
  const added = addresses(4, 100);
  set(config([...all.slice(8), ...added]), {}, { reload: true });
  await pass();
  assert.deepEqual(sorted(kernel.disconnects), sorted(removedDevices as string[]));
  assert.deepEqual(kernel.connects.slice(32), added);
  assert.deepEqual(all.slice(8).map(deviceOf), keptDevices, "the others keep their devices");
  assert.deepEqual(managedAddrs(), sorted([...all.slice(8), ...added]));
  assert.equal(kernel.controllers.length, 28);
});

Deno.test("Reconciler keeps the connections of removed controllers under no-disconnect", async () => {
  const { kernel, set, pass, managedAddrs } = setup();
  const all = addresses(32);
  const head = `${SCOPE}\ndisconnect-scope=no-disconnect\n`;
  set(config(all, head));
  await pass();
  const added = addresses(4, 100);
  set(config([...all.slice(8), ...added], head), {}, { reload: true });
  await pass();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.connects.slice(32), added);
  assert.equal(kernel.controllers.length, 36);
  assert.deepEqual(managedAddrs(), sorted([...all.slice(8), ...added]));
});

Deno.test("Reconciler disposes of a controller excluded on reload", async () => {
  const { kernel, set, pass, deviceOf, managedAddrs } = setup();
  set(config(["10.0.0.1", "10.0.0.2"]));
  await pass();
  const device = deviceOf("10.0.0.2");
  set(config(["10.0.0.1", "10.0.0.2"], "", ["exclude = traddr=10.0.0.2"]), {}, { reload: true });
  await pass();
  assert.deepEqual(kernel.disconnects, [device]);
  assert.deepEqual(managedAddrs(), ["10.0.0.1"]);
});

Deno.test("Reconciler records the set before it issues the connects", async () => {
  const { kernel, store, set, pass } = setup();
  store.slow = true;
  const seen: [string, string[]][] = [];
  kernel.onConnect = (request) => {
    seen.push([request.target.traddr, saved(store).map((e) => e.tid.traddr)]);
  };
  const all = addresses(4);
  set(config(all));
  await pass();
  assert.equal(seen.length, 4);
  for (const [traddr, recorded] of seen) {
    assert.ok(recorded.includes(traddr), `${traddr} was recorded before its connect`);
  }
  assert.deepEqual(saved(store).map((e) => e.origin), [
    "configured",
    "configured",
    "configured",
    "configured",
  ]);
});

Deno.test("Reconciler.restore() re-creates only entries that still have a kernel connection", async () => {
  const kernel = new FakeKernel();
  const devices = [kernel.add({ traddr: "10.0.0.1" }), kernel.add({ traddr: "10.0.0.2" })];
  const tid = (traddr: string) =>
    makeTid({ transport: "tcp", traddr, trsvcid: "4420", subsysnqn: SUBNQN }, { hostNqn: HOSTNQN });
  const store = new MemoryStore(encodeLastKnown([
    { tid: tid("10.0.0.1"), origin: "configured", device: devices[0] },
    { tid: tid("10.0.0.2"), origin: "discovered", device: devices[1] },
    { tid: tid("10.0.0.3"), origin: "configured", device: "nvme9" }, // gone since
  ]));
  const { reconciler, set, managedAddrs, sink, managed } = setup({ kernel, store });
  set(config([]));
  await reconciler.restore();
  await settle();
  assert.deepEqual(managedAddrs(), ["10.0.0.1", "10.0.0.2"]);
  assert.deepEqual(managed().map((c) => c.origin), ["configured", "discovered"]);
  assert.deepEqual(managed().map((c) => c.device), devices);
  assert.deepEqual(kernel.connects, []);
  assert.match(sink.text(), /Restored 2 controllers from \/run\/stacd\/last-known-config/);
});

Deno.test("Reconciler.restore() followed by a pass does not connect a restored controller twice", async () => {
  const kernel = new FakeKernel();
  kernel.add({ traddr: "10.0.0.1" });
  const tid = makeTid(
    { transport: "tcp", traddr: "10.0.0.1", trsvcid: "4420", subsysnqn: SUBNQN },
    {
      hostNqn: HOSTNQN,
    },
  );
  const store = new MemoryStore(encodeLastKnown([{ tid, origin: "configured", device: "nvme0" }]));
  const { reconciler, set, pass } = setup({ kernel, store });
  set(config(["10.0.0.1", "10.0.0.2"]));
  await reconciler.restore();
  await pass(); // right away: the restored controller may still be looking for its connection
  assert.deepEqual(kernel.connects, ["10.0.0.2"]);
  assert.equal(kernel.controllers.length, 2);
});

Deno.test("Reconciler disconnects a restored controller that left the config", async () => {
  const kernel = new FakeKernel();
  kernel.add({ traddr: "10.0.0.1" });
  const tid = makeTid(
    { transport: "tcp", traddr: "10.0.0.1", trsvcid: "4420", subsysnqn: SUBNQN },
    {
      hostNqn: HOSTNQN,
    },
  );
  const store = new MemoryStore(encodeLastKnown([{ tid, origin: "configured", device: "nvme0" }]));
  const { reconciler, set, pass, managed } = setup({ kernel, store });
  set(config([]));
  await reconciler.restore();
  await pass();
  assert.deepEqual(kernel.disconnects, ["nvme0"]);
  assert.deepEqual(managed(), []);
});

Deno.test("Reconciler.restore() survives a malformed last-known file", async () => {
  const kernel = new FakeKernel();
  kernel.add({ traddr: "10.0.0.1" });
  const { reconciler, set, sink, managed } = setup({
    kernel,
    store: new MemoryStore("\x80not json{"),
  });
  set(config([]));
  await reconciler.restore();
  assert.deepEqual(managed(), []);
  assert.match(sink.text(), /WARNING: Last known config .*: 1 malformed entries ignored/);
});

Deno.test("Reconciler.stop() never disconnects and saves the set", async () => {
  const { kernel, store, reconciler, set, pass } = setup();
  set(config(addresses(3)));
  await pass();
  const savesBefore = store.saves.length;
  await reconciler.stop();
  assert.deepEqual(kernel.disconnects, []);
  assert.equal(kernel.controllers.length, 3);
  assert.ok(store.saves.length > savesBefore, "saved at stop");
  assert.deepEqual(
    saved(store).map((e) => [e.tid.traddr, e.device]),
    addresses(3).map((a) => [a, kernel.controllers.find((k) => k.traddr === a)!.device]),
  );
});

Deno.test("Reconciler.stop() waits for a connect in flight and records its device", async () => {
  const { kernel, store, reconciler, set } = setup();
  const gate = kernel.hold("10.0.0.1");
  set(config(["10.0.0.1"]));
  await reconciler.runPass();
  await settle();
  let stopped = false;
  const done = reconciler.stop().then(() => stopped = true);
  await settle();
  assert.equal(stopped, false);
  gate.resolve();
  await done;
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(saved(store).map((e) => e.device), ["nvme0"]);
});

Deno.test("Reconciler's terminator.audit timer runs while a disposal waits for a connect in flight", async () => {
  const { kernel, reconciler, set, pass, advance, clock } = setup();
  const gate = kernel.hold("10.0.0.1");
  set(config(["10.0.0.1"]));
  await pass();
  assert.equal(terminatorTimerText(reconciler.snapshot.terminator, clock.now()), "30.0s [off]");
  set(config([]));
  await pass();
  assert.equal(
    terminatorTimerText(reconciler.snapshot.terminator, clock.now()),
    "30.0s [30.0s]",
    "waiting for the connect",
  );
  await advance(31_000);
  assert.equal(
    terminatorTimerText(reconciler.snapshot.terminator, clock.now()),
    "30.0s [29.0s]",
    "a new 30 s, as upstream's",
  );
  gate.resolve();
  await settle();
  assert.deepEqual(kernel.disconnects, ["nvme0"]);
  assert.equal(terminatorTimerText(reconciler.snapshot.terminator, clock.now()), "30.0s [off]");
});

Deno.test("Reconciler.stop() during a pass issues no connect and no disconnect", async () => {
  const lookup = new Deferred<{ address: string; family: number }[]>();
  const { kernel, reconciler, set, pass } = setup({ resolver: () => lookup.promise });
  set(config(["10.0.0.1"]));
  await pass();
  const hostName = "controller = transport=tcp;traddr=a.example;trsvcid=4420;nqn=" + SUBNQN;
  set(config(["10.0.0.2"], "", [hostName]));
  const running = reconciler.runPass(); // waits for the host name
  await settle();
  const stopping = reconciler.stop();
  lookup.resolve([{ address: "10.0.0.3", family: 4 }]);
  await Promise.all([running, stopping]);
  await settle();
  assert.deepEqual(kernel.connects, ["10.0.0.1"]);
  assert.deepEqual(kernel.disconnects, []);
});

Deno.test("Reconciler does nothing after stop()", async () => {
  const { kernel, reconciler, set, advance } = setup();
  set(config(["10.0.0.1"]));
  await reconciler.stop();
  const lists = kernel.listCalls;
  reconciler.requestPass(0, "test");
  await advance(10_000);
  await reconciler.runPass();
  assert.equal(kernel.listCalls, lists);
  assert.deepEqual(kernel.connects, []);
});

Deno.test("Reconciler.requestPass() collapses a burst of 100 requests into one pass", async () => {
  const { kernel, reconciler, set, advance } = setup();
  set(config([]));
  for (let i = 0; i < 100; i++) reconciler.requestPass(1_500, `event ${i}`);
  await advance(1_499);
  assert.equal(kernel.listCalls, 0);
  await advance(1);
  assert.equal(kernel.listCalls, 1);
  await advance(60_000);
  assert.equal(kernel.listCalls, 1);
});

Deno.test("Reconciler.requestPass() brings a pending pass forward, never back", async () => {
  const { kernel, reconciler, set, advance } = setup();
  set(config([]));
  reconciler.requestPass(10_000, "test"); // stafd appeared
  reconciler.requestPass(1_500, "test"); // then a log page changed
  reconciler.requestPass(10_000, "test");
  await advance(1_500);
  assert.equal(kernel.listCalls, 1);
  await advance(20_000);
  assert.equal(kernel.listCalls, 1);
});

Deno.test("Reconciler.runPass() during a pass runs one more pass, not one per request", async () => {
  const { kernel, reconciler, set } = setup();
  set(config([]));
  const runs = Array.from({ length: 100 }, () => reconciler.runPass());
  await Promise.all(runs);
  assert.equal(kernel.listCalls, 2);
});

Deno.test("Reconciler never disconnects discovered controllers while stafd's answer is unknown", async () => {
  const { kernel, set, pass, managedAddrs } = setup();
  const pages: DiscoveredPage[] = [
    page([logEntry({ traddr: "10.0.1.1" }), logEntry({ traddr: "10.0.1.2" })]),
  ];
  set(config(["10.0.0.1"]), { discovered: pages });
  await pass();
  assert.equal(kernel.connects.length, 3);
  set(config(["10.0.0.1"]), { discovered: undefined });
  await pass();
  await pass();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(managedAddrs(), ["10.0.0.1", "10.0.1.1", "10.0.1.2"]);
  // stafd answers again, with one subsystem less.
  set(config(["10.0.0.1"]), { discovered: [page([logEntry({ traddr: "10.0.1.2" })])] });
  await pass();
  assert.equal(kernel.disconnects.length, 1);
  assert.deepEqual(managedAddrs(), ["10.0.0.1", "10.0.1.2"]);
  assert.equal(kernel.connects.length, 3);
});

const AUDIT = `${SCOPE}\ndisconnect-scope=all-connections-matching-disconnect-trtypes\n`;

/** A kernel with connections made by someone else: tcp, rdma and PCIe. */
function strangers(): FakeKernel {
  const kernel = new FakeKernel();
  kernel.add({ device: "nvme0", traddr: "10.0.9.1" });
  kernel.add({ device: "nvme1", traddr: "10.0.9.2", transport: "rdma" });
  kernel.add({ device: "nvme2", transport: "pcie", traddr: "0000:01:00.0", trsvcid: "" });
  return kernel;
}

Deno.test("Reconciler audit adopts but never disconnects while stafd's answer is unknown", async () => {
  const { kernel, set, pass, managed } = setup({ kernel: strangers() });
  set(config([], AUDIT), { discovered: undefined });
  await pass();
  await pass();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(managed().map((c) => [c.origin, c.device]), [
    ["audited", "nvme0"],
  ]);
  assert.deepEqual(kernel.connects, []);
  // stafd answers: now the whole desired set is known, and nvme0 is not in it.
  set(config([], AUDIT), { discovered: [] });
  await pass();
  assert.deepEqual(kernel.disconnects, ["nvme0"]);
  assert.deepEqual(kernel.devices, ["nvme1", "nvme2"]);
  assert.deepEqual(managed(), []);
});

Deno.test("Reconciler audit disconnects an unmanaged tcp connection when discovered is known and no NBFT", async () => {
  const { kernel, set, pass, sink } = setup({ kernel: strangers() });
  set(config([], AUDIT), { discovered: [] });
  await pass();
  assert.deepEqual(kernel.disconnects, ["nvme0"]);
  assert.deepEqual(
    kernel.devices,
    ["nvme1", "nvme2"],
    "rdma is not in disconnect-trtypes; PCIe never",
  );
  assert.match(sink.text(), /nvme0 - Not wanted \(all-connections-matching-disconnect-trtypes\)/);
});

Deno.test("Reconciler audit disconnects nothing when the firmware lists boot connections", async () => {
  const { kernel, set, pass, managed } = setup({ kernel: strangers() });
  set(config([], AUDIT), { discovered: [], bootConnections: true });
  await pass();
  await pass();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(managed().map((c) => c.origin), ["audited"]);
});

Deno.test("Reconciler audit leaves a wanted connection to its controller, which adopts it", async () => {
  const { kernel, set, pass, managed } = setup({ kernel: strangers() });
  set(config(["10.0.9.1"], AUDIT), { discovered: [] });
  await pass();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.connects, []);
  assert.deepEqual(managed().map((c) => [c.origin, c.device]), [
    ["configured", "nvme0"],
  ]);
});

Deno.test("Reconciler does not audit under only-stas-connections", async () => {
  const { kernel, set, pass, managed } = setup({ kernel: strangers() });
  set(config([]), { discovered: [] });
  await pass();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(managed(), []);
});

Deno.test("Reconciler retries a controller whose device vanished from sysfs without a udev event", async () => {
  const { kernel, set, pass, advance, deviceOf, managed, retryText } = setup();
  set(config(["10.0.0.1"]));
  await pass();
  kernel.vanish(deviceOf("10.0.0.1")!);
  await pass();
  assert.equal(managed()[0]!.phase, "waiting");
  assert.equal(retryText("10.0.0.1"), "3.0s [3.0s]");
  await advance(3_000);
  assert.equal(kernel.connects.length, 2);
  assert.equal(managed()[0]!.connected, true);
});

Deno.test("Reconciler makes the owner of a device udev removed reconnect in 3 s", async () => {
  const { kernel, reconciler, set, pass, advance, deviceOf } = setup();
  set(config(["10.0.0.1", "10.0.0.2"]));
  await pass();
  const device = deviceOf("10.0.0.2")!;
  kernel.vanish(device);
  reconciler.requestPass(0, `udev remove ${device}`);
  await settle();
  await advance(2_999);
  assert.equal(kernel.connects.length, 2);
  await advance(1);
  assert.deepEqual(kernel.connects.slice(2), ["10.0.0.2"]);
  assert.ok(deviceOf("10.0.0.2"));
});

Deno.test("Reconciler reload retries a controller that gave up at once", async () => {
  const head = `${SCOPE}\nconnect-attempts-on-ncc=2\n`;
  const discovered = [page([logEntry({ traddr: "10.0.1.1", eflags: "4" })])];
  const { kernel, set, pass, advance, managed } = setup();
  kernel.script("10.0.1.1", new Error("refused"), new Error("refused"));
  set(config([], head), { discovered });
  await pass();
  await advance(3_000);
  assert.equal(managed()[0]!.phase, "given-up");
  await pass();
  assert.equal(kernel.connects.length, 2, "a plain pass does not retry it");
  set(config([], head), { discovered }, { reload: true });
  await pass();
  assert.equal(kernel.connects.length, 3);
  assert.equal(managed()[0]!.connected, true);
});

Deno.test("Reconciler reload gives a controller that gave up one attempt, not a new count", async () => {
  const head = `${SCOPE}\nconnect-attempts-on-ncc=2\n`;
  const discovered = [page([logEntry({ traddr: "10.0.1.1", eflags: "4" })])];
  const { kernel, set, pass, advance, managed } = setup();
  kernel.script("10.0.1.1", ...Array.from({ length: 5 }, () => new Error("refused")));
  set(config([], head), { discovered });
  await pass();
  await advance(3_000);
  assert.equal(managed()[0]!.phase, "given-up");
  set(config([], head), { discovered }, { reload: true });
  await pass();
  assert.equal(kernel.connects.length, 3, "retried at once");
  const [c] = managed();
  assert.equal(c!.attempts, 3, "the count goes on");
  assert.equal(c!.phase, "given-up", "and it gives up again at once");
  assert.equal(c!.retry, undefined, "no retry timer");
  await advance(120_000);
  assert.equal(kernel.connects.length, 3);
});

Deno.test("Reconciler applies connect-attempts-on-ncc to a controller both configured and discovered", async () => {
  const head = `${SCOPE}\nconnect-attempts-on-ncc=2\n`;
  const dlpe = logEntry({ traddr: "10.0.0.1", eflags: "4" });
  const { kernel, set, pass, advance, managed } = setup();
  kernel.script("10.0.0.1", ...Array.from({ length: 5 }, () => new Error("refused")));
  set(config(["10.0.0.1"], head), { discovered: [page([dlpe])] });
  await pass();
  await advance(3_000);
  await advance(60_000);
  const [m] = managed();
  assert.equal(managed().length, 1);
  assert.equal(m!.origin, "configured");
  assert.deepEqual(m!.dlpe, dlpe, "list_controllers(true) shows it");
  assert.equal(kernel.connects.length, 2);
  assert.equal(m!.phase, "given-up");
  set(config(["10.0.0.1"], head), { discovered: undefined });
  await pass();
  const [after] = managed();
  assert.deepEqual(after!.dlpe, dlpe, "stafd's answer unknown: the entry and its NCC bit stay");
  assert.equal(after!.ncc, true);
  assert.equal(after!.phase, "given-up");
  assert.equal(kernel.connects.length, 2, "no retry because stafd went quiet");
});

Deno.test("Reconciler retries a given-up controller at once when a new log page clears NCC", async () => {
  const head = `${SCOPE}\nconnect-attempts-on-ncc=2\n`;
  const { kernel, set, pass, advance, managed } = setup();
  kernel.script("10.0.1.1", new Error("refused"), new Error("refused"));
  set(config([], head), {
    discovered: [page([logEntry({ traddr: "10.0.1.1", eflags: "4" })])],
  });
  await pass();
  await advance(3_000);
  assert.equal(managed()[0]!.phase, "given-up");
  set(config([], head), {
    discovered: [page([logEntry({ traddr: "10.0.1.1", eflags: "0" })])],
  });
  await pass();
  assert.equal(kernel.connects.length, 3);
  assert.equal(managed()[0]!.connected, true);
});

Deno.test("Reconciler never writes a DH-HMAC-CHAP key to the last-known config", async () => {
  const { store, set, pass, kernel } = setup();
  set(
    config([], "", [controllerLine("10.0.0.1", `;dhchap-secret=${KEY};dhchap-ctrl-secret=${KEY}`)]),
    {
      sys: sysConfig({ hostKey: KEY }),
    },
  );
  await pass();
  assert.equal(kernel.connects.length, 1);
  assert.ok(store.saves.length > 0);
  for (const text of store.saves) {
    assert.ok(!text.includes("DHHC-1"), text);
    assert.ok(!text.includes("ia6zGodOr4SEG0Zzaw398rpY"), text);
  }
});

Deno.test("Reconciler reports a skipped entry once, not at every pass", async () => {
  const { set, pass, sink } = setup();
  const discovered = [page([logEntry({ traddr: "10.0.1.1", treq: "required" })])];
  set(config([]), { discovered });
  await pass();
  await pass();
  await pass();
  const lines = sink.lines.filter((l) => l.line.includes("Requires a secure channel"));
  assert.equal(lines.length, 1);
});

Deno.test("Reconciler never connects a TLS entry of a Linux target (TREQ 5) and warns once", async () => {
  const { kernel, set, pass, advance, sink } = setup();
  const discovered = [page([logEntry({ traddr: "10.0.1.1", treq: "5" })])];
  set(config([]), { discovered });
  await pass();
  await advance(180_000);
  await pass();
  assert.deepEqual(kernel.connects, [], "no plain-text connect, no retries");
  const lines = sink.lines.filter((l) => l.line.includes("Requires a secure channel"));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!.line, /^WARNING: \(tcp, 10\.0\.1\.1, 4420, /);
});

Deno.test("Reconciler connects a configured host name at the address the resolver gives", async () => {
  const asked: string[] = [];
  const resolver: Resolver = (name) => {
    asked.push(name);
    return Promise.resolve([{ address: "10.0.0.7", family: 4 }]);
  };
  const { kernel, set, pass } = setup({ resolver });
  const line = "controller = transport=tcp;traddr=array.example;trsvcid=4420;nqn=" + SUBNQN;
  set(config([], "", [line]));
  await pass();
  await pass();
  assert.deepEqual(kernel.connects, ["10.0.0.7"]);
  assert.deepEqual(asked, ["array.example"], "once per inputs, not per pass");
  set(config([], "", [line]), {}, { reload: true });
  await pass();
  assert.deepEqual(asked, ["array.example", "array.example"], "a reload looks again");
});

Deno.test("Reconciler does not move a controller when round-robin DNS answers in turns", async () => {
  let n = 0;
  const resolver: Resolver = () =>
    Promise.resolve(
      n++ % 2 === 0
        ? [{ address: "10.0.0.1", family: 4 }, { address: "10.0.0.2", family: 4 }]
        : [{ address: "10.0.0.2", family: 4 }, { address: "10.0.0.1", family: 4 }],
    );
  const { kernel, reconciler, set, pass, advance } = setup({ resolver });
  const line = "controller = transport=tcp;traddr=array.example;trsvcid=4420;nqn=" + SUBNQN;
  kernel.script("10.0.0.1", new Error("Connection refused"));
  set(config([], "", [line]));
  await pass();
  await advance(10_000); // a retry, the connect returning: passes on the same inputs
  reconciler.requestPass(0, "udev remove nvme9");
  await advance(TIMERS.resyncMs);
  assert.deepEqual(kernel.connects, ["10.0.0.1", "10.0.0.1"]);
  assert.deepEqual(kernel.disconnects, []);
});

Deno.test("Reconciler keeps its timer after a pass that failed: retries go on", async () => {
  const { kernel, set, pass, advance, managed, sink } = setup();
  kernel.script("10.0.0.1", new Error("Connection refused"));
  set(config(["10.0.0.1"]));
  await pass();
  const list = kernel.list.bind(kernel);
  kernel.list = () => {
    kernel.list = list;
    return Promise.reject(new Error("Input/output error"));
  };
  await advance(3_000); // the retry's pass fails
  assert.match(sink.text(), /ERROR: Reconcile pass failed: Error: Input\/output error/);
  assert.equal(kernel.connects.length, 1);
  await advance(2_999); // a failed pass is not run again in a tight loop
  assert.equal(kernel.connects.length, 1);
  await advance(1);
  assert.equal(kernel.connects.length, 2);
  assert.equal(managed()[0]!.connected, true);
});

Deno.test("Reconciler gives a reload that lands during a pass its own retry", async () => {
  const lookup = new Deferred<{ address: string; family: number }[]>();
  const { kernel, reconciler, set, pass, managed } = setup({ resolver: () => lookup.promise });
  const badKey = { sys: sysConfig({ hostKeyProblem: "the host key is malformed" }) };
  set(config(["10.0.0.1"]), badKey);
  await pass();
  assert.equal(managed()[0]!.phase, "given-up", "refused: no usable key");
  const name = "controller = transport=tcp;traddr=a.example;trsvcid=4420;nqn=" + SUBNQN;
  set(config(["10.0.0.1"], "", [name]), badKey); // this pass waits for the name
  const running = reconciler.runPass();
  await settle();
  set(config(["10.0.0.1"], "", [name]), {}, { reload: true }); // the reload fixes the key
  lookup.resolve([{ address: "10.0.0.3", family: 4 }]);
  await running;
  await pass();
  assert.equal(managed().find((c) => c.tid.traddr === "10.0.0.1")?.connected, true);
  assert.ok(kernel.connects.includes("10.0.0.1"));
});

Deno.test("Reconciler keeps the connection of a controller wanted again while its disposal waits", async () => {
  const { kernel, set, pass, managed } = setup();
  const gate = kernel.hold("10.0.0.1");
  set(config(["10.0.0.1"]));
  await pass();
  set(config([])); // leaves the set: its disposal waits for the connect
  await pass();
  set(config(["10.0.0.1"])); // and comes back
  await pass();
  assert.deepEqual(kernel.connects, ["10.0.0.1"], "no second connect meanwhile");
  gate.resolve();
  await settle();
  await settle();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.connects, ["10.0.0.1"]);
  assert.equal(managed()[0]?.device, "nvme0", "the new record adopted it");
});

Deno.test("Reconciler runs one more pass for a request made during a pass", async () => {
  let lookups = 0;
  const resolver: Resolver = async () => {
    lookups++;
    // A real wait, long enough for the request's timer to fire meanwhile.
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    return []; // nothing to connect: only the passes count
  };
  const { kernel, reconciler, set } = setup({ resolver });
  const line = "controller = transport=tcp;traddr=array.example;trsvcid=4420;nqn=" + SUBNQN;
  set(config([], "", [line]));
  const first = reconciler.runPass();
  set(config([], "", [line])); // new inputs: the next pass waits for its lookup too
  reconciler.requestPass(0, "stafd changed");
  await first;
  await settle();
  await settle();
  assert.equal(kernel.listCalls, 2, "the first, and the one asked for");
  assert.equal(lookups, 2);
});

Deno.test("Reconciler with everything connected looks at nothing for a minute", async () => {
  const { kernel, set, pass, advance } = setup();
  set(config(addresses(8)));
  await pass();
  const lists = kernel.listCalls;
  await advance(60_000);
  assert.equal(kernel.listCalls, lists);
});

Deno.test("Reconciler keeps connecting when the last-known config cannot be saved", async () => {
  const store = new MemoryStore();
  store.save = () => Promise.reject(new Error("Read-only file system"));
  const { kernel, set, pass, sink } = setup({ store });
  set(config(["10.0.0.1"]));
  await pass();
  assert.deepEqual(kernel.connects, ["10.0.0.1"]);
  assert.match(sink.text(), /WARNING: Unable to save last known config .*: Read-only file system/);
});

Deno.test("Reconciler looks at the kernel every resync period even when nothing asks", async () => {
  const { kernel, set, pass, advance, managed } = setup();
  set(config(["10.0.0.1"]));
  await pass();
  const lists = kernel.listCalls;
  kernel.vanish("nvme0"); // and udev's event is lost
  await advance(TIMERS.resyncMs - 1);
  assert.equal(kernel.listCalls, lists);
  await advance(1);
  assert.equal(kernel.listCalls, lists + 1);
  assert.equal(managed()[0]!.phase, "waiting", "the resync saw the device gone");
  await advance(TIMERS.fastRetryMs);
  assert.equal(managed()[0]!.device, "nvme1");
});

Deno.test("Reconciler publishes a frozen snapshot per pass, never changed afterwards", async () => {
  const { kernel, reconciler, set, pass } = setup();
  set(config(["10.0.0.1"]));
  await pass();
  const before = reconciler.snapshot;
  assert.ok(Object.isFrozen(before) && Object.isFrozen(before.controllers));
  assert.ok(before.controllers.every((c) => Object.isFrozen(c)));
  kernel.vanish("nvme0");
  await pass();
  assert.equal(before.controllers[0]!.device, "nvme0", "the old snapshot still says what it saw");
  assert.notEqual(reconciler.snapshot, before);
});

Deno.test("Reconciler tells in the debug log why a pass runs", async () => {
  const { reconciler, set, advance, sink } = setup();
  set(config([]));
  reconciler.requestPass(100, "udev remove nvme3");
  reconciler.requestPass(50, "stafd changed");
  await advance(100);
  assert.match(sink.text(), /DEBUG: Reconcile pass \(udev remove nvme3, stafd changed\)/);
});

Deno.test("Reconciler never judges a connect by a kernel read older than its return", async () => {
  const { kernel, reconciler, set, pass, managed, sink } = setup();
  const gate = kernel.hold("10.0.0.1");
  set(config(["10.0.0.1"]));
  await pass();
  const list = kernel.list.bind(kernel);
  kernel.list = async () => {
    kernel.list = list;
    const read = await list(); // read now, handed over a turn later
    gate.resolve(); // meanwhile the connect returns
    await new Promise((resolve) => setTimeout(resolve, 0));
    return read;
  };
  await reconciler.runPass();
  await settle();
  await settle();
  assert.equal(managed()[0]!.device, "nvme0");
  assert.doesNotMatch(sink.text(), /removed by the kernel/);
});

Deno.test("Reconciler takes in a burst of 32 returning connects with one pass after the settle time", async () => {
  const { kernel, reconciler, set, advance, managed } = setup({ settleMs: 500 });
  const gates = addresses(32).map((a) => kernel.hold(a));
  set(config(addresses(32)));
  await reconciler.runPass();
  const lists = kernel.listCalls;
  for (const [i, gate] of gates.entries()) {
    gate.resolve();
    await advance(i % 8 === 7 ? 100 : 0); // returning over 400 ms
  }
  assert.equal(kernel.listCalls, lists, "none during the burst");
  await advance(100); // 500 ms after the first returned
  assert.equal(kernel.listCalls, lists + 1, "one pass for the whole burst");
  await advance(5_000);
  assert.equal(kernel.listCalls, lists + 1);
  assert.ok(managed().every((c) => c.connected));
});
