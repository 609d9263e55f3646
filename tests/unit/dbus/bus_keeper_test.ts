/**
 * stacd without a system bus, and with one that restarts (docs/design.md#without-a-system-bus): the
 * service says once that the D-Bus API is off, and takes the name again as
 * soon as the bus socket reappears (inotify, no retry timer).
 */
import assert from "node:assert/strict";
import { keepOnBus, systemBusSocketPath } from "../../../lib/dbus/bus_keeper.ts";
import { startStacService } from "../../../lib/dbus/service.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import { fakeStacModel } from "../../dbus/fake_stac_model.ts";
import { startPrivateBus } from "../../dbus/private_bus.ts";

async function until(probe: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!probe()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("systemBusSocketPath() reads DBUS_SYSTEM_BUS_ADDRESS, else the standard socket", () => {
  assert.equal(systemBusSocketPath("unix:path=/tmp/x/bus"), "/tmp/x/bus");
  assert.equal(systemBusSocketPath("unix:guid=1,path=/a/b;tcp:host=h"), "/a/b");
  assert.equal(systemBusSocketPath("unix:abstract=/x"), "/run/dbus/system_bus_socket");
});

Deno.test("the service starts when the bus appears after stacd, and returns after a bus restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stacd-keeper-" });
  await Deno.chmod(dir, 0o755);
  const socketPath = `${dir}/system_bus_socket`;
  const sink = new MemorySink();
  const log = createLogger(sink);
  const model = fakeStacModel();
  const keeper = keepOnBus(
    "org.nvmexpress.stac",
    () => startStacService(model, { log, busAddress: `unix:path=${socketPath}`, timeoutMs: 3000 }),
    { log, socketPath },
  );
  try {
    await keeper.firstAttempt;
    assert.equal(keeper.current, undefined, "no bus yet");
    assert.equal(sink.lines.filter((l) => /D-Bus API off/.test(l.line)).length, 1);

    let bus = await startPrivateBus({ dir });
    await until(() => keeper.current !== undefined, "the service on the new bus");
    assert.match(sink.text(), /D-Bus API back on/);

    await bus.close();
    await until(() => keeper.current === undefined, "the service noticing the bus is gone");
    assert.equal(sink.lines.filter((l) => /D-Bus API off/.test(l.line)).length, 2, sink.text());

    bus = await startPrivateBus({ dir });
    await until(() => keeper.current !== undefined, "the service after the bus restart");
    await keeper.close();
    await bus.close();
  } finally {
    await keeper.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a stale bus socket (nobody listening) is tried, then the bus that replaces it is taken", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stacd-keeper-" });
  await Deno.chmod(dir, 0o755);
  const socketPath = `${dir}/system_bus_socket`;
  // A socket file left behind by a bus that died: it exists and refuses.
  await leaveStaleSocket(socketPath);
  assert.ok(Deno.statSync(socketPath).isSocket, "the stale socket stays");
  const sink = new MemorySink();
  const log = createLogger(sink);
  log.tron = true;
  const keeper = keepOnBus(
    "org.nvmexpress.stac",
    () => startStacService(fakeStacModel(), { log, busAddress: `unix:path=${socketPath}` }),
    { log, socketPath },
  );
  try {
    await keeper.firstAttempt;
    assert.equal(keeper.current, undefined);
    assert.match(sink.text(), /Connection refused/);
    await using _bus = await startPrivateBus({ dir });
    await until(() => keeper.current !== undefined, "the service on the new bus");
  } finally {
    await keeper.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** A listener killed with SIGKILL, so nothing removes its socket file. */
async function leaveStaleSocket(path: string): Promise<void> {
  // A pending accept() keeps the process alive: an await on nothing lets it
  // exit (and remove the socket file) before the SIGKILL comes.
  const code = `const l = Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });` +
    `console.log("listening"); await l.accept();`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await reader.read();
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
}
