import assert from "node:assert/strict";
import { FakeClock } from "../../lib/clock.ts";
import {
  ConnectRefusedError,
  Controller,
  type ControllerSpec,
  type RetryPolicy,
  UPSTREAM_RETRY,
} from "../../lib/controller.ts";
import { createLogger, MemorySink } from "../../lib/logger.ts";
import { makeTid, matchesKernelController, printableTid } from "../../lib/transport_id.ts";
import { FakeKernel, HOSTID, HOSTNQN, kernelController, settle, SUBNQN } from "./fakes.ts";

const TRADDR = "192.168.1.10";
const TID = makeTid({ transport: "tcp", traddr: TRADDR, trsvcid: "4420", subsysnqn: SUBNQN }, {
  hostNqn: HOSTNQN,
});
const ID = printableTid(TID);

function spec(over: Partial<ControllerSpec> = {}): ControllerSpec {
  return {
    id: ID,
    request: {
      target: { transport: "tcp", traddr: TRADDR, trsvcid: "4420", subsysnqn: SUBNQN },
      host: { hostnqn: HOSTNQN, hostid: HOSTID },
      options: { kato: 30 },
    },
    matches: (k) => matchesKernelController(TID, k),
    ncc: false,
    ...over,
  };
}

/** A controller on a fake kernel and a fake clock, logging at DEBUG into memory. */
function setup(
  options: { retry?: Partial<RetryPolicy>; spec?: Partial<ControllerSpec>; tron?: boolean } = {},
) {
  const clock = new FakeClock();
  const kernel = new FakeKernel();
  const sink = new MemorySink();
  const log = createLogger(sink, { tron: options.tron ?? true });
  let changes = 0;
  const controller = new Controller(spec(options.spec), {
    clock,
    kernel,
    log,
    retry: { ...UPSTREAM_RETRY, ...options.retry },
    onChange: () => changes++,
  });
  /** Moves the clock and lets what the timers started finish. */
  const advance = async (ms: number) => {
    await clock.advance(ms);
    await settle();
  };
  /** The log lines about failed connects, as `LEVEL: message` texts. */
  const failures = () => sink.lines.map((l) => l.line).filter((l) => l.includes("Connect failed"));
  return { clock, kernel, sink, controller, advance, failures, changes: () => changes };
}

const refused = () => new Error("Connection refused");

Deno.test("Controller.start() connects and logs the device", async () => {
  const { controller, kernel, sink, changes } = setup();
  controller.start();
  await settle();
  assert.deepEqual(kernel.connects, [TRADDR]);
  assert.equal(controller.state, "connected");
  assert.equal(controller.device, "nvme0");
  assert.equal(controller.attempts, 0);
  assert.ok(changes() >= 1);
  assert.deepEqual(sink.lines.map((l) => l.line), [
    `INFO: ${ID} | nvme0 - Connection established!`,
  ]);
  assert.deepEqual(kernel.calls[1], { op: "connect", traddr: TRADDR, request: spec().request });
});

Deno.test("Controller.start() adopts an existing matching connection instead of connecting", async () => {
  const { controller, kernel, sink } = setup();
  kernel.add({ device: "nvme4", traddr: TRADDR, srcAddr: "192.168.1.2" });
  controller.start();
  await settle();
  assert.deepEqual(kernel.connects, []);
  assert.equal(controller.state, "connected");
  assert.equal(controller.device, "nvme4");
  assert.match(sink.text(), /nvme4 - Adopted existing connection/);
});

Deno.test("Controller.start() does not adopt a connection that is not this controller", async () => {
  const { controller, kernel } = setup();
  kernel.add({ device: "nvme0", traddr: TRADDR, subsysnqn: "nqn.2026-11.io.test:other" });
  kernel.add({ device: "nvme1", traddr: TRADDR, state: "deleting" });
  kernel.add({ device: "nvme2", traddr: TRADDR, cntrltype: "discovery" });
  kernel.add({ device: "nvme3", traddr: "192.168.1.11" });
  controller.start();
  await settle();
  assert.deepEqual(kernel.connects, [TRADDR]);
  assert.equal(controller.device, "nvme4");
});

Deno.test("Controller.start() twice connects once", async () => {
  const { controller, kernel } = setup();
  controller.start();
  controller.start();
  await settle();
  controller.start();
  await settle();
  assert.deepEqual(kernel.connects, [TRADDR]);
});

const DC_HOSTNQN = "nqn.2014-08.com.example:dc-host";
const DC_HOSTID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

Deno.test("Controller connects with the host ID the kernel pairs with its host NQN", async () => {
  const host = { hostnqn: DC_HOSTNQN, hostid: "0d0d0d0d-0000-5000-8000-000000000000" };
  const { controller, kernel } = setup({ spec: { request: { ...spec().request, host } } });
  // A discovery controller that stafd connected with this NQN and another ID.
  kernel.add({ device: "nvme0", cntrltype: "discovery", hostnqn: DC_HOSTNQN, hostid: DC_HOSTID });
  controller.start();
  await settle();
  assert.equal(controller.state, "connected");
  const connect = kernel.calls.find((c) => c.op === "connect");
  assert.deepEqual(connect?.op === "connect" && connect.request.host, {
    ...host,
    hostid: DC_HOSTID,
  });
  assert.equal(kernel.controllers.find((k) => k.device === controller.device)?.hostid, DC_HOSTID);
});

Deno.test("Controller does not send a host ID the kernel pairs with another NQN", async () => {
  const { controller, kernel, advance, failures } = setup();
  kernel.add({ device: "nvme0", cntrltype: "discovery", hostnqn: DC_HOSTNQN, hostid: HOSTID });
  controller.start();
  await settle();
  await advance(3_000);
  assert.deepEqual(kernel.connects, []);
  assert.equal(controller.state, "retry-wait");
  assert.equal(
    failures()[1],
    `ERROR: ${ID} | nvme? - Connect failed (Host ID ${HOSTID} is paired with host NQN ` +
      `${DC_HOSTNQN} (nvme0) in the kernel, which refuses it for host NQN ${HOSTNQN}; ` +
      `not connecting), retrying every 60s`,
  );
  // Once the other pair is gone, the connect goes through.
  kernel.vanish("nvme0");
  await advance(60_000);
  assert.equal(controller.state, "connected");
});

Deno.test("Controller sends a host ID paired with another NQN to a kernel that takes it", async () => {
  const { controller, kernel } = setup();
  kernel.refusesSharedHostId = false; // as 6.1
  kernel.add({ device: "nvme0", cntrltype: "discovery", hostnqn: DC_HOSTNQN, hostid: HOSTID });
  controller.start();
  await settle();
  assert.equal(controller.state, "connected");
  assert.deepEqual(kernel.connects, [TRADDR]);
});

Deno.test("Controller retries after 3 s when the first connect fails", async () => {
  const { controller, kernel, advance } = setup();
  kernel.script(TRADDR, refused());
  controller.start();
  await settle();
  assert.equal(controller.state, "retry-wait");
  assert.equal(controller.attempts, 1);
  assert.equal(controller.device, undefined);
  await advance(2_999);
  assert.equal(kernel.connects.length, 1);
  await advance(1);
  assert.equal(kernel.connects.length, 2);
  assert.equal(controller.state, "connected");
  assert.equal(controller.attempts, 0);
});

Deno.test("Controller logs an ERROR at the second failure and retries every 60 s", async () => {
  const { controller, kernel, advance, failures } = setup();
  kernel.script(TRADDR, refused(), refused(), refused(), refused());
  controller.start();
  await settle();
  await advance(3_000);
  assert.equal(kernel.connects.length, 2);
  assert.equal(controller.state, "retry-wait");
  await advance(59_999);
  assert.equal(kernel.connects.length, 2);
  await advance(1);
  assert.equal(kernel.connects.length, 3);
  await advance(60_000);
  assert.equal(kernel.connects.length, 4);
  await advance(60_000);
  assert.equal(kernel.connects.length, 5);
  assert.equal(controller.state, "connected");
  assert.deepEqual(failures().map((l) => l.split(":")[0]), ["DEBUG", "ERROR", "DEBUG", "DEBUG"]);
  assert.equal(
    failures()[1],
    `ERROR: ${ID} | nvme? - Connect failed (Connection refused), retrying every 60s`,
  );
});

Deno.test("Controller logs only the second failure when tron is off", async () => {
  const { controller, kernel, advance, sink } = setup({ tron: false });
  kernel.script(TRADDR, refused(), refused(), refused(), refused(), refused());
  controller.start();
  await settle();
  await advance(3_000);
  for (let i = 0; i < 3; i++) await advance(60_000);
  assert.equal(kernel.connects.length, 5);
  assert.deepEqual(sink.lines.map((l) => [l.priority, l.line.split(" |")[0]]), [
    [3, `ERROR: ${ID}`],
  ]);
});

Deno.test("Controller logs an ERROR again after a success followed by two failures", async () => {
  const { controller, kernel, advance, failures } = setup();
  kernel.script(TRADDR, refused(), refused(), "ok", refused(), refused());
  controller.start();
  await settle();
  await advance(3_000);
  await advance(60_000);
  assert.equal(controller.state, "connected");
  kernel.vanish("nvme0");
  controller.deviceRemoved("nvme0");
  await advance(3_000);
  await advance(3_000);
  assert.equal(kernel.connects.length, 5);
  assert.deepEqual(failures().map((l) => l.split(":")[0]), ["DEBUG", "ERROR", "DEBUG", "ERROR"]);
});

Deno.test("Controller stops after connect-attempts-on-ncc attempts when NCC is set", async () => {
  const { controller, kernel, clock, advance, sink } = setup({
    retry: { attemptsOnNcc: 3 },
    spec: { ncc: true },
  });
  kernel.script(TRADDR, ...Array.from({ length: 10 }, refused));
  controller.start();
  await settle();
  await advance(3_000);
  await advance(60_000);
  assert.equal(kernel.connects.length, 3);
  assert.equal(controller.state, "given-up");
  assert.equal(clock.pending, 0);
  await advance(3_600_000);
  assert.equal(kernel.connects.length, 3);
  assert.match(sink.text(), /NCC set, giving up after 3 attempts/);
});

Deno.test("Controller never stops retrying with NCC set when connect-attempts-on-ncc is 0", async () => {
  const { controller, kernel, advance } = setup({
    retry: { attemptsOnNcc: 0 },
    spec: { ncc: true },
  });
  kernel.script(TRADDR, ...Array.from({ length: 10 }, refused));
  controller.start();
  await settle();
  await advance(3_000);
  for (let i = 0; i < 8; i++) await advance(60_000);
  assert.equal(kernel.connects.length, 10);
  assert.equal(controller.state, "retry-wait");
});

Deno.test("Controller keeps retrying without NCC whatever connect-attempts-on-ncc says", async () => {
  const { controller, kernel, advance } = setup({ retry: { attemptsOnNcc: 2 } });
  kernel.script(TRADDR, refused(), refused(), refused());
  controller.start();
  await settle();
  await advance(3_000);
  await advance(60_000);
  assert.equal(kernel.connects.length, 3);
  assert.equal(controller.state, "retry-wait");
});

Deno.test("Controller follows connect-attempts-on-ncc of its latest spec (a reload changes it)", async () => {
  const { controller, kernel, advance } = setup({
    retry: { attemptsOnNcc: 0 },
    spec: { ncc: true },
  });
  kernel.script(TRADDR, ...Array.from({ length: 10 }, refused));
  controller.start();
  await settle();
  await advance(3_000);
  assert.equal(controller.state, "retry-wait", "0: never stop");
  controller.update(spec({ ncc: true, attemptsOnNcc: 3 }));
  await advance(60_000);
  assert.equal(kernel.connects.length, 3);
  assert.equal(controller.state, "given-up", "the reloaded limit applies");
});

Deno.test("Controller.update() with NCC cleared resets the count and retries at once", async () => {
  const { controller, kernel, advance } = setup({
    retry: { attemptsOnNcc: 2 },
    spec: { ncc: true },
  });
  kernel.script(TRADDR, refused(), refused(), refused());
  controller.start();
  await settle();
  await advance(3_000);
  assert.equal(controller.state, "given-up");
  assert.equal(controller.attempts, 2);
  controller.update(spec({ ncc: false }));
  await settle();
  assert.equal(kernel.connects.length, 3, "a connect without waiting for a timer");
  assert.equal(controller.attempts, 1, "counted from zero again");
  assert.equal(controller.state, "retry-wait");
  assert.equal(controller.retryTimerText, "3.0s [3.0s]");
});

Deno.test("Controller.update() with NCC cleared during a retry wait retries at once", async () => {
  const { controller, kernel } = setup({ retry: { attemptsOnNcc: 5 }, spec: { ncc: true } });
  kernel.script(TRADDR, refused());
  controller.start();
  await settle();
  assert.equal(controller.state, "retry-wait");
  controller.update(spec({ ncc: false }));
  await settle();
  assert.equal(kernel.connects.length, 2);
  assert.equal(controller.state, "connected");
});

Deno.test("Controller.update() leaves a connected controller alone and uses the new spec next time", async () => {
  const { controller, kernel } = setup();
  controller.start();
  await settle();
  const next = spec();
  next.request = { ...next.request, options: { kato: 5 } };
  controller.update(next);
  await settle();
  assert.deepEqual(kernel.connects, [TRADDR]);
  assert.deepEqual(kernel.disconnects, []);
  controller.deviceRemoved("nvme0");
  kernel.vanish("nvme0");
  controller.kick();
  await settle();
  assert.equal(kernel.connects.length, 1, "a pending retry is not kicked");
});

Deno.test("Controller retries 3 s after udev removed its device, with attempts reset", async () => {
  const { controller, kernel, advance, failures } = setup();
  kernel.script(TRADDR, refused(), "ok", refused(), refused());
  controller.start();
  await settle();
  await advance(3_000);
  assert.equal(controller.device, "nvme0");
  kernel.vanish("nvme0");
  controller.deviceRemoved("nvme0");
  assert.equal(controller.device, undefined);
  assert.equal(controller.state, "retry-wait");
  assert.equal(controller.attempts, 0);
  assert.equal(controller.retryTimerText, "3.0s [3.0s]");
  await advance(2_999);
  assert.equal(kernel.connects.length, 2);
  await advance(1);
  assert.equal(kernel.connects.length, 3);
  // The first failure after the removal is a first failure again: 3 s, DEBUG.
  await advance(3_000);
  assert.equal(kernel.connects.length, 4);
  assert.deepEqual(failures().map((l) => l.split(":")[0]), ["DEBUG", "DEBUG", "ERROR"]);
});

Deno.test("Controller retries when udev removed its device before its connect returned", async () => {
  const { controller, kernel, sink, advance } = setup();
  kernel.script(TRADDR, "gone");
  controller.start();
  controller.deviceRemoved("nvme0"); // the event came while the connect was in flight
  await settle();
  assert.equal(controller.state, "retry-wait");
  assert.equal(controller.device, undefined);
  assert.match(
    sink.text(),
    /nvme0 - Connection established!\n.*nvme0 - Controller removed by the kernel, retrying/,
  );
  await advance(3_000);
  assert.equal(kernel.connects.length, 2);
  assert.equal(controller.state, "connected");
  assert.equal(controller.device, "nvme1");
});

Deno.test("Controller keeps its device when udev removed an older device of the same name while it connected", async () => {
  const { controller, kernel, sink, clock } = setup();
  controller.start();
  controller.deviceRemoved("nvme0"); // somebody's nvme0, gone before ours took the name
  await settle();
  assert.deepEqual(kernel.calls.map((c) => c.op), ["list", "connect", "controller"]);
  assert.equal(controller.state, "connected");
  assert.equal(controller.device, "nvme0");
  assert.doesNotMatch(sink.text(), /removed/);
  assert.equal(clock.pending, 0);
});

Deno.test("Controller does not re-read sysfs after a connect when no removal named its device", async () => {
  const { controller, kernel } = setup();
  controller.start();
  controller.deviceRemoved("nvme7");
  await settle();
  assert.deepEqual(kernel.calls.map((c) => c.op), ["list", "connect"]);
  assert.equal(controller.state, "connected");
});

Deno.test("Controller checks its device after a connect during which udev events were lost", async () => {
  const { controller, kernel, sink } = setup();
  kernel.script(TRADDR, "gone", "ok");
  controller.start();
  controller.eventsLost();
  await settle();
  assert.equal(controller.state, "retry-wait");
  assert.match(sink.text(), /nvme0 - Controller removed by the kernel, retrying/);
  // With its device still there, the same check leaves the controller connected.
  const second = setup();
  second.controller.start();
  second.controller.eventsLost();
  await settle();
  assert.deepEqual(second.kernel.calls.map((c) => c.op), ["list", "connect", "controller"]);
  assert.equal(second.controller.state, "connected");
});

Deno.test("Controller.deviceRemoved() ignores another device", async () => {
  const { controller, clock } = setup();
  controller.start();
  await settle();
  controller.deviceRemoved("nvme7");
  assert.equal(controller.state, "connected");
  assert.equal(controller.device, "nvme0");
  assert.equal(clock.pending, 0);
});

Deno.test("Controller.dispose(true) while a connect is in flight waits for it, then disconnects", async () => {
  const { controller, kernel } = setup();
  const gate = kernel.hold(TRADDR);
  controller.start();
  await settle();
  let disposed = false;
  const done = controller.dispose(true).then(() => disposed = true);
  await settle();
  assert.equal(disposed, false, "still waiting for the connect");
  assert.deepEqual(kernel.disconnects, []);
  gate.resolve();
  await done;
  assert.deepEqual(kernel.calls.map((c) => c.op), ["list", "connect", "controller", "disconnect"]);
  assert.deepEqual(kernel.disconnects, ["nvme0"]);
  assert.deepEqual(kernel.devices, []);
  assert.equal(controller.state, "disposed");
});

Deno.test("Controller.dispose(true) disconnects a connected controller", async () => {
  const { controller, kernel, sink } = setup();
  controller.start();
  await settle();
  await controller.dispose(true);
  assert.deepEqual(kernel.disconnects, ["nvme0"]);
  assert.match(sink.text(), /nvme0 - Disconnected/);
});

Deno.test("Controller.dispose(false) never calls disconnect", async () => {
  const { controller, kernel } = setup();
  controller.start();
  await settle();
  await controller.dispose(false);
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.devices, ["nvme0"]);
  assert.equal(controller.state, "disposed");
});

Deno.test("Controller.dispose(false) while a connect is in flight keeps the new connection", async () => {
  const { controller, kernel } = setup();
  const gate = kernel.hold(TRADDR);
  controller.start();
  await settle();
  const done = controller.dispose(false);
  gate.resolve();
  await done;
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.devices, ["nvme0"]);
});

Deno.test("Controller.dispose(true) does not disconnect a device name now used by another connection", async () => {
  const { controller, kernel, sink } = setup();
  controller.start();
  await settle();
  kernel.vanish("nvme0");
  kernel.add({ device: "nvme0", traddr: "192.168.1.99" });
  await controller.dispose(true);
  assert.deepEqual(kernel.disconnects, []);
  assert.deepEqual(kernel.devices, ["nvme0"]);
  assert.match(sink.text(), /nvme0 - Already gone, nothing to disconnect/);
});

Deno.test("Controller.dispose() cancels a pending retry", async () => {
  const { controller, kernel, clock, advance } = setup();
  kernel.script(TRADDR, refused());
  controller.start();
  await settle();
  assert.equal(clock.pending, 1);
  await controller.dispose(true);
  assert.equal(clock.pending, 0);
  await advance(120_000);
  assert.equal(kernel.connects.length, 1);
  assert.deepEqual(kernel.disconnects, []);
});

Deno.test("Controller.dispose() during the adoption lookup leaves the controller disposed", async () => {
  const { controller, kernel, clock } = setup();
  kernel.add({ device: "nvme4", traddr: TRADDR });
  controller.start(); // looks for an existing connection...
  await controller.dispose(false); // ...and is disposed before the answer comes
  assert.equal(controller.state, "disposed");
  controller.deviceRemoved("nvme4");
  controller.kick();
  await settle();
  assert.equal(clock.pending, 0, "a disposed controller schedules nothing");
  assert.deepEqual(kernel.connects, []);
  assert.deepEqual(kernel.disconnects, []);
});

Deno.test("Controller.dispose(true) during the adoption lookup disconnects the adopted connection", async () => {
  const { controller, kernel } = setup();
  kernel.add({ device: "nvme4", traddr: TRADDR });
  controller.start();
  await controller.dispose(true);
  assert.deepEqual(kernel.disconnects, ["nvme4"]);
});

Deno.test("Controller.dispose() logs a failed disconnect instead of throwing", async () => {
  const { controller, kernel, sink } = setup();
  controller.start();
  await settle();
  kernel.disconnectErrors.push(new Error("Device or resource busy"));
  await controller.dispose(true);
  assert.match(sink.text(), /ERROR: .* \| nvme0 - Disconnect failed: Device or resource busy/);
});

Deno.test("Controller.kick() after giving up retries at once, keeping the attempt count", async () => {
  const { controller, kernel, advance, clock } = setup({
    retry: { attemptsOnNcc: 2 },
    spec: { ncc: true },
  });
  kernel.script(TRADDR, refused(), refused(), refused());
  controller.start();
  await settle();
  await advance(3_000);
  assert.equal(controller.state, "given-up");
  controller.kick();
  await settle();
  assert.equal(kernel.connects.length, 3);
  assert.equal(controller.attempts, 3, "a reload is one more attempt, not a new count");
  assert.equal(controller.state, "given-up");
  assert.equal(clock.pending, 0);
  controller.kick();
  await settle();
  assert.equal(kernel.connects.length, 4);
  assert.equal(controller.state, "connected");
});

const mustNotConnect = () =>
  new ConnectRefusedError("dhchap-ctrl-secret", "dhchap-ctrl-secret is configured, but no");

Deno.test("Controller fails closed on a refused connect: one ERROR, no retry until kicked", async () => {
  const { controller, kernel, advance, sink } = setup();
  kernel.script(TRADDR, mustNotConnect());
  controller.start();
  await settle();
  assert.equal(controller.state, "given-up");
  assert.equal(controller.connected, false);
  await advance(600_000);
  assert.equal(kernel.connects.length, 1, "not retried");
  assert.deepEqual(sink.lines.map((l) => l.line), [
    `ERROR: ${ID} | nvme? - Not connected: dhchap-ctrl-secret is configured, but no`,
  ]);
  controller.kick(); // a reload: tried again, once
  await settle();
  assert.equal(kernel.connects.length, 2);
  assert.equal(controller.state, "connected");
});

Deno.test("Controller with a refused spec never asks the kernel to connect, but adopts", async () => {
  {
    const { controller, kernel, advance, sink } = setup({ spec: { refused: mustNotConnect() } });
    controller.start();
    await settle();
    await advance(600_000);
    assert.deepEqual(kernel.connects, []);
    assert.equal(controller.state, "given-up");
    assert.equal(sink.lines.filter((l) => l.line.startsWith("ERROR")).length, 1);
  }
  {
    const { controller, kernel } = setup({ spec: { refused: mustNotConnect() } });
    kernel.add({ device: "nvme4", traddr: TRADDR });
    controller.start();
    await settle();
    assert.equal(controller.device, "nvme4", "an existing connection is kept");
  }
});

Deno.test("Controller.kick() does nothing to a connected controller or a pending retry", async () => {
  const { controller, kernel, clock } = setup();
  kernel.script(TRADDR, refused());
  controller.start();
  await settle();
  controller.kick();
  await settle();
  assert.equal(kernel.connects.length, 1);
  assert.equal(clock.pending, 1);
  await clock.advance(3_000);
  await settle();
  controller.kick();
  await settle();
  assert.equal(kernel.connects.length, 2);
  assert.equal(controller.state, "connected");
});

Deno.test("Controller.retryTimerText reads like upstream's retry connect timer, seconds left included", async () => {
  const { controller, kernel, advance } = setup();
  assert.equal(controller.retryTimerText, "60.0s [off]", "before any failure, as upstream's");
  kernel.script(TRADDR, refused(), refused());
  controller.start();
  await settle();
  assert.equal(controller.retryTimerText, "3.0s [3.0s]");
  await advance(1_250);
  assert.equal(controller.retryTimerText, "3.0s [1.75s]");
  await advance(1_750);
  assert.equal(controller.retryTimerText, "60.0s [60.0s]");
  await advance(60_000);
  assert.equal(controller.state, "connected");
  assert.equal(controller.retryTimerText, "60.0s [off]");
});

Deno.test("Controller.assumeDevice() takes over an audited connection without connecting", async () => {
  const { controller, kernel } = setup();
  kernel.add({ device: "nvme2", traddr: TRADDR });
  controller.assumeDevice("nvme2");
  controller.start();
  await settle();
  assert.equal(controller.state, "connected");
  assert.equal(controller.device, "nvme2");
  assert.deepEqual(kernel.calls, []);
});

Deno.test("Controller.assumeDevice() does not override a controller already running", async () => {
  const { controller } = setup();
  controller.start();
  await settle();
  controller.assumeDevice("nvme9");
  assert.equal(controller.device, "nvme0");
  assert.equal(kernelController().device, "nvme0");
});
