import assert from "node:assert/strict";
import { acquireInstanceLock, AlreadyRunningError } from "../../../lib/daemon/instance_lock.ts";

Deno.test("a second stacd is refused at once, naming the first one's PID", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = acquireInstanceLock(`${dir}/run`);
    assert.equal((await Deno.stat(`${dir}/run`)).mode! & 0o777, 0o700);
    assert.throws(() => acquireInstanceLock(`${dir}/run`), (error: unknown) => {
      assert.ok(error instanceof AlreadyRunningError);
      assert.equal(error.pid, String(Deno.pid));
      assert.match(error.message, new RegExp(`already running \\(PID ${Deno.pid}`));
      return true;
    });
    first.release();
    acquireInstanceLock(`${dir}/run`).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lock file that cannot be opened is reported with the OS's reason", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Root writes anywhere, so a directory in the lock file's place stands in for a read-only one.
    await Deno.mkdir(`${dir}/run/stacd.lock`, { recursive: true });
    assert.throws(
      () => acquireInstanceLock(`${dir}/run`),
      /Cannot open .*stacd\.lock: Is a directory/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a symlink planted in the lock file's place is refused, its target untouched", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/run`);
    await Deno.writeTextFile(`${dir}/victim`, "precious\n");
    await Deno.symlink(`${dir}/victim`, `${dir}/run/stacd.lock`);
    assert.throws(
      () => acquireInstanceLock(`${dir}/run`),
      /Cannot open .*stacd\.lock: Too many levels of symbolic links/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/victim`), "precious\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
