/**
 * The campaign's kernel watch against the real kernel (no stacd, no row in
 * the table): it must see what the fault tests rely on it to see.
 * Runs only in the guest: deno task faults watch
 */
import assert from "node:assert/strict";
import { connectRaw, deleteController, hostIdentity, waitFor } from "../guest/nvme_host.ts";
import { createTarget, LOOPBACK_PORT } from "../guest/target.ts";
import { identities, KernelWatch, sleep } from "./fault_kit.ts";

/** `duplicate`: the kernel refuses a second identical connection (EALREADY) unless asked. */
function connect(nqn: string, duplicate = false): string {
  const { hostnqn, hostid } = hostIdentity();
  return connectRaw(
    `nqn=${nqn},transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=${hostnqn},hostid=${hostid}` +
      (duplicate ? ",duplicate_connect" : ""),
  );
}

Deno.test("the watch sees a kept connection deleted and made again, even as the same nvmeX/cntlid", async () => {
  using t = createTarget({ subsystems: 2, ports: [LOOPBACK_PORT] });
  const [kept, other] = t.nqns as [string, string];
  // Samples only when told to (check()), so that none falls between the delete and the connect.
  await using watch = new KernelWatch(3_600_000);
  const device = connect(kept);
  connect(other);
  await waitFor(() => identities().size === 2 || undefined, "two connections");
  const before = identities();
  watch.keep(before);
  watch.check();
  assert.deepEqual(watch.violations, [], "nothing changed yet");

  // Between two samples: the same name (and maybe cntlid) again, but a new kernfs node.
  deleteController(device);
  connect(kept);
  const after = identities();
  watch.check();
  assert.ok(watch.violations.length > 0, `unseen: ${before.get(kept)} -> ${after.get(kept)}`);
  assert.equal(after.get(kept)?.split("/")[0], device, "the kernel gave the same name again");
  assert.match(watch.violations[0]!, new RegExp(`kept ${kept.replace(/\./g, "\\.")} was`));
});

Deno.test("the watch sees a subsystem connected twice", async () => {
  using t = createTarget({ subsystems: 1, ports: [LOOPBACK_PORT] });
  await using watch = new KernelWatch();
  connect(t.nqns[0]!);
  connect(t.nqns[0]!, true);
  await sleep(300);
  assert.match(watch.violations[0] ?? "", /connected 2 times/);
});
