/**
 * stacd's D-Bus service under a flood from one caller, against a real
 * dbus-daemon (issue 15 item 1): calls that want no reply cost no reply,
 * equal reads arriving together share one computation, a caller past its
 * budget is refused while another is answered, and replies the bus does
 * not take off our socket stay bounded.
 */
import assert from "node:assert/strict";
import { connectSystemBus, DBusError, Message, Variant } from "../../lib/dbus/bus_connection.ts";
import { authenticate, BusSocket, DBUS_DAEMON } from "../../lib/dbus/bus_socket.ts";
import {
  STAC_BUS_NAME,
  STAC_DEBUG_INTERFACE,
  STAC_OBJECT_PATH,
  STAC_OBJECT_SPEC,
} from "../../lib/dbus/idl.ts";
import { encodeMessage, NO_REPLY_EXPECTED } from "../../lib/dbus/message.ts";
import { objectDispatcher, onlyReads } from "../../lib/dbus/object_dispatch.ts";
import {
  LIMITS_EXCEEDED,
  MAX_CALLS_IN_FLIGHT,
  MAX_OUTBOX_BYTES,
} from "../../lib/dbus/sender_budget.ts";
import { stacHandlers } from "../../lib/dbus/service.ts";
import { createLogger, MemorySink } from "../../lib/logger.ts";
import { type FakeStacModel, fakeStacModel } from "../dbus/fake_stac_model.ts";
import { STAC_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { startStacFixture } from "../dbus/stac_fixture.ts";
import { listControllersCall } from "../dbus/flood_client.ts";

/**
 * Makes the model's first list_controllers take `ms` of the event loop, so
 * that calls sent meanwhile wait in stacd's socket and arrive in one read.
 */
function stallFirstList(model: FakeStacModel, ms: number): void {
  const list = model.listControllers.bind(model);
  let first = true;
  model.listControllers = (detailed) => {
    if (first) {
      first = false;
      const until = performance.now() + ms;
      while (performance.now() < until) { /* busy: the event loop is held */ }
    }
    return list(detailed);
  };
}

/** `count` list_controllers(true) calls written at once on one connection; their outcomes. */
async function burst(address: string, count: number): Promise<(Message | DBusError)[]> {
  const bus = BusSocket.open(address);
  try {
    await bus.ready;
    // Queued in one turn: the socket writes them in one go.
    const calls = Array.from({ length: count }, () => bus.call(listControllersCall()));
    return await Promise.all(calls.map((c) => c.catch((e: DBusError) => e)));
  } finally {
    await bus.close();
  }
}

Deno.test("calls flagged NO_REPLY_EXPECTED cost no reply computation", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const bus = BusSocket.open(f.bus.address);
  try {
    await bus.ready;
    for (let i = 0; i < 200; i++) bus.send(listControllersCall(NO_REPLY_EXPECTED));
    // Answered after all of them (one connection: in order), so they were all dispatched.
    const reply = await bus.call(listControllersCall());
    assert.equal((reply.body[0] as unknown[]).length, 2);
    assert.equal(model.calls.listControllers, 1);
  } finally {
    await bus.close();
  }
});

Deno.test("a property Set flagged NO_REPLY_EXPECTED still changes it (dbus-send without --print-reply)", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const bus = BusSocket.open(f.bus.address);
  try {
    await bus.ready;
    const properties = { ...listControllersCall(), interface: "org.freedesktop.DBus.Properties" };
    bus.send(
      new Message({
        ...properties,
        member: "Set",
        signature: "ssv",
        body: [STAC_DEBUG_INTERFACE, "tron", new Variant("b", true)],
        flags: NO_REPLY_EXPECTED,
      }),
    );
    const get = new Message({
      ...properties,
      member: "Get",
      signature: "ss",
      body: [STAC_DEBUG_INTERFACE, "tron"],
    });
    // Set asks the bus who the caller is first: its effect lands a round trip later.
    const until = performance.now() + 2000;
    while (!model.tron && performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal((await bus.call(get)).body[0].value, true);
  } finally {
    await bus.close();
  }
});

Deno.test("equal reads arriving together are computed once and all get the same reply", async () => {
  const model = fakeStacModel({ controllers: 50 });
  stallFirstList(model, 200);
  await using f = await startStacFixture(model);
  const first = burst(f.bus.address, 1);
  await new Promise((resolve) => setTimeout(resolve, 50)); // the first call is being computed
  const replies = await burst(f.bus.address, 10);
  await first;
  assert.ok(replies.every((r) => r instanceof Message), String(replies));
  const bodies = new Set(replies.map((r) => JSON.stringify((r as Message).body)));
  assert.equal(bodies.size, 1);
  assert.equal(JSON.parse([...bodies][0]!)[0].length, 50);
  // The first call, then the ten that waited behind it: one computation for the ten.
  assert.equal(model.calls.listControllers, 2);
});

Deno.test("a caller past its budget gets LimitsExceeded while another caller is answered", async () => {
  const model = fakeStacModel();
  stallFirstList(model, 200);
  await using f = await startStacFixture(model);
  const first = burst(f.bus.address, 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Both arrive while stacd is busy: the flood, then one call from someone else.
  // Fewer than the bus's own limit (128 pending calls per connection): the refusals are stacd's.
  const flood = burst(f.bus.address, MAX_CALLS_IN_FLIGHT + 36);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const other = burst(f.bus.address, 1);
  const [floodOutcomes, [otherOutcome]] = await Promise.all([flood, other, first]);
  const refused = floodOutcomes.filter((r) => r instanceof DBusError);
  assert.ok(refused.length > 0, "none of the flood refused");
  assert.ok(refused.every((e) => (e as DBusError).type === LIMITS_EXCEEDED), String(refused[0]));
  assert.ok(floodOutcomes.some((r) => r instanceof Message), "the flood's first calls answered");
  assert.ok(otherOutcome instanceof Message, `the other caller got ${otherOutcome}`);
});

/** A bus that stops reading a connection once 1 MiB of what it sent is still undelivered. */
async function tightBus() {
  const dir = await Deno.makeTempDir({ prefix: "stacd-limits-" });
  const limits = `${dir}/limits.conf`;
  await Deno.writeTextFile(
    limits,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><limit name="max_incoming_bytes">1048576</limit></busconfig>\n`,
  );
  const bus = await startPrivateBus({ policies: [STAC_POLICY, limits] });
  return {
    bus,
    async [Symbol.asyncDispose]() {
      await bus.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A client that sends `count` list_controllers(true) calls and never reads a byte. */
async function nonReader(socketPath: string, count: number): Promise<Deno.UnixConn> {
  const conn = await Deno.connect({ transport: "unix", path: socketPath });
  await authenticate(conn);
  const hello = new Message({ ...DBUS_DAEMON, member: "Hello" });
  hello.serial = 1;
  const calls = Array.from({ length: count }, (_, i) => {
    const call = listControllersCall();
    call.serial = i + 2;
    return encodeMessage(call);
  });
  for (const bytes of [encodeMessage(hello), ...calls]) {
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
  }
  return conn;
}

Deno.test("replies the bus does not take stay bounded: per caller, and in all", async () => {
  await using tight = await tightBus();
  const { bus } = tight;
  // The service's wiring (service.ts) on a connection whose outbox the test can see.
  const stacd = await connectSystemBus({ address: bus.address });
  const model = fakeStacModel({ controllers: 50 });
  const handlers = stacHandlers(model, {
    log: createLogger(new MemorySink()),
    emitTron: () => {},
    requireRoot: () => Promise.resolve(),
  });
  stacd.bus.serveCalls(
    objectDispatcher(
      stacd.bus,
      { path: STAC_OBJECT_PATH, spec: STAC_OBJECT_SPEC, handlers },
      createLogger(new MemorySink()),
    ),
    { dropOneWay: onlyReads },
  );
  const readers: Deno.UnixConn[] = [];
  try {
    await stacd.call({
      ...DBUS_DAEMON,
      member: "RequestName",
      signature: "su",
      body: [
        STAC_BUS_NAME,
        4,
      ],
    });
    let most = 0;
    const sampling = setInterval(() => most = Math.max(most, stacd.bus.queuedBytes), 5);
    // Each never-reading caller gets up to 128 calls past the bus (its pending-reply limit).
    for (let i = 0; i < 12; i++) readers.push(await nonReader(bus.socketPath, 128));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    clearInterval(sampling);
    const replyBytes = 60 * 1024; // a 50-controller list_controllers(true), and then some
    assert.ok(most > 1024 * 1024, `the bus stopped reading us: ${most} bytes queued at most`);
    assert.ok(most <= MAX_OUTBOX_BYTES + replyBytes + 128 * 12 * 300, `${most} bytes queued`);
    // stacd still computes nothing more than the budgets allow.
    assert.ok(model.calls.listControllers! < 12 * 128, `${model.calls.listControllers} computed`);
  } finally {
    for (const conn of readers) conn.close();
    await stacd.close();
  }
});
