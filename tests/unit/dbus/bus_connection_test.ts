/**
 * lib/dbus/bus_connection.ts against a real dbus-daemon: a peer that never
 * answers a call, a socket that never answers the handshake, the loss of
 * the bus, and a call aborted by its signal.
 */
import assert from "node:assert/strict";
import { connectSystemBus, DBusError } from "../../../lib/dbus/bus_connection.ts";
import { DBUS_DAEMON } from "../../../lib/dbus/bus_socket.ts";
import { FakeClock } from "../../fake_clock.ts";
import { STAF } from "../../../lib/dbus/stafd_bus.ts";
import { startPrivateBus } from "../../dbus/private_bus.ts";

Deno.test("a call the peer never answers fails with NoReply after its timeout", async () => {
  await using bus = await startPrivateBus();
  const caller = await connectSystemBus({ address: bus.address });
  const silent = await connectSystemBus({ address: bus.address });
  let received = 0;
  silent.bus.serveCalls(() => received++); // takes the call, never replies
  try {
    // A system bus lets a call through only if its policy allows a name the
    // receiver owns: the test policy lets root own and reach stafd's.
    await silent.call({
      ...DBUS_DAEMON,
      member: "RequestName",
      signature: "su",
      body: ["org.nvmexpress.staf", 4],
    });
    const started = performance.now();
    const error = await caller.call(
      {
        destination: silent.uniqueName,
        path: "/",
        interface: "org.example.Silent",
        member: "Wait",
      },
      { timeoutMs: 150 },
    ).then(() => undefined, (e) => e);
    const took = performance.now() - started;
    assert.ok(error instanceof DBusError, `expected a DBusError, got ${error}`);
    assert.equal(error.type, "org.freedesktop.DBus.Error.NoReply");
    assert.equal(error.text, "Wait got no reply within 150 ms");
    assert.equal(received, 1);
    assert.ok(took >= 140 && took < 2000, `failed after ${took} ms`);
    // The connection is still usable afterwards.
    const reply = await caller.call({ ...DBUS_DAEMON, member: "GetId" });
    assert.match(String(reply.body[0]), /^[0-9a-f]{32}$/);
  } finally {
    await caller.close();
    await silent.close();
  }
});

Deno.test("a socket that never answers the handshake fails the connect after its timeout, naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stacd-mute-bus-" });
  const path = `${dir}/bus`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn); // and stays silent
  })();
  try {
    const started = performance.now();
    await assert.rejects(
      connectSystemBus({ address: `unix:path=${path}`, timeoutMs: 200 }),
      new RegExp(
        `^Error: Cannot connect to the D-Bus system bus at unix:path=${path}: ` +
          "no answer within 200 ms$",
      ),
    );
    assert.ok(performance.now() - started >= 190);
    assert.equal(accepted.length, 1);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of accepted) conn.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("losing the bus is reported once through onLost; close() is not a loss", async () => {
  const bus = await startPrivateBus();
  const lost: string[] = [];
  const kept = await connectSystemBus({ address: bus.address, onLost: (why) => lost.push(why) });
  const closed: string[] = [];
  const leaving = await connectSystemBus({
    address: bus.address,
    onLost: (why) => closed.push(why),
  });
  try {
    await leaving.close();
    await bus.close();
    assert.equal(await kept.closed, "the bus closed the connection");
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(lost, ["the bus closed the connection"]);
    assert.deepEqual(closed, [], "closed by us: not reported");
    await kept.close();
    assert.equal(lost.length, 1);
  } finally {
    await kept.close();
    await bus.close();
  }
});

Deno.test("a call ends as soon as its signal aborts, with the signal's reason", async () => {
  await using bus = await startPrivateBus();
  const clock = new FakeClock();
  const caller = await connectSystemBus({ address: bus.address, clock });
  const silent = await connectSystemBus({ address: bus.address });
  silent.bus.serveCalls(() => {}); // takes the call, never replies
  try {
    await silent.call({
      ...DBUS_DAEMON,
      member: "RequestName",
      signature: "su",
      body: [STAF.name, 4],
    });
    const stop = new AbortController();
    const call = caller.call(
      { destination: STAF.name, path: "/", interface: "org.example.Silent", member: "Wait" },
      { signal: stop.signal },
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(clock.pending, 1, "the call's time limit");
    stop.abort(new Error("stopped"));
    await assert.rejects(call, /^Error: stopped$/);
    assert.equal(clock.pending, 0, "its timer is gone with it");
    await assert.rejects(
      caller.call({ ...DBUS_DAEMON, member: "GetId" }, { signal: stop.signal }),
      /^Error: stopped$/,
      "an aborted signal fails a call at once",
    );
  } finally {
    await caller.close();
    await silent.close();
  }
});
