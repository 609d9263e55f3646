/**
 * Following stafd against the real kernel: the stand-in reads the guest's
 * nvmet discovery controller through libnvme and serves its pages on a
 * private bus; the follower must see exactly the target's subsystems, and
 * the shorter list once one is unlinked from the port, whether the re-read
 * is asked for or comes from the kernel's "discovery log changed" AEN on a
 * persistent discovery controller.
 * Runs only in the guest: deno run -A tests/guest/run_suite.ts stafd
 */
import assert from "node:assert/strict";
import { followStafd } from "../../lib/dbus/stafd_follower.ts";
import { STAF_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { memoryLogger, nvmeNqns, PagesRecorder } from "../dbus/stafd_events.ts";
import { DISCOVERY_LOG_CHANGED_AEN, discoverySource } from "../dbus/stafd_sources.ts";
import { StafdStandin } from "../stafd_standin.ts";
import { controllers, deleteAllControllers, hostIdentity, sysfsAttribute } from "./nvme_host.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";

const DC = "transport=tcp;traddr=127.0.0.1;trsvcid=4420";
/** Generous: everything is slow under TCG. */
const WAIT_MS = 60_000;

const kato = (device: string) => sysfsAttribute(device, "kato");

async function following(persistent: boolean) {
  const bus = await startPrivateBus({ policies: [STAF_POLICY] });
  const rec = new PagesRecorder();
  const { log, sink } = memoryLogger();
  const follower = await followStafd({ busAddress: bus.address, log, onPages: rec.onPages });
  const source = await discoverySource({ dcs: [DC], persistent });
  // Read before taking the name, as the follower reads stafd as soon as it appears.
  const stafd = await StafdStandin.start(bus.address, await source.read());
  stafd.use(source);
  return {
    rec,
    sink,
    source,
    stafd,
    async [Symbol.asyncDispose]() {
      await stafd.close(); // closes the source: disconnects the persistent controller
      await follower.close();
      await bus.close();
      await deleteAllControllers();
    },
  };
}

Deno.test("the follower sees the target's subsystems, then the shorter list after an unlink and a re-read", async () => {
  using t = createTarget({ subsystems: 4, ports: [LOOPBACK_PORT] });
  await using f = await following(false);
  const first = await f.rec.next("appeared", WAIT_MS);
  assert.equal(first.reason, "appeared");
  assert.deepEqual(nvmeNqns(first.pages), [...t.nqns].sort());
  assert.equal(first.pages?.[0]?.hostNqn, hostIdentity().hostnqn);
  for (const e of first.pages?.[0]?.entries.filter((e) => e.subtype === "nvme") ?? []) {
    assert.deepEqual([e.trtype, e.adrfam, e.traddr, e.trsvcid, e.portid], [
      "tcp",
      "ipv4",
      "127.0.0.1",
      "4420",
      "1",
    ]);
  }
  assert.equal(controllers().length, 0, "the one-shot discovery controller is gone again");

  t.target.unlinkSubsystem(LOOPBACK_PORT.id, t.nqns[0]!);
  await f.stafd.reload();
  const after = await f.rec.next("changed", WAIT_MS);
  assert.equal(after.reason, "changed");
  assert.deepEqual(nvmeNqns(after.pages), t.nqns.slice(1).sort());
  assert.equal(f.stafd.calls, 2);
});

Deno.test("a persistent discovery controller gets the kernel's discovery-log-changed AEN, and the follower the shorter list", async () => {
  using t = createTarget({ subsystems: 3, ports: [LOOPBACK_PORT] });
  await using f = await following(true);
  const first = await f.rec.next("appeared", WAIT_MS);
  assert.deepEqual(nvmeNqns(first.pages), [...t.nqns].sort());
  const [device] = f.source.devices;
  assert.match(device ?? "", /^nvme\d+$/);
  assert.equal(controllers().find((c) => c.name === device)?.state, "live");

  const unlinked = performance.now();
  t.target.unlinkSubsystem(LOOPBACK_PORT.id, t.nqns[0]!);
  // No reload() here: only the AEN's udev event can make the stand-in re-read.
  const after = await f.rec.next("changed after the AEN", WAIT_MS);
  const afterMs = Math.round(performance.now() - unlinked);
  assert.deepEqual(nvmeNqns(after.pages), t.nqns.slice(1).sort());
  assert.ok(
    f.source.aens.some((aen) => Number.parseInt(aen, 16) === DISCOVERY_LOG_CHANGED_AEN),
    `AENs seen: ${f.source.aens.join(", ")}`,
  );
  // nvmet masks further discovery AENs until the log page is read again: the
  // stand-in's re-read re-armed it, so a second change is reported too.
  t.target.unlinkSubsystem(LOOPBACK_PORT.id, t.nqns[1]!);
  const again = await f.rec.next("changed after a second AEN", WAIT_MS);
  assert.deepEqual(nvmeNqns(again.pages), t.nqns.slice(2).sort());
  assert.equal(f.source.aens.length, 2);
  console.log(
    `kernel ${Deno.osRelease()}: ${device} (kato ${kato(device!)} s) reported ` +
      `NVME_AEN=${f.source.aens.join(",")}; ` +
      `shorter list at the follower ${afterMs} ms after the first unlink`,
  );
});
