import assert from "node:assert/strict";
import { acquireInstanceLock, AlreadyRunningError } from "../../lib/instance_lock.ts";

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
