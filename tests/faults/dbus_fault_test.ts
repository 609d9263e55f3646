/**
 * The D-Bus daemon restarted under stacd (a new dbus-daemon on the same
 * socket): stacd stays up and keeps every connection (stafd's answer is
 * unknown meanwhile, not empty), takes its name again and still serves
 * list_controllers, and follows stafd on the new bus.
 * Runs only in the guest: deno task faults dbus
 */
import assert from "node:assert/strict";
import { StacClient } from "../../lib/dbus/stac_client.ts";
import { STAC_POLICY, STAF_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { discoverySource } from "../dbus/stafd_sources.ts";
import { controllers, deleteAllControllers, waitFor } from "../guest/nvme_host.ts";
import { stacdConf, StacdProcess, waitForLiveSet } from "../guest/stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "../guest/target.ts";
import { StafdStandin } from "../stafd_standin.ts";
import {
  assertNoDuplicates,
  assertSurvived,
  countLines,
  faultTest,
  identities,
  KernelWatch,
  scratch,
  sleep,
} from "./fault_kit.ts";

const DC = "transport=tcp;traddr=127.0.0.1;trsvcid=4420";
const policies = [STAC_POLICY, STAF_POLICY];

async function standin(busAddress: string): Promise<StafdStandin> {
  const source = await discoverySource({ dcs: [DC] });
  const stafd = await StafdStandin.start(busAddress, await source.read());
  stafd.use(source);
  return stafd;
}

/** list_controllers(false) over the bus: subsysnqn -> device. */
async function listed(address: string): Promise<Map<string, string>> {
  const client = await StacClient.connect({ address, timeoutMs: 10_000 });
  try {
    return new Map((await client.listControllers(false)).map((c) => [c.subsysnqn!, c.device!]));
  } finally {
    await client.close();
  }
}

faultTest("D-Bus daemon restarted", async (record) => {
  // s1-s3 configured, all six discovered: both origins go through the outage.
  using t = createTarget({ subsystems: 6, ports: [LOOPBACK_PORT] });
  const busDir = await Deno.makeTempDir({ prefix: "stacd-bus-" });
  await Deno.chmod(busDir, 0o755);
  let bus = await startPrivateBus({ policies, dir: busDir });
  const s = await scratch();
  await Deno.writeTextFile(s.confFile, stacdConf(t.nqns.slice(0, 3)));
  let stafd = await standin(bus.address);
  await using watch = new KernelWatch();
  try {
    await using stacd = new StacdProcess({
      ...s,
      env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address },
    });
    await waitForLiveSet(t.nqns, 60_000);
    await stacd.waitForLog(/D-Bus API on/);
    const before = identities();
    watch.keep(before);
    assert.equal((await listed(bus.address)).size, 6);

    await stafd.close();
    await bus.close();
    record.injected = "1 bus restart";
    await stacd.waitForLog(/D-Bus API off: lost the system bus/);
    await stacd.waitForLog(/D-Bus connection lost/);
    // Without a bus stafd's answer is unknown: a reload meanwhile keeps every connection.
    stacd.signal("SIGHUP");
    await stacd.waitForLog(/Configuration reloaded/);
    await sleep(1_000);

    bus = await startPrivateBus({ policies, dir: busDir });
    stafd = await standin(bus.address);
    await waitFor(
      () => countLines(stacd, /D-Bus API on/) >= 2 || undefined,
      "stacd owns its name again",
      30_000,
    );
    await waitFor(
      () => countLines(stacd, /stafd appeared on D-Bus/) >= 2 || undefined,
      "stacd follows stafd on the new bus",
      30_000,
    );
    await sleep(1_500); // stafd's answer, after its soak: same set, nothing moves
    const served = await listed(bus.address);
    const kernel = new Map(
      controllers().filter((c) => t.nqns.includes(c.subsysnqn)).map((c) => [c.subsysnqn, c.name]),
    );
    assert.deepEqual(served, kernel, "list_controllers on the new bus shows the kernel's state");
    await assertSurvived(stacd, record);
    watch.assertClean();
    assertNoDuplicates();
    assert.deepEqual(identities(), before, "every connection went through the restart untouched");
    record.stateCorrect = true;
    assert.equal(await stacd.stop(), 0);
  } finally {
    await watch.stop();
    await stafd.close();
    await bus.close();
    await Deno.remove(busDir, { recursive: true }).catch(() => {});
    await deleteAllControllers();
  }
});
