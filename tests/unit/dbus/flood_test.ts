/**
 * stacd's D-Bus service under a flood from one caller, against a real
 * dbus-daemon (issue 15 item 1): calls that want no reply cost no reply,
 * equal reads arriving together share one computation, a caller past its
 * budget is refused while another is answered, and replies the bus does
 * not take off our socket stay bounded.
 */
import assert from "node:assert/strict";
import { connectSystemBus, Message, Variant } from "../../../lib/dbus/bus_connection.ts";
import { authenticate, BusSocket, DBUS_DAEMON } from "../../../lib/dbus/bus_socket.ts";
import {
  STAC_BUS_NAME,
  STAC_DEBUG_INTERFACE,
  STAC_OBJECT_PATH,
  STAC_OBJECT_SPEC,
} from "../../../lib/dbus/idl.ts";
import { encodeMessage, NO_REPLY_EXPECTED } from "../../../lib/dbus/message.ts";
import { objectDispatcher, onlyReads } from "../../../lib/dbus/object_dispatch.ts";
import {
  LIMITS_EXCEEDED,
  MAX_CALLS_IN_FLIGHT,
  MAX_OUTBOX_BYTES,
} from "../../../lib/dbus/sender_budget.ts";
import { stacHandlers } from "../../../lib/dbus/service.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import { type FakeStacModel, fakeStacModel } from "../../dbus/fake_stac_model.ts";
import { STAC_POLICY, startPrivateBus } from "../../dbus/private_bus.ts";
import { startStacFixture } from "../../dbus/stac_fixture.ts";
import { listControllersCall } from "../../dbus/flood_client.ts";
import { BurstFlags, type BurstOutcome, type BurstRequest } from "../../dbus/burst_worker.ts";

/**
 * Calls from Worker callers (tests/dbus/burst_worker.ts), each `counts[i]`
 * list_controllers(true) at once, that reach stacd in one read: the
 * model's first list_controllers holds the event loop until every worker
 * has had its calls routed by the bus, the second worker sending only
 * after the first. Returns each worker's outcome, in order.
 */
async function burstsWhileHeld(
  model: FakeStacModel,
  address: string,
  counts: [number, number?],
): Promise<BurstOutcome[]> {
  const flags = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  const last = counts.length === 2 ? BurstFlags.second : BurstFlags.first;
  const list = model.listControllers.bind(model);
  let first = true;
  model.listControllers = (detailed) => {
    if (first) {
      first = false;
      Atomics.store(flags, BurstFlags.held, 1);
      Atomics.notify(flags, BurstFlags.held);
      Atomics.wait(flags, last, 0, 30_000); // held: what the workers send waits in our socket
    }
    return list(detailed);
  };
  const outcomes = counts.map((count, i) => {
    const worker = new Worker(new URL("../../dbus/burst_worker.ts", import.meta.url), {
      type: "module",
    });
    const outcome = new Promise<BurstOutcome>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<BurstOutcome>) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(event.message));
    });
    const request: BurstRequest = {
      address,
      count: count!,
      flags,
      after: i === 0 ? BurstFlags.held : BurstFlags.first,
      raise: i === 0 ? BurstFlags.first : BurstFlags.second,
    };
    worker.postMessage(request);
    return outcome;
  });
  const bus = BusSocket.open(address);
  try {
    await bus.ready;
    const held = bus.call(listControllersCall()); // the call that holds the loop
    const results = await Promise.all(outcomes);
    await held;
    return results;
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
  await using f = await startStacFixture(model);
  const [outcome] = await burstsWhileHeld(model, f.bus.address, [10]);
  assert.deepEqual(outcome!.errors, []);
  const bodies = new Set(outcome!.bodies);
  assert.equal(outcome!.bodies.length, 10);
  assert.equal(bodies.size, 1);
  assert.equal(JSON.parse([...bodies][0]!)[0].length, 50);
  // The call that held the loop, then the ten that waited behind it: one computation for the ten.
  assert.equal(model.calls.listControllers, 2);
});

Deno.test("a caller past its budget gets LimitsExceeded while another caller is answered", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  // Both arrive while stacd is busy: the flood, then one call from someone else.
  // Fewer than the bus's own limit (128 pending calls per connection): the refusals are stacd's.
  const [flood, other] = await burstsWhileHeld(model, f.bus.address, [MAX_CALLS_IN_FLIGHT + 36, 1]);
  assert.equal(flood!.errors.length, 36, "the calls past the budget are refused");
  assert.ok(flood!.errors.every((e) => e === LIMITS_EXCEEDED), flood!.errors[0]);
  assert.equal(flood!.bodies.length, MAX_CALLS_IN_FLIGHT, "the flood's first calls answered");
  assert.deepEqual(other!.errors, [], "the other caller is answered");
  assert.equal(other!.bodies.length, 1);
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
    // Until the bus stopped reading us (a loaded machine takes longer), then a while more.
    for (const until = Date.now() + 30_000; most <= 1024 * 1024 && Date.now() < until;) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
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
