/**
 * stacd's D-Bus service under bad input and bad weather: malformed calls,
 * a model that throws, a taken name, no bus, and the bus going away. The
 * service must answer each call with a D-Bus error, never crash, never
 * stall, and stacd must outlive its bus.
 */
import assert from "node:assert/strict";
import { connectSystemBus } from "../../../lib/dbus/bus_connection.ts";
import { startStacService } from "../../../lib/dbus/service.ts";
import { StacClient } from "../../../lib/dbus/stac_client.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import { fakeStacModel } from "../../dbus/fake_stac_model.ts";
import { startPrivateBus } from "../../dbus/private_bus.ts";
import { dbusSend, errorName, startStacFixture } from "../../dbus/stac_fixture.ts";

const DEBUG = "org.nvmexpress.stac.debug";
const PROPS = "org.freedesktop.DBus.Properties";
const ERR = "org.freedesktop.DBus.Error.";
const strings = (n: number) => Array.from({ length: n }, (_, i) => `string:a${i}`);

/** dbus-send argument lists and the error each must get. */
const MALFORMED: [string, string[], string?][] = [
  ["InvalidArgs", ["org.nvmexpress.stac.list_controllers", "string:yes"]],
  ["InvalidArgs", ["org.nvmexpress.stac.list_controllers"]],
  ["InvalidArgs", ["org.nvmexpress.stac.list_controllers", "boolean:true", "boolean:true"]],
  ["InvalidArgs", [`${DEBUG}.controller_info`, ...strings(6)]],
  ["InvalidArgs", [`${DEBUG}.controller_info`, ...strings(8)]],
  ["InvalidArgs", [`${DEBUG}.controller_info`, ...Array(7).fill("int32:1")]],
  ["InvalidArgs", [`${DEBUG}.process_info`, "string:x"]],
  ["UnknownMethod", ["org.nvmexpress.stac.remove_controller", "string:x"]],
  ["UnknownInterface", ["org.nvmexpress.nope.list_controllers", "boolean:true"]],
  ["UnknownProperty", [`${PROPS}.Get`, `string:${DEBUG}`, "string:hostkey"]],
  ["UnknownInterface", [`${PROPS}.Get`, "string:org.nvmexpress.staf", "string:tron"]],
  ["InvalidArgs", [`${PROPS}.Get`, `string:${DEBUG}`]],
  ["PropertyReadOnly", [
    `${PROPS}.Set`,
    `string:${DEBUG}`,
    "string:log_level",
    "variant:string:DEBUG",
  ]],
  ["InvalidArgs", [`${PROPS}.Set`, `string:${DEBUG}`, "string:tron", "variant:string:yes"]],
  ["InvalidArgs", [`${PROPS}.Set`, `string:${DEBUG}`, "string:tron", "variant:int32:1"]],
  ["UnknownObject", ["org.freedesktop.DBus.Introspectable.Introspect"], "/org/nvmexpress/stac/x"],
  ["UnknownObject", ["org.nvmexpress.stac.list_controllers", "boolean:true"], "/"],
];

async function stillAnswers(address: string) {
  const client = await StacClient.connect({ address, timeoutMs: 2000 });
  try {
    assert.equal((await client.listControllers(false)).length, 2);
  } finally {
    await client.close();
  }
}

Deno.test("malformed calls (types, arity, unknown members, paths) each get their D-Bus error", async () => {
  await using f = await startStacFixture();
  for (const [expected, args, path] of MALFORMED) {
    const ran = await dbusSend(f.bus, args, { path });
    assert.equal(errorName(ran), `${ERR}${expected}`, `${args.join(" ")}: ${ran.stderr}`);
  }
  await stillAnswers(f.bus.address);
  // Refusals are the caller's problem: logged at debug, never as errors.
  assert.deepEqual(f.sink.lines.filter((l) => l.priority <= 4), []);
});

Deno.test("1 MiB strings get InvalidArgs with a short message, and the service keeps answering", async () => {
  await using f = await startStacFixture();
  const client = await connectSystemBus({ address: f.bus.address });
  try {
    const huge = "x".repeat(1 << 20);
    const to = { destination: "org.nvmexpress.stac", path: "/org/nvmexpress/stac" };
    await assert.rejects(
      client.call({
        ...to,
        interface: DEBUG,
        member: "controller_info",
        signature: "sssssss",
        body: Array(7).fill(huge),
      }),
      (e: { type: string; text: string }) => e.type === `${ERR}InvalidArgs` && e.text.length < 200,
    );
    await assert.rejects(
      client.call({ ...to, interface: PROPS, member: "Get", signature: "ss", body: [huge, huge] }),
      (e: { type: string; text: string }) => e.type === `${ERR}InvalidArgs` && e.text.length < 200,
    );
    // A call may omit the interface; the member name then decides.
    const reply = await client.call({
      ...to,
      interface: undefined as unknown as string,
      member: "list_controllers",
      signature: "b",
      body: [false],
    });
    assert.equal(reply.signature, "aa{ss}");
  } finally {
    await client.close();
  }
  await stillAnswers(f.bus.address);
});

Deno.test("a client sending an invalid message is cut off by the bus; the service keeps answering", async () => {
  await using f = await startStacFixture();
  const rogue = await connectSystemBus({ address: f.bus.address });
  // An fd-typed argument without a file descriptor: dbus-daemon rejects the message and drops the sender.
  await assert.rejects(rogue.call({
    destination: "org.nvmexpress.stac",
    path: "/org/nvmexpress/stac",
    interface: "org.nvmexpress.stac",
    member: "list_controllers",
    signature: "h",
    body: [0],
  }, { timeoutMs: 2000 }));
  await rogue.close();
  await stillAnswers(f.bus.address);
});

Deno.test("a model that throws: the caller gets Failed without internals, stacd logs it and keeps serving", async () => {
  await using f = await startStacFixture(fakeStacModel({ throwing: true }));
  const ran = await dbusSend(f.bus, [`${DEBUG}.process_info`]);
  assert.equal(errorName(ran), `${ERR}Failed`);
  assert.doesNotMatch(ran.stderr, /broke|\.ts/);
  assert.match(f.sink.text(), /process_info failed: TypeError: processInfo broke/);
  const get = await dbusSend(f.bus, [`${PROPS}.Get`, `string:${DEBUG}`, "string:tron"]);
  assert.equal(get.code, 0, get.stderr);
});

Deno.test("startStacService() refuses with a clear reason when another process owns the name", async () => {
  await using f = await startStacFixture();
  await assert.rejects(
    startStacService(fakeStacModel(), {
      log: createLogger(new MemorySink()),
      busAddress: f.bus.address,
    }),
    /Cannot own the D-Bus name org.nvmexpress.stac: another process owns it/,
  );
});

Deno.test("startStacService() fails at once, naming the address, when no bus listens there", async () => {
  const started = performance.now();
  await assert.rejects(
    startStacService(fakeStacModel(), {
      log: createLogger(new MemorySink()),
      busAddress: "unix:path=/nonexistent/system_bus_socket",
    }),
    /Cannot connect to the D-Bus system bus at unix:path=\/nonexistent\/system_bus_socket/,
  );
  assert.ok(performance.now() - started < 2000);
});

Deno.test("when the bus goes away the service says so once and resolves closed; it restarts on a new bus", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stacd-bus-" });
  const sink = new MemorySink();
  const log = createLogger(sink);
  try {
    const first = await startPrivateBus({ dir });
    const service = await startStacService(fakeStacModel(), { log, busAddress: first.address });
    await first.close(); // dbus-daemon stops, as when the system bus restarts
    assert.match(await service.closed, /the bus closed the connection/);
    service.emitTron(true); // harmless once off
    await service.close();
    assert.equal(sink.lines.filter((l) => /D-Bus API off/.test(l.line)).length, 1);

    await using second = await startPrivateBus({ dir });
    const again = await startStacService(fakeStacModel(), { log, busAddress: second.address });
    try {
      await stillAnswers(second.address);
    } finally {
      await again.close();
    }
    assert.equal(sink.lines.filter((l) => /D-Bus API off/.test(l.line)).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
