import assert from "node:assert/strict";
import { parseStafdConfig, type StafdConfig } from "../../../lib/config/stafd_conf.ts";
import { DISCOVERY_NQN } from "../../../lib/core/connect_request.ts";
import { ConnectError } from "../../../lib/core/kernel_api.ts";
import {
  FAILED_PASS_BACKOFF_MS,
  Finder,
  FINDER_TIMERS,
  type FinderSnapshot,
  MAX_REFERRED_DCS,
  MAX_TOTAL_ENTRIES,
  STOP_WAIT_MS,
} from "../../../lib/finder/finder.ts";
import { decodePageCache } from "../../../lib/finder/page_cache.ts";
import { createLogger } from "../../../lib/logger.ts";
import type { UdevEvent } from "../../../lib/kernel/udev_event.ts";
import { FakeClock } from "../../fake_clock.ts";
import { MemorySink } from "../../memory_sink.ts";
import {
  Deferred,
  FakeDiscoveryKernel,
  HOSTNQN,
  logEntry,
  MemoryStore,
  settle,
  sysConfig,
} from "../fakes.ts";

const DC1 = "192.168.1.10";
const DC2 = "192.168.1.11";

function config(lines: string[], head = ""): StafdConfig {
  const { config, diagnostics } = parseStafdConfig(
    `${head}\n[Controllers]\n${lines.join("\n")}\n`,
    "/etc/stas/stafd.conf",
  );
  const errors = diagnostics.filter((d) => d.level !== "info");
  if (errors.length > 0) throw new Error(`bad test config: ${errors[0]!.message}`);
  return config;
}

const dcLine = (traddr: string, extra = "") =>
  `controller = transport=tcp;traddr=${traddr};trsvcid=8009${extra}`;

/** A uevent of the nvme subsystem for `device`. */
const uevent = (action: "change" | "remove", device: string, properties = {}): UdevEvent => ({
  action,
  sysname: device,
  devpath: `/devices/virtual/nvme-fabrics/ctl/${device}`,
  subsystem: "nvme",
  properties,
});

/** The pages the connector gets (lib/finder/in_process.ts's rule): undefined while a DC is unknown. */
function discoveredPages(snapshot: FinderSnapshot): { entries: unknown[] }[] | undefined {
  if (snapshot.dcs.some((dc) => !dc.known)) return undefined;
  return snapshot.dcs.map((dc) => ({ entries: [...dc.entries ?? []] }));
}

const referral = (traddr: string) =>
  logEntry({ subtype: "referral", traddr, trsvcid: "8009", subnqn: DISCOVERY_NQN });

function setup(
  lines: string[] = [dcLine(DC1)],
  options: { store?: MemoryStore; sys?: Partial<ReturnType<typeof sysConfig>> } = {},
) {
  const clock = new FakeClock();
  const kernel = new FakeDiscoveryKernel();
  const sink = new MemorySink();
  const log = createLogger(sink, { tron: true });
  const store = options.store ?? new MemoryStore();
  let snapshot: FinderSnapshot = { dcs: [] };
  const events: string[] = [];
  const finder = new Finder({
    clock,
    kernel,
    log,
    store,
    timers: FINDER_TIMERS,
    publish: (s) => snapshot = s,
    onPageRead: (dc) => {
      events.push(`read ${dc.device}`);
      // What a listener sees when told: the snapshot must already hold the page.
      const published = snapshot.dcs.find((d) => d.key === dc.key);
      events.push(`published ${published?.entries?.length ?? "none"}`);
    },
    onRemoved: () => events.push("removed"),
  });
  const inputs = (lines: string[]) => ({
    config: config(lines),
    sys: sysConfig(),
    resolved: new Map(),
  });
  return {
    clock,
    kernel,
    sink,
    store,
    finder,
    events,
    inputs,
    start: () => finder.start(inputs(lines)),
    get snapshot() {
      return snapshot;
    },
    dc(traddr: string) {
      return snapshot.dcs.find((dc) => dc.tid.traddr === traddr);
    },
  };
}

Deno.test("a configured DC is connected, its page read and published, with DC options only", async () => {
  const t = setup([dcLine(DC1, ";nr-io-queues=4;kato=15")]);
  t.kernel.pages.set(DC1, [logEntry({ traddr: "10.0.0.1" }), logEntry({ traddr: "10.0.0.2" })]);
  await t.start();
  await settle();
  assert.deepEqual(t.kernel.connects, [DC1]);
  const request = t.kernel.calls.find((c) => c.op === "connect")!;
  assert.ok(request.op === "connect");
  assert.equal(request.request.target.subsysnqn, DISCOVERY_NQN);
  assert.equal(request.request.options?.kato, 15);
  assert.equal(request.request.options?.nrIoQueues, undefined, "no I/O queue option for a DC");
  const dc = t.dc(DC1)!;
  assert.equal(dc.phase, "connected");
  assert.deepEqual(dc.entries?.map((e) => e.traddr), ["10.0.0.1", "10.0.0.2"]);
  assert.equal(dc.origin, "configured");
  assert.deepEqual(t.events, [`read ${dc.device}`, "published 2"], "told after publishing");
  assert.equal(discoveredPages(t.snapshot)?.[0]?.entries.length, 2);
  assert.equal(t.clock.pending, 0, "idle: no timer");
});

Deno.test("an existing DC connection is adopted, not made twice", async () => {
  const t = setup();
  const device = t.kernel.add({
    traddr: DC1,
    trsvcid: "8009",
    subsysnqn: DISCOVERY_NQN,
    cntrltype: "discovery",
  });
  t.kernel.pages.set(DC1, [logEntry()]);
  await t.start();
  await settle();
  assert.deepEqual(t.kernel.connects, []);
  assert.equal(t.dc(DC1)?.device, device);
  assert.deepEqual(t.kernel.reads, [device]);
});

Deno.test("a TP8013 DC with its own NQN is adopted for a well-known NQN entry; an I/O controller never", async () => {
  const t = setup();
  t.kernel.add({ traddr: DC1, trsvcid: "8009", subsysnqn: "nqn.x:io", cntrltype: "io" });
  const dc = t.kernel.add({
    traddr: DC1,
    trsvcid: "8009",
    subsysnqn: "nqn.2014-08.com.example:unique-dc",
    cntrltype: "discovery",
  });
  await t.start();
  await settle();
  assert.deepEqual(t.kernel.connects, []);
  assert.equal(t.dc(DC1)?.device, dc);
});

Deno.test("a referral is followed; when it leaves the page, its DC is disconnected", async () => {
  const t = setup();
  t.kernel.pages.set(DC1, [logEntry(), referral(DC2)]);
  t.kernel.pages.set(DC2, [logEntry({ traddr: "10.0.0.9" })]);
  await t.start();
  await settle();
  await settle(); // DC2 is connected and read two passes after DC1's page
  assert.deepEqual(t.kernel.connects, [DC1, DC2]);
  const referred = t.dc(DC2)!;
  assert.equal(referred.origin, "referral");
  assert.deepEqual(referred.entries?.map((e) => e.traddr), ["10.0.0.9"]);

  t.kernel.pages.set(DC1, [logEntry()]);
  t.finder.udevEvent(uevent("change", t.dc(DC1)!.device!, { NVME_AEN: "0x70f002" }));
  await settle();
  await t.clock.advance(FINDER_TIMERS.settleMs);
  await settle();
  assert.deepEqual(t.kernel.disconnects, [referred.device]);
  assert.equal(t.dc(DC2), undefined);
  assert.ok(t.events.includes("removed"));
});

Deno.test("a discovery-log-changed AEN re-reads that DC's page only; other events are ignored", async () => {
  const t = setup([dcLine(DC1), dcLine(DC2)]);
  await t.start();
  await settle();
  const [d1, d2] = [t.dc(DC1)!.device!, t.dc(DC2)!.device!];
  t.kernel.reads.length = 0;
  t.kernel.pages.set(DC1, [logEntry({ traddr: "10.0.0.7" })]);
  t.finder.udevEvent(uevent("change", d1, { NVME_AEN: "0x70f002" }));
  t.finder.udevEvent(uevent("change", d2, { NVME_AEN: "0x000001" }));
  t.finder.udevEvent(uevent("change", "nvme99", { NVME_AEN: "0x70f002" }));
  await settle();
  assert.deepEqual(t.kernel.reads, [d1]);
  assert.deepEqual(t.dc(DC1)?.entries?.map((e) => e.traddr), ["10.0.0.7"]);
  t.finder.udevEvent(uevent("change", d2, { NVME_EVENT: "connected" }));
  await settle();
  assert.deepEqual(t.kernel.reads, [d1, d2], "a kernel reconnect re-reads");
});

Deno.test("an AEN storm costs one read in flight and one after it", async () => {
  const t = setup();
  await t.start();
  await settle();
  const device = t.dc(DC1)!.device!;
  t.kernel.reads.length = 0;
  const gate = new Deferred<ReturnType<typeof logEntry>[]>();
  t.kernel.pages.set(DC1, gate);
  for (let i = 0; i < 20; i++) {
    t.finder.udevEvent(uevent("change", device, { NVME_AEN: "0x70f002" }));
    await settle();
  }
  t.kernel.pages.set(DC1, [logEntry()]);
  gate.resolve([]);
  await settle();
  assert.deepEqual(t.kernel.reads, [device, device]);
});

Deno.test("a failed read keeps the entries and is retried 20 s later", async () => {
  const t = setup();
  t.kernel.pages.set(DC1, [logEntry()]);
  await t.start();
  await settle();
  const device = t.dc(DC1)!.device!;
  t.kernel.pages.set(DC1, new ConnectError("cannot read the discovery log page: timed out"));
  t.finder.udevEvent(uevent("change", device, { NVME_AEN: "0x70f002" }));
  await settle();
  assert.equal(t.dc(DC1)?.entries?.length, 1, "entries kept");
  assert.equal(t.dc(DC1)?.fetchFailures, 1);
  assert.match(
    t.sink.text(),
    /Failed to retrieve log pages \(cannot read .*timed out\); entries kept/,
  );
  t.kernel.pages.set(DC1, [logEntry(), logEntry({ traddr: "10.0.0.3" })]);
  await t.clock.advance(FINDER_TIMERS.fetchRetryMs - 1);
  await settle();
  assert.equal(t.dc(DC1)?.entries?.length, 1);
  await t.clock.advance(1);
  await settle();
  assert.equal(t.dc(DC1)?.entries?.length, 2);
  assert.equal(t.dc(DC1)?.fetchFailures, 0);
});

Deno.test("a page the target garbled is refused whole; the entries stay", async () => {
  const t = setup();
  t.kernel.pages.set(DC1, [logEntry()]);
  await t.start();
  await settle();
  const device = t.dc(DC1)!.device!;
  t.kernel.discoveryLog = () => Promise.resolve(new Uint8Array(100));
  t.finder.udevEvent(uevent("change", device, { NVME_AEN: "0x70f002" }));
  await settle();
  assert.equal(t.dc(DC1)?.entries?.length, 1);
  assert.match(t.sink.text(), /shorter than its header/);
});

Deno.test("a DC the kernel removed keeps its entries and reconnects 3 s later", async () => {
  const t = setup();
  t.kernel.pages.set(DC1, [logEntry()]);
  await t.start();
  await settle();
  const device = t.dc(DC1)!.device!;
  t.kernel.vanish(device);
  t.finder.udevEvent(uevent("remove", device));
  await t.clock.advance(FINDER_TIMERS.settleMs);
  await settle();
  assert.equal(t.dc(DC1)?.phase, "waiting");
  assert.equal(t.dc(DC1)?.entries?.length, 1, "entries kept while it reconnects");
  assert.equal(discoveredPages(t.snapshot)?.[0]?.entries.length, 1);
  await t.clock.advance(FINDER_TIMERS.fastRetryMs);
  await settle();
  assert.deepEqual(t.kernel.connects, [DC1, DC1]);
  assert.equal(t.dc(DC1)?.phase, "connected");
  assert.equal(t.kernel.reads.length, 2, "read again after the reconnect");
});

Deno.test("a DC that cannot be reached is retried 3 s, then every 60 s; its page is unknown", async () => {
  const t = setup();
  const refused = () =>
    new ConnectError("Failed to write to /dev/nvme-fabrics: Connection refused");
  t.kernel.script(DC1, refused(), refused(), refused());
  await t.start();
  await settle();
  assert.equal(t.dc(DC1)?.entries, undefined);
  assert.equal(discoveredPages(t.snapshot), undefined, "unknown, not empty");
  await t.clock.advance(FINDER_TIMERS.fastRetryMs);
  await settle();
  assert.equal(t.kernel.connects.length, 2);
  await t.clock.advance(FINDER_TIMERS.slowRetryMs - 1);
  await settle();
  assert.equal(t.kernel.connects.length, 2);
  await t.clock.advance(1);
  await settle();
  assert.equal(t.kernel.connects.length, 3);
});

Deno.test("a DC removed from the configuration is disconnected and dc_removed is told", async () => {
  const t = setup([dcLine(DC1), dcLine(DC2)]);
  await t.start();
  await settle();
  const device = t.dc(DC2)!.device!;
  t.finder.setInputs(t.inputs([dcLine(DC1)]));
  await settle();
  assert.deepEqual(t.kernel.disconnects, [device]);
  assert.equal(t.events.filter((e) => e === "removed").length, 1);
  assert.equal(t.snapshot.dcs.length, 1);
});

Deno.test("stop keeps persistent DC connections, or disconnects them all", async () => {
  for (const disconnect of [false, true]) {
    const t = setup([dcLine(DC1), dcLine(DC2)]);
    await t.start();
    await settle();
    const devices = t.snapshot.dcs.map((dc) => dc.device);
    await t.finder.stop({ disconnect });
    assert.deepEqual(t.kernel.disconnects, disconnect ? devices : []);
  }
});

Deno.test("a restart serves the cached pages at once, and adopts instead of connecting", async () => {
  const first = setup();
  first.kernel.pages.set(DC1, [logEntry(), logEntry({ traddr: "10.0.0.2" })]);
  await first.start();
  await settle();
  await first.finder.stop({ disconnect: false });
  const cached = decodePageCache(first.store.text!);
  assert.equal(cached.entries[0]?.entries.length, 2);

  const again = setup([dcLine(DC1)], { store: first.store });
  again.kernel.controllers = first.kernel.controllers;
  const gate = new Deferred<ReturnType<typeof logEntry>[]>();
  again.kernel.pages.set(DC1, gate);
  await again.start();
  await settle();
  assert.deepEqual(again.kernel.connects, []);
  assert.equal(again.dc(DC1)?.entries?.length, 2, "cached entries while the read runs");
  gate.resolve([logEntry()]);
  await settle();
  assert.equal(again.dc(DC1)?.entries?.length, 1);
});

Deno.test("a cache someone garbled is dropped with a warning, not trusted", async () => {
  const t = setup([dcLine(DC1)], { store: new MemoryStore('{"version":1,"dcs":[{"traddr":1}]}') });
  await t.start();
  await settle();
  assert.match(t.sink.text(), /Page cache: 1 unreadable entries dropped/);
  assert.equal(t.snapshot.dcs.length, 1);
});

Deno.test(`referrals add at most ${MAX_REFERRED_DCS} DCs, whatever a page says`, async () => {
  const t = setup();
  t.kernel.pages.set(
    DC1,
    Array.from({ length: 200 }, (_, i) => referral(`10.1.${i >> 8}.${i & 255}`)),
  );
  await t.start();
  await settle();
  assert.equal(t.snapshot.dcs.length, 1 + MAX_REFERRED_DCS);
  assert.match(t.sink.text(), /200 referred discovery controllers: only 64 are used/);
});

Deno.test("an excluded referral is not followed; a referral to itself is one DC", async () => {
  const t = setup([dcLine(DC1), `exclude = traddr=${DC2}`]);
  t.kernel.pages.set(DC1, [referral(DC2), referral(DC1)]);
  await t.start();
  await settle();
  assert.deepEqual(t.snapshot.dcs.map((dc) => dc.tid.traddr), [DC1]);
  assert.equal(t.dc(DC1)?.origin, "configured");
  assert.equal(t.dc(DC1)?.tid.hostNqn, HOSTNQN);
});

Deno.test("the page cache is written when a page or the set changed, not by every pass", async () => {
  const t = setup([dcLine(DC1), dcLine(DC2)]);
  t.kernel.pages.set(DC1, [logEntry()]);
  await t.start();
  await settle();
  const saves = t.store.saves.length;
  assert.ok(saves >= 1);
  t.finder.udevEvent(uevent("remove", "nvme99"));
  await t.clock.advance(FINDER_TIMERS.settleMs);
  await settle();
  assert.equal(t.store.saves.length, saves, "a pass that changed nothing wrote nothing");
  t.finder.setInputs(t.inputs([dcLine(DC1)]));
  await settle();
  // The DC gone, then the reload's re-read of DC1: written for both.
  assert.ok(t.store.saves.length > saves, "a DC gone: written");
  assert.equal(decodePageCache(t.store.text!).entries.length, 1);
});

Deno.test("a DC is connected without keys, as a discovery controller, whatever the host key", async () => {
  // A malformed sys.conf key refuses I/O controllers; none is sent to a DC, so it cannot refuse one.
  const key = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";
  const t = setup([dcLine(DC1, `;nqn=nqn.2014-08.com.example:unique-dc;dhchap-secret=${key}`)], {
    sys: { hostKey: "DHHC-1:00:bad:", hostKeyProblem: "the host key is malformed" },
  });
  await t.start();
  await settle();
  const call = t.kernel.calls.find((c) => c.op === "connect");
  assert.ok(call?.op === "connect", "connected");
  assert.equal(call.request.host.dhchapKey, undefined);
  assert.equal(call.request.options?.dhchapCtrlKey, undefined);
  assert.equal(call.request.options?.discovery, true, "a unique NQN's DC is named a DC");
  assert.equal(t.dc(DC1)?.phase, "connected");
});

Deno.test("a pass that fails waits 3 s before the next, and then goes on", async () => {
  const t = setup();
  const list = t.kernel.list.bind(t.kernel);
  let failures = 1;
  t.kernel.list = () => failures-- > 0 ? Promise.reject(new Error("sysfs went away")) : list();
  await t.start();
  await settle();
  const passes = () => (t.sink.text().match(/Finder pass/g) ?? []).length;
  const first = passes();
  await t.clock.advance(FAILED_PASS_BACKOFF_MS - 1);
  await settle();
  assert.equal(passes(), first, "no spin before the pause");
  await t.clock.advance(1);
  await settle();
  assert.ok(passes() > first);
  assert.equal(t.dc(DC1)?.phase, "connected");
});

Deno.test("a DC being disposed of keeps its device: a new DC connects its own", async () => {
  const UNIQUE = "nqn.2014-08.com.example:unique-dc";
  const t = setup([dcLine(DC1, `;nqn=${UNIQUE}`)]);
  await t.start();
  await settle();
  const old = t.dc(DC1)!.device!;
  const gate = new Deferred<void>();
  const disconnect = t.kernel.disconnect.bind(t.kernel);
  t.kernel.disconnect = async (device) => {
    await gate.promise;
    return disconnect(device);
  };
  // The well-known NQN entry would match the unique-NQN DC: not while it is on its way out.
  t.finder.setInputs(t.inputs([dcLine(DC1)]));
  await settle();
  const fresh = t.dc(DC1)!;
  assert.notEqual(fresh.device, old, "not adopted from under the disposal");
  gate.resolve();
  await settle();
  assert.deepEqual(t.kernel.disconnects, [old]);
  assert.equal(t.dc(DC1)?.phase, "connected");
});

Deno.test("a disconnect spares a device name that another controller took meanwhile", async () => {
  const t = setup();
  await t.start();
  await settle();
  const device = t.dc(DC1)!.device!;
  // The DC went away and an I/O controller got its name.
  t.kernel.vanish(device);
  t.kernel.add({ device, traddr: "10.9.9.9", cntrltype: "io" });
  await t.finder.stop({ disconnect: true });
  assert.deepEqual(t.kernel.disconnects, []);
});

Deno.test("stop waits for a connect in flight a bounded time", async () => {
  const t = setup();
  t.kernel.hold(DC1); // never returns
  await t.start();
  let stopped = false;
  const stopping = t.finder.stop({ disconnect: false }).then(() => stopped = true);
  await settle();
  assert.equal(stopped, false);
  await t.clock.advance(STOP_WAIT_MS);
  await stopping;
  assert.equal(stopped, true);
});

Deno.test(`pages are refused past ${MAX_TOTAL_ENTRIES} entries in all; what was known stays`, async () => {
  const DC3 = "192.168.1.12";
  const t = setup([dcLine(DC1), dcLine(DC2), dcLine(DC3)]);
  const many = (n: number, prefix: string) =>
    Array.from({ length: n }, (_, i) => logEntry({ subnqn: `nqn.x:${prefix}${i}` }));
  t.kernel.pages.set(DC1, many(4096, "a"));
  t.kernel.pages.set(DC2, many(4000, "b"));
  t.kernel.pages.set(DC3, many(5, "c"));
  await t.start();
  await settle();
  assert.equal(t.dc(DC3)?.entries?.length, 5);
  t.kernel.pages.set(DC3, many(100, "d"));
  t.finder.udevEvent(uevent("change", t.dc(DC3)!.device!, { NVME_AEN: "0x70f002" }));
  await settle();
  assert.equal(t.dc(DC3)?.entries?.length, 5, "the over-budget page is refused");
  assert.match(t.sink.text(), /Page refused: the pages would hold 8196 entries, more than 8192/);
});

Deno.test("a page read again unchanged is not written again", async () => {
  const t = setup();
  t.kernel.pages.set(DC1, [logEntry()]);
  await t.start();
  await settle();
  const saves = t.store.saves.length;
  t.finder.udevEvent(uevent("change", t.dc(DC1)!.device!, { NVME_AEN: "0x70f002" }));
  await settle();
  assert.equal(t.kernel.reads.length, 2);
  assert.equal(t.store.saves.length, saves);
});

Deno.test("a DC never read is unknown until its first read fails or its second connect does", async () => {
  const t = setup([dcLine(DC1), dcLine(DC2)]);
  t.kernel.pages.set(DC1, [logEntry()]);
  const refused = () =>
    new ConnectError("Failed to write to /dev/nvme-fabrics: Connection refused");
  t.kernel.script(DC2, refused(), refused());
  await t.start();
  await settle();
  assert.equal(discoveredPages(t.snapshot), undefined, "DC2 may still answer");
  await t.clock.advance(FINDER_TIMERS.fastRetryMs);
  await settle();
  const pages = discoveredPages(t.snapshot);
  assert.deepEqual(pages?.map((p) => p.entries.length), [1, 0], "DC2 holds up nothing any more");
});
