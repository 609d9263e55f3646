/**
 * One controller's life as the reconciler runs it (managed_controller.ts's
 * rules, applied by passes): connect or adopt, retry timing and its log
 * levels, NCC and connect-attempts-on-ncc, removals by the kernel, fail
 * closed, disposal. One controller at 192.168.1.10 on a fake kernel and a
 * fake clock; it is configured, or discovered when NCC matters.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../../fake_clock.ts";
import type { SysConfig } from "../../../lib/config/sys_conf.ts";
import { ConnectRefusedError } from "../../../lib/core/kernel_api.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import { Reconciler } from "../../../lib/daemon/reconciler.ts";
import { runningTimerText } from "../../../lib/core/timer_text.ts";
import { TIMERS } from "../../../lib/daemon/timers.ts";
import { makeTid, printableTid } from "../../../lib/core/transport_id.ts";
import {
  configText,
  controllerLine,
  FakeKernel,
  HOSTID,
  HOSTNQN,
  logEntry,
  MemoryStore,
  page,
  settle,
  stacdConfig,
  SUBNQN,
  sysConfig,
} from "../fakes.ts";

const TRADDR = "192.168.1.10";
const ID = printableTid(
  makeTid({ transport: "tcp", traddr: TRADDR, trsvcid: "4420", subsysnqn: SUBNQN }, {
    hostNqn: HOSTNQN,
  }),
);
const SCOPE = "[I/O controller connection management]";

interface Setup {
  tron?: boolean;
  /** Discovered with this NCC bit instead of configured. */
  ncc?: boolean;
  /** connect-attempts-on-ncc. */
  attemptsOnNcc?: number;
  /** Leaving the set keeps the connection (no-disconnect). */
  keepOnRemoval?: boolean;
  sys?: Partial<SysConfig>;
}

/** The reconciler with the one controller, before its first pass. */
function setup(options: Setup = {}) {
  const clock = new FakeClock();
  const kernel = new FakeKernel();
  const sink = new MemorySink();
  const log = createLogger(sink, { tron: options.tron ?? true });
  const reconciler = new Reconciler({
    clock,
    kernel,
    log,
    store: new MemoryStore(),
    resyncMs: TIMERS.resyncMs,
  });
  let wanted = true;
  const inputs = (o: Setup, reload = false) => {
    const head = [
      SCOPE,
      `connect-attempts-on-ncc=${o.attemptsOnNcc ?? 0}`,
      o.keepOnRemoval ? "disconnect-scope=no-disconnect" : "",
    ].join("\n");
    const discovered = o.ncc === undefined || !wanted
      ? []
      : [page([logEntry({ traddr: TRADDR, eflags: o.ncc ? "4" : "0" })])];
    const lines = o.ncc === undefined && wanted ? [controllerLine(TRADDR)] : [];
    reconciler.setInputs({
      config: stacdConfig(configText(lines, head)),
      sys: sysConfig(o.sys),
      discovered,
      bootConnections: false,
      retry: TIMERS,
    }, { reload });
  };
  inputs(options);
  /** One pass, and what it started run to its end (the pass after a connect included). */
  const pass = async () => {
    await reconciler.runPass();
    await settle();
  };
  return {
    clock,
    kernel,
    sink,
    reconciler,
    pass,
    start: pass,
    /** Moves the clock and lets what the timers started finish. */
    advance: async (ms: number) => {
      await clock.advance(ms);
      await settle();
    },
    /** The controller as the latest pass published it. */
    ctl: () => reconciler.snapshot.controllers[0],
    /** Its `retry connect timer`, as D-Bus shows it. */
    timer: () => {
      const c = reconciler.snapshot.controllers[0]!;
      return runningTimerText(c.retry, c.lastDelayMs, clock.now());
    },
    /** A reload with these settings (the same controller). */
    reload: async (o: Setup = options) => {
      inputs({ ...options, ...o }, true);
      await pass();
    },
    /** A new log page with this NCC bit. */
    newPage: async (ncc: boolean) => {
      inputs({ ...options, ncc });
      await pass();
    },
    /** The controller leaves the desired set. */
    unwant: () => {
      wanted = false;
      inputs(options);
      return reconciler.runPass();
    },
    /** udev says `device` is gone (the kernel removed it). */
    udevRemove: async (device: string) => {
      kernel.vanish(device);
      reconciler.requestPass(0, `udev remove ${device}`);
      await settle();
    },
    /** The log lines about failed connects, as `LEVEL: message` texts. */
    failures: () => sink.lines.map((l) => l.line).filter((l) => l.includes("Connect failed")),
    stop: () => reconciler.stop(),
  };
}

const refused = () => new Error("Connection refused");

Deno.test("a controller connects and logs the device", async () => {
  const { start, ctl, kernel, sink, stop } = setup();
  await start();
  assert.deepEqual(kernel.connects, [TRADDR]);
  assert.equal(ctl()?.phase, "connected");
  assert.equal(ctl()?.device, "nvme0");
  assert.equal(ctl()?.attempts, 0);
  assert.deepEqual(sink.lines.map((l) => l.line).filter((l) => !l.startsWith("DEBUG")), [
    `INFO: ${ID} | nvme0 - Connection established!`,
  ]);
  const connect = kernel.calls.find((c) => c.op === "connect");
  assert.equal(connect?.op === "connect" && connect.request.host.hostnqn, HOSTNQN);
  assert.equal(connect?.op === "connect" && connect.request.host.hostid, HOSTID);
  await stop();
});

Deno.test("a controller adopts an existing matching connection instead of connecting", async () => {
  const { start, ctl, kernel, sink, stop } = setup();
  kernel.add({ device: "nvme4", traddr: TRADDR, srcAddr: "192.168.1.2" });
  await start();
  assert.deepEqual(kernel.connects, []);
  assert.equal(ctl()?.phase, "connected");
  assert.equal(ctl()?.device, "nvme4");
  assert.match(sink.text(), /nvme4 - Adopted existing connection/);
  await stop();
});

Deno.test("a controller does not adopt a connection that is not this controller", async () => {
  const { start, ctl, kernel, stop } = setup();
  kernel.add({ device: "nvme0", traddr: TRADDR, subsysnqn: "nqn.2026-11.io.test:other" });
  kernel.add({ device: "nvme1", traddr: TRADDR, state: "deleting" });
  kernel.add({ device: "nvme2", traddr: TRADDR, cntrltype: "discovery" });
  kernel.add({ device: "nvme3", traddr: "192.168.1.11" });
  await start();
  assert.deepEqual(kernel.connects, [TRADDR]);
  assert.equal(ctl()?.device, "nvme4");
  await stop();
});

Deno.test("a controller is connected once, however many passes run", async () => {
  const { reconciler, pass, kernel, stop } = setup();
  const passes = [reconciler.runPass(), reconciler.runPass()];
  await Promise.all(passes);
  await pass();
  await pass();
  assert.deepEqual(kernel.connects, [TRADDR]);
  await stop();
});

const DC_HOSTNQN = "nqn.2014-08.com.example:dc-host";
const DC_HOSTID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

Deno.test("a controller connects with the host ID the kernel pairs with its host NQN", async () => {
  const sys = { hostNqn: DC_HOSTNQN, hostId: "0d0d0d0d-0000-5000-8000-000000000000" };
  const { start, ctl, kernel, stop } = setup({ sys });
  // A discovery controller that stafd connected with this NQN and another ID.
  kernel.add({ device: "nvme0", cntrltype: "discovery", hostnqn: DC_HOSTNQN, hostid: DC_HOSTID });
  await start();
  assert.equal(ctl()?.phase, "connected");
  const connect = kernel.calls.find((c) => c.op === "connect");
  assert.equal(connect?.op === "connect" && connect.request.host.hostid, DC_HOSTID);
  await stop();
});

Deno.test("a controller does not send a host ID the kernel pairs with another NQN", async () => {
  const { start, ctl, kernel, advance, failures, stop } = setup();
  kernel.add({ device: "nvme0", cntrltype: "discovery", hostnqn: DC_HOSTNQN, hostid: HOSTID });
  await start();
  await advance(3_000);
  assert.deepEqual(kernel.connects, []);
  assert.equal(ctl()?.phase, "waiting");
  assert.equal(
    failures()[1],
    `ERROR: ${ID} | nvme? - Connect failed (Host ID ${HOSTID} is paired with host NQN ` +
      `${DC_HOSTNQN} (nvme0) in the kernel, which refuses it for host NQN ${HOSTNQN}; ` +
      `not connecting), retrying every 60s`,
  );
  // Once the other pair is gone, the connect goes through.
  kernel.vanish("nvme0");
  await advance(60_000);
  assert.equal(ctl()?.phase, "connected");
  await stop();
});

Deno.test("a controller sends a host ID paired with another NQN to a kernel that takes it", async () => {
  const { start, ctl, kernel, stop } = setup();
  kernel.refusesSharedHostId = false; // as 6.1
  kernel.add({ device: "nvme0", cntrltype: "discovery", hostnqn: DC_HOSTNQN, hostid: HOSTID });
  await start();
  assert.equal(ctl()?.phase, "connected");
  assert.deepEqual(kernel.connects, [TRADDR]);
  await stop();
});

Deno.test("a controller retries after 3 s when the first connect fails", async () => {
  const { start, ctl, kernel, advance, stop } = setup();
  kernel.script(TRADDR, refused());
  await start();
  assert.equal(ctl()?.phase, "waiting");
  assert.equal(ctl()?.attempts, 1);
  assert.equal(ctl()?.device, undefined);
  await advance(2_999);
  assert.equal(kernel.connects.length, 1);
  await advance(1);
  assert.equal(kernel.connects.length, 2);
  assert.equal(ctl()?.phase, "connected");
  assert.equal(ctl()?.attempts, 0);
  await stop();
});

Deno.test("a controller logs an ERROR at the second failure and retries every 60 s", async () => {
  const { start, ctl, kernel, advance, failures, stop } = setup();
  kernel.script(TRADDR, refused(), refused(), refused(), refused());
  await start();
  await advance(3_000);
  assert.equal(kernel.connects.length, 2);
  assert.equal(ctl()?.phase, "waiting");
  await advance(59_999);
  assert.equal(kernel.connects.length, 2);
  await advance(1);
  assert.equal(kernel.connects.length, 3);
  await advance(60_000);
  assert.equal(kernel.connects.length, 4);
  await advance(60_000);
  assert.equal(kernel.connects.length, 5);
  assert.equal(ctl()?.phase, "connected");
  assert.deepEqual(failures().map((l) => l.split(":")[0]), ["DEBUG", "ERROR", "DEBUG", "DEBUG"]);
  assert.equal(
    failures()[1],
    `ERROR: ${ID} | nvme? - Connect failed (Connection refused), retrying every 60s`,
  );
  await stop();
});

Deno.test("a controller logs only the second failure when tron is off", async () => {
  const { start, kernel, advance, sink, stop } = setup({ tron: false });
  kernel.script(TRADDR, refused(), refused(), refused(), refused(), refused());
  await start();
  await advance(3_000);
  for (let i = 0; i < 3; i++) await advance(60_000);
  assert.equal(kernel.connects.length, 5);
  assert.deepEqual(sink.lines.map((l) => [l.priority, l.line.split(" |")[0]]), [
    [3, `ERROR: ${ID}`],
  ]);
  await stop();
});

Deno.test("a controller logs an ERROR again after a success followed by two failures", async () => {
  const { start, ctl, kernel, advance, failures, udevRemove, stop } = setup();
  kernel.script(TRADDR, refused(), refused(), "ok", refused(), refused());
  await start();
  await advance(3_000);
  await advance(60_000);
  assert.equal(ctl()?.phase, "connected");
  await udevRemove("nvme0");
  await advance(3_000);
  await advance(3_000);
  assert.equal(kernel.connects.length, 5);
  assert.deepEqual(failures().map((l) => l.split(":")[0]), ["DEBUG", "ERROR", "DEBUG", "ERROR"]);
  await stop();
});

Deno.test("a controller stops after connect-attempts-on-ncc attempts when NCC is set", async () => {
  const { start, ctl, kernel, advance, sink, stop } = setup({ ncc: true, attemptsOnNcc: 3 });
  kernel.script(TRADDR, ...Array.from({ length: 10 }, refused));
  await start();
  await advance(3_000);
  await advance(60_000);
  assert.equal(kernel.connects.length, 3);
  assert.equal(ctl()?.phase, "given-up");
  assert.equal(ctl()?.retry, undefined);
  await advance(3_600_000);
  assert.equal(kernel.connects.length, 3);
  assert.match(sink.text(), /NCC set, giving up after 3 attempts/);
  await stop();
});

Deno.test("a controller never stops retrying with NCC set when connect-attempts-on-ncc is 0", async () => {
  const { start, ctl, kernel, advance, stop } = setup({ ncc: true, attemptsOnNcc: 0 });
  kernel.script(TRADDR, ...Array.from({ length: 10 }, refused));
  await start();
  await advance(3_000);
  for (let i = 0; i < 8; i++) await advance(60_000);
  assert.equal(kernel.connects.length, 10);
  assert.equal(ctl()?.phase, "waiting");
  await stop();
});

Deno.test("a controller keeps retrying without NCC whatever connect-attempts-on-ncc says", async () => {
  const { start, ctl, kernel, advance, stop } = setup({ ncc: false, attemptsOnNcc: 2 });
  kernel.script(TRADDR, refused(), refused(), refused());
  await start();
  await advance(3_000);
  await advance(60_000);
  assert.equal(kernel.connects.length, 3);
  assert.equal(ctl()?.phase, "waiting");
  await stop();
});

Deno.test("a controller follows connect-attempts-on-ncc as reloaded", async () => {
  const { start, ctl, kernel, advance, reload, stop } = setup({ ncc: true, attemptsOnNcc: 0 });
  kernel.script(TRADDR, ...Array.from({ length: 10 }, refused));
  await start();
  await advance(3_000);
  assert.equal(ctl()?.phase, "waiting", "0: never stop");
  await reload({ attemptsOnNcc: 3 });
  await advance(60_000);
  assert.equal(kernel.connects.length, 3);
  assert.equal(ctl()?.phase, "given-up", "the reloaded limit applies");
  await stop();
});

Deno.test("a log page clearing NCC resets the count and retries at once", async () => {
  const { start, ctl, kernel, advance, newPage, timer, stop } = setup({
    ncc: true,
    attemptsOnNcc: 2,
  });
  kernel.script(TRADDR, refused(), refused(), refused());
  await start();
  await advance(3_000);
  assert.equal(ctl()?.phase, "given-up");
  assert.equal(ctl()?.attempts, 2);
  await newPage(false);
  assert.equal(kernel.connects.length, 3, "a connect without waiting for a timer");
  assert.equal(ctl()?.attempts, 1, "counted from zero again");
  assert.equal(ctl()?.phase, "waiting");
  assert.equal(timer(), "3.0s [3.0s]");
  await stop();
});

Deno.test("a log page clearing NCC during a retry wait retries at once", async () => {
  const { start, ctl, kernel, newPage, stop } = setup({ ncc: true, attemptsOnNcc: 5 });
  kernel.script(TRADDR, refused());
  await start();
  assert.equal(ctl()?.phase, "waiting");
  await newPage(false);
  assert.equal(kernel.connects.length, 2);
  assert.equal(ctl()?.phase, "connected");
  await stop();
});

Deno.test("a reload leaves a connected controller alone and does not hurry a pending retry", async () => {
  const { start, kernel, reload, udevRemove, stop } = setup();
  await start();
  await reload();
  assert.deepEqual(kernel.connects, [TRADDR]);
  assert.deepEqual(kernel.disconnects, []);
  await udevRemove("nvme0");
  await reload();
  assert.equal(kernel.connects.length, 1, "a pending retry is not kicked");
  await stop();
});

Deno.test("a controller retries 3 s after udev removed its device, with attempts reset", async () => {
  const { start, ctl, kernel, advance, failures, udevRemove, timer, stop } = setup();
  kernel.script(TRADDR, refused(), "ok", refused(), refused());
  await start();
  await advance(3_000);
  assert.equal(ctl()?.device, "nvme0");
  await udevRemove("nvme0");
  assert.equal(ctl()?.device, undefined);
  assert.equal(ctl()?.phase, "waiting");
  assert.equal(ctl()?.attempts, 0);
  assert.equal(timer(), "3.0s [3.0s]");
  await advance(2_999);
  assert.equal(kernel.connects.length, 2);
  await advance(1);
  assert.equal(kernel.connects.length, 3);
  // The first failure after the removal is a first failure again: 3 s, DEBUG.
  await advance(3_000);
  assert.equal(kernel.connects.length, 4);
  assert.deepEqual(failures().map((l) => l.split(":")[0]), ["DEBUG", "DEBUG", "ERROR"]);
  await stop();
});

Deno.test("a controller retries when the kernel removed its device before its connect returned", async () => {
  const { start, ctl, kernel, sink, advance, stop } = setup();
  kernel.script(TRADDR, "gone");
  await start();
  assert.equal(ctl()?.phase, "waiting");
  assert.equal(ctl()?.device, undefined);
  assert.match(
    sink.text(),
    /nvme0 - Connection established!\n(.*\n)*.*nvme0 - Controller removed by the kernel, retrying/,
  );
  await advance(3_000);
  assert.equal(kernel.connects.length, 2);
  assert.equal(ctl()?.phase, "connected");
  assert.equal(ctl()?.device, "nvme1");
  await stop();
});

Deno.test("a controller keeps its device when udev removed an older device of the same name while it connected", async () => {
  const { reconciler, ctl, kernel, sink, stop } = setup();
  const gate = kernel.hold(TRADDR);
  const first = reconciler.runPass();
  await settle();
  reconciler.requestPass(0, "udev remove nvme0"); // somebody's nvme0, gone before ours took the name
  await settle();
  gate.resolve();
  await first;
  await settle();
  assert.equal(ctl()?.phase, "connected");
  assert.equal(ctl()?.device, "nvme0");
  assert.doesNotMatch(sink.text(), /removed/);
  assert.equal(ctl()?.retry, undefined);
  await stop();
});

Deno.test("a controller whose device name another connection took retries", async () => {
  const { start, ctl, kernel, sink, stop } = setup();
  await start();
  kernel.vanish("nvme0");
  kernel.add({ device: "nvme0", traddr: "192.168.1.99" });
  await start(); // a pass: udev's events were lost, say
  assert.equal(ctl()?.phase, "waiting");
  assert.match(sink.text(), /nvme0 - Controller removed by the kernel, retrying/);
  await stop();
});

Deno.test("a udev removal of another device leaves a controller alone", async () => {
  const { start, ctl, udevRemove, kernel, stop } = setup();
  await start();
  kernel.add({ device: "nvme7", traddr: "192.168.1.77" });
  await udevRemove("nvme7");
  assert.equal(ctl()?.phase, "connected");
  assert.equal(ctl()?.device, "nvme0");
  assert.equal(ctl()?.retry, undefined);
  await stop();
});

Deno.test("a disposal while a connect is in flight waits for it, then disconnects", async () => {
  const { reconciler, kernel, unwant, stop } = setup();
  const gate = kernel.hold(TRADDR);
  await reconciler.runPass();
  await settle();
  await unwant();
  await settle();
  assert.deepEqual(kernel.disconnects, [], "still waiting for the connect");
  assert.equal(reconciler.snapshot.terminator.waiting, 1);
  gate.resolve();
  await settle();
  assert.deepEqual(kernel.disconnects, ["nvme0"]);
  assert.deepEqual(kernel.devices, []);
  assert.equal(reconciler.snapshot.terminator.waiting, 0);
  assert.deepEqual(reconciler.snapshot.controllers, []);
  await stop();
});

Deno.test("a disposal disconnects a connected controller", async () => {
  const { start, kernel, sink, unwant, stop } = setup();
  await start();
  await unwant();
  await settle();
  assert.deepEqual(kernel.disconnects, ["nvme0"]);
  assert.match(sink.text(), /nvme0 - Disconnected/);
  await stop();
});

Deno.test("a disposal under no-disconnect never calls disconnect", async () => {
  const { start, kernel, unwant, stop } = setup({ keepOnRemoval: true });
  await start();
  await unwant();
  await settle();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.devices, ["nvme0"]);
  await stop();
});

Deno.test("a disposal under no-disconnect while a connect is in flight keeps the new connection", async () => {
  const { reconciler, kernel, unwant, stop } = setup({ keepOnRemoval: true });
  const gate = kernel.hold(TRADDR);
  await reconciler.runPass();
  await unwant();
  gate.resolve();
  await stop();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.devices, ["nvme0"]);
});

Deno.test("a disposal does not disconnect a device name now used by another connection", async () => {
  const { start, kernel, unwant, stop } = setup();
  await start();
  kernel.vanish("nvme0");
  kernel.add({ device: "nvme0", traddr: "192.168.1.99" });
  await unwant();
  await settle();
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.devices, ["nvme0"]);
  await stop();
});

Deno.test("a disposal waiting for a connect whose device is gone disconnects nothing", async () => {
  const { start, kernel, sink, unwant, stop } = setup();
  const gate = kernel.hold(TRADDR);
  const first = start();
  await settle();
  await unwant(); // waits for the connect in flight
  gate.resolve("gone");
  await first;
  await settle();
  assert.deepEqual(kernel.disconnects, []);
  assert.match(sink.text(), /nvme0 - Already gone, nothing to disconnect/);
  await stop();
});

Deno.test("a disposal cancels a pending retry", async () => {
  const { start, kernel, advance, unwant, stop } = setup();
  kernel.script(TRADDR, refused());
  await start();
  await unwant();
  await advance(120_000);
  assert.equal(kernel.connects.length, 1);
  assert.deepEqual(kernel.disconnects, []);
  await stop();
});

Deno.test("a disposal logs a failed disconnect instead of throwing", async () => {
  const { start, kernel, sink, unwant, stop } = setup();
  await start();
  kernel.disconnectErrors.push(new Error("Device or resource busy"));
  await unwant();
  await settle();
  assert.match(sink.text(), /ERROR: .* \| nvme0 - Disconnect failed: Device or resource busy/);
  await stop();
});

Deno.test("a reload after giving up retries at once, keeping the attempt count", async () => {
  const { start, ctl, kernel, advance, reload, stop } = setup({ ncc: true, attemptsOnNcc: 2 });
  kernel.script(TRADDR, refused(), refused(), refused());
  await start();
  await advance(3_000);
  assert.equal(ctl()?.phase, "given-up");
  await reload();
  assert.equal(kernel.connects.length, 3);
  assert.equal(ctl()?.attempts, 3, "a reload is one more attempt, not a new count");
  assert.equal(ctl()?.phase, "given-up");
  assert.equal(ctl()?.retry, undefined);
  await reload();
  assert.equal(kernel.connects.length, 4);
  assert.equal(ctl()?.phase, "connected");
  await stop();
});

const mustNotConnect = () =>
  new ConnectRefusedError("dhchap-ctrl-secret", "dhchap-ctrl-secret is configured, but no");

Deno.test("a controller fails closed on a refused connect: one ERROR, no retry until a reload", async () => {
  const { start, ctl, kernel, advance, sink, reload, stop } = setup();
  kernel.script(TRADDR, mustNotConnect());
  await start();
  assert.equal(ctl()?.phase, "given-up");
  assert.equal(ctl()?.connected, false);
  await advance(600_000);
  assert.equal(kernel.connects.length, 1, "not retried");
  assert.deepEqual(sink.lines.map((l) => l.line).filter((l) => !l.startsWith("DEBUG")), [
    `ERROR: ${ID} | nvme? - Not connected: dhchap-ctrl-secret is configured, but no`,
  ]);
  await reload(); // tried again, once
  assert.equal(kernel.connects.length, 2);
  assert.equal(ctl()?.phase, "connected");
  await stop();
});

Deno.test("a controller whose host key is unusable never asks the kernel to connect, but adopts", async () => {
  const sys = { hostKeyProblem: "the host key is malformed" };
  {
    const { start, ctl, kernel, advance, sink, stop } = setup({ sys });
    await start();
    await advance(600_000);
    assert.deepEqual(kernel.connects, []);
    assert.equal(ctl()?.phase, "given-up");
    assert.equal(sink.lines.filter((l) => l.line.startsWith("ERROR")).length, 1);
    await stop();
  }
  {
    const { start, ctl, kernel, stop } = setup({ sys });
    kernel.add({ device: "nvme4", traddr: TRADDR });
    await start();
    assert.equal(ctl()?.device, "nvme4", "an existing connection is kept");
    await stop();
  }
});

Deno.test("a controller's retry connect timer reads like upstream's, seconds left included", async () => {
  const { start, ctl, kernel, advance, timer, stop } = setup();
  kernel.script(TRADDR, refused(), refused());
  await start();
  assert.equal(timer(), "3.0s [3.0s]");
  await advance(1_250);
  assert.equal(timer(), "3.0s [1.75s]");
  await advance(1_750);
  assert.equal(timer(), "60.0s [60.0s]");
  await advance(60_000);
  assert.equal(ctl()?.phase, "connected");
  assert.equal(timer(), "60.0s [off]");
  const fresh = setup();
  fresh.kernel.hold(TRADDR);
  await fresh.reconciler.runPass();
  assert.equal(fresh.timer(), "60.0s [off]", "before any failure, as upstream's");
  await stop();
});
