import assert from "node:assert/strict";
import {
  checkHealth,
  HEALTH_SOCKET,
  listenPrivate,
  serveHealth,
} from "../../../lib/daemon/health_socket.ts";

Deno.test("--health answers true while the daemon serves its socket (mode 0600), false after", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const server = await serveHealth(dir, () => "ok");
    assert.equal((await Deno.stat(`${dir}/${HEALTH_SOCKET}`)).mode! & 0o777, 0o600);
    assert.equal(await checkHealth(dir), true);
    server.close();
    assert.equal(await checkHealth(dir), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--health gives up after its timeout when nobody answers", async () => {
  const dir = await Deno.makeTempDir();
  // A listener that accepts but never writes: a hung daemon.
  const listener = Deno.listen({ transport: "unix", path: `${dir}/${HEALTH_SOCKET}` });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const started = performance.now();
    assert.equal(await checkHealth(dir, 300), false);
    assert.ok(performance.now() - started < 2_000);
  } finally {
    listener.close();
    held.forEach((c) => c.close());
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listenPrivate() makes the socket node 0600 from the start, whatever the umask", async () => {
  const dir = await Deno.makeTempDir();
  const umask = Deno.umask(0o022); // a usual umask: alone, it would leave the node 0755
  try {
    using listener = listenPrivate(`${dir}/s.sock`);
    // Read before anything else runs: no chmod can have come in between.
    assert.equal(Deno.lstatSync(`${dir}/s.sock`).mode! & 0o777, 0o600);
    assert.equal(Deno.umask(0o022), 0o022, "the process's umask is restored");
    assert.ok(listener.addr);
  } finally {
    Deno.umask(umask);
    await Deno.remove(dir, { recursive: true });
  }
});
