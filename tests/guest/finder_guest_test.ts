/**
 * Our stafd against the guest's real kernel and nvmet target, with our
 * stacd following it over a real dbus-daemon (issue 17's tests): a DC
 * configured, its page read, every subsystem connected; subsystems added
 * and removed on the target reach the host through the kernel's AEN; a
 * referral is followed to a second DC; the DC's port removed and restored
 * loses nothing; stafd SIGKILLed and restarted adopts its DC.
 * Runs only in the guest: deno run -A tests/guest/run_suite.ts finder
 */
import assert from "node:assert/strict";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import { readDiscoveryLog } from "../../lib/kernel/discovery_log_reader.ts";
import { STAC_POLICY, STAF_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { controllers, controllersOf, deleteAllControllers, waitFor } from "./nvme_host.ts";
import { notOnDebian13 } from "./platform.ts";
import { liveNqns, stacdConf, StacdProcess, waitForLiveSet } from "./stacd_process.ts";
import { createLinkedPort, createTarget, LOOPBACK_PORT, type TargetPort } from "./target.ts";

const SECOND_PORT: TargetPort = { id: 2, adrfam: "ipv4", traddr: "127.0.0.1", trsvcid: 4421 };
const WAIT_MS = 60_000;
let runs = 0;

const dcLine = (port: TargetPort) =>
  `controller = transport=tcp;traddr=${port.traddr};trsvcid=${port.trsvcid}`;

/** The kernel's discovery controllers (ours and anybody's). */
const discoveryControllers = () => controllers().filter((c) => c.subsysnqn === DISCOVERY_NQN);

/** A private bus, our stafd with `stafdLines` as its [Controllers], and our stacd following it. */
async function setup(stafdLines: string[]) {
  const bus = await startPrivateBus({ policies: [STAC_POLICY, STAF_POLICY] });
  const dir = await Deno.makeTempDir({ prefix: "finder-" });
  await Deno.writeTextFile(`${dir}/stafd.conf`, `[Controllers]\n${stafdLines.join("\n")}\n`);
  await Deno.writeTextFile(`${dir}/stacd.conf`, stacdConf([]));
  const env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
  const startStafd = () =>
    new StacdProcess({
      program: "stafd",
      confFile: `${dir}/stafd.conf`,
      runtimeDir: `${dir}/stafd-run`,
      env,
      args: ["--tron"],
    });
  const s = {
    stafd: startStafd(),
    stacd: new StacdProcess({ confFile: `${dir}/stacd.conf`, runtimeDir: `${dir}/run`, env }),
    restartStafd() {
      s.stafd = startStafd();
    },
    async [Symbol.asyncDispose]() {
      await s.stacd[Symbol.asyncDispose]();
      await s.stafd[Symbol.asyncDispose]();
      // Both logs, for the run's out folder (copied next to the JUnit report).
      const out = Deno.env.get("GUEST_OUT");
      if (out) {
        const name = `${out}/finder-${++runs}`;
        await Deno.writeTextFile(`${name}-stafd.txt`, s.stafd.log);
        await Deno.writeTextFile(`${name}-stacd.txt`, s.stacd.log);
      }
      await bus.close();
      await deleteAllControllers();
    },
  };
  return s;
}

Deno.test("(a) stafd reads a configured DC's page and stacd connects every subsystem on it", async () => {
  using t = createTarget({ subsystems: 8, ports: [LOOPBACK_PORT, SECOND_PORT] });
  await using s = await setup([dcLine(LOOPBACK_PORT)]);
  await waitForLiveSet(t.nqns, WAIT_MS);
  await s.stafd.waitForLog(/Connection established!/);
  assert.equal(discoveryControllers().length, 1, "one DC connection");
  // The DC on port 4420 lists port 4420's subsystems only: each connected once, there.
  for (const nqn of t.nqns) {
    const found = controllersOf(nqn);
    assert.equal(found.length, 1, nqn);
    assert.equal(found[0]?.address.trsvcid, "4420");
  }
  const dc = discoveryControllers()[0]!.name;
  assert.equal(Number(Deno.readTextFileSync(`/sys/class/nvme/${dc}/kato`)), 30);
  // The page as the kernel hands it over, for the decoder's fuzz corpus
  // (tests/unit/core/testdata/, copied from the run's out folder).
  const out = Deno.env.get("GUEST_OUT");
  if (out) Deno.writeFileSync(`${out}/nvmet-discovery-page.bin`, await readDiscoveryLog(dc));
});

Deno.test("(b) subsystems added and removed on the target reach the host through the AEN", async () => {
  using t = createTarget({ subsystems: 4, ports: [LOOPBACK_PORT] });
  await using s = await setup([dcLine(LOOPBACK_PORT)]);
  await waitForLiveSet(t.nqns, WAIT_MS);
  const added = "nqn.2026-11.io.test:added";
  t.target.createSubsystem(added);
  const start = performance.now();
  t.target.linkSubsystem(LOOPBACK_PORT.id, added);
  await waitForLiveSet([...t.nqns, added], WAIT_MS);
  console.log(`AEN -> connected: ${Math.round(performance.now() - start)} ms`);
  await s.stafd.waitForLog(/Discovery log page changed \(AEN\)/);
  const gone = t.nqns[0]!;
  t.target.unlinkSubsystem(LOOPBACK_PORT.id, gone);
  await waitFor(() => controllersOf(gone).length === 0 || undefined, `${gone} gone`, WAIT_MS);
  await waitForLiveSet([...t.nqns.slice(1), added], WAIT_MS);
  t.target.removeSubsystem(added);
});

Deno.test({
  name: "(c) a referral on the DC's page is followed to a second DC",
  // The finder's own rules: the kernel paths (connect, page reads, AEN) are (a) and (b).
  ignore: notOnDebian13,
}, async () => {
  using t = createTarget({ subsystems: 2, ports: [LOOPBACK_PORT] });
  // Port 2 has subsystems of its own, which port 1's DC does not list.
  const others = ["nqn.2026-11.io.test:r1", "nqn.2026-11.io.test:r2"];
  for (const nqn of others) t.target.createSubsystem(nqn);
  createLinkedPort(t.target, SECOND_PORT, others);
  t.target.addReferral(LOOPBACK_PORT.id, "to-second", SECOND_PORT);
  await using s = await setup([dcLine(LOOPBACK_PORT)]);
  await waitForLiveSet([...t.nqns, ...others], WAIT_MS);
  assert.equal(discoveryControllers().length, 2, "the configured DC and the referred one");
  for (const nqn of others) assert.equal(controllersOf(nqn)[0]?.address.trsvcid, "4421");
  await s.stafd.waitForLog(/4421.*Connection established!/);
});

Deno.test({
  name:
    "(d) the DC's port removed and restored: the DC reconnects, no I/O controller is disconnected",
  // The finder's own rules: the kernel paths (connect, page reads, AEN) are (a) and (b).
  ignore: notOnDebian13,
}, async () => {
  using t = createTarget({ subsystems: 4, ports: [LOOPBACK_PORT] });
  // The DC on its own port, listing subsystems that are also on port 1: the
  // I/O controllers live on port 1 and must survive the DC's outage.
  createLinkedPort(t.target, SECOND_PORT, t.nqns);
  await using s = await setup([dcLine(SECOND_PORT)]);
  await waitForLiveSet(t.nqns, WAIT_MS);
  const before = new Map(controllers().map((c) => [c.name, c.subsysnqn]));
  t.target.removePort(SECOND_PORT.id);
  await s.stafd.waitForLog(/Controller removed by the kernel|Failed to retrieve log pages/, WAIT_MS)
    .catch(() => {});
  await new Promise((r) => setTimeout(r, 3_000));
  createLinkedPort(t.target, SECOND_PORT, t.nqns);
  await waitFor(
    () => discoveryControllers().some((c) => c.state === "live") || undefined,
    "the DC back",
    WAIT_MS,
  );
  await waitForLiveSet(t.nqns, WAIT_MS);
  assert.doesNotMatch(s.stacd.log, /Disconnected/, "stacd disconnected nothing meanwhile");
  for (const c of controllers().filter((c) => c.subsysnqn !== DISCOVERY_NQN)) {
    assert.equal(before.get(c.name), c.subsysnqn, `${c.name} is the same connection`);
  }
});

Deno.test({
  name: "(e) stafd SIGKILLed and restarted adopts its DC; stacd keeps every connection",
  // The finder's own rules: the kernel paths (connect, page reads, AEN) are (a) and (b).
  ignore: notOnDebian13,
}, async () => {
  using t = createTarget({ subsystems: 4, ports: [LOOPBACK_PORT] });
  await using s = await setup([dcLine(LOOPBACK_PORT)]);
  await waitForLiveSet(t.nqns, WAIT_MS);
  const dc = discoveryControllers()[0]!.name;
  const io = liveNqns().length;
  s.stafd.kill("SIGKILL");
  await s.stafd.exited();
  s.restartStafd();
  await s.stafd.waitForLog(/Adopted existing connection/, WAIT_MS);
  // 4 subsystems, and the DC's own entry on newer kernels.
  await s.stafd.waitForLog(/Log page read: \d+ entries/, WAIT_MS);
  assert.deepEqual(discoveryControllers().map((c) => c.name), [dc], "adopted, not duplicated");
  assert.equal(liveNqns().length, io);
  assert.doesNotMatch(s.stacd.log, /Disconnected/);
});
