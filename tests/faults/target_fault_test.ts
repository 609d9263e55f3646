/**
 * Faults on the target side: the port removed and restored during and after
 * connects, and a subsystem removed. The kernel watch samples every ~100 ms
 * throughout. Runs only in the guest: deno task faults target
 */
import assert from "node:assert/strict";
import { controllers, waitFor } from "../guest/nvme_host.ts";
import { stacdConf, StacdProcess, waitForLiveSet } from "../guest/stacd_process.ts";
import { createLinkedPort, createTarget, LOOPBACK_PORT } from "../guest/target.ts";
import {
  about,
  assertNoDuplicates,
  assertSurvived,
  faultTest,
  identities,
  KernelWatch,
  linesSince,
  sample,
  scratch,
  settledCount,
  sleep,
} from "./fault_kit.ts";

/** The kernel retries every second and gives up only after a minute: longer than any outage here. */
const PATIENT_KERNEL = "reconnect-delay = 1\nctrl-loss-tmo = 60";

const live = () => controllers().filter((c) => c.state === "live");

/**
 * The kernel's command timeouts, lowered for one test: a connect caught by
 * the port's removal waits for them (60 s and 30 s by default), holding the
 * kernel's connect mutex, so every other connect waits as long.
 */
function shortKernelTimeouts(seconds: number): Disposable {
  const dir = "/sys/module/nvme_core/parameters";
  const names = ["admin_timeout", "io_timeout"];
  const saved = names.map((n) => Deno.readTextFileSync(`${dir}/${n}`).trim());
  for (const n of names) Deno.writeTextFileSync(`${dir}/${n}`, String(seconds));
  return {
    [Symbol.dispose]() {
      names.forEach((n, i) => Deno.writeTextFileSync(`${dir}/${n}`, saved[i]!));
    },
  };
}

faultTest("target port removed and restored during connects", async (record) => {
  using _timeouts = shortKernelTimeouts(5);
  using t = createTarget({ subsystems: 32, ports: [LOOPBACK_PORT] });
  const s = await scratch();
  await Deno.writeTextFile(s.confFile, stacdConf(t.nqns, { global: PATIENT_KERNEL }));
  await using watch = new KernelWatch();
  await using stacd = new StacdProcess(s);
  // The first connection is the signal: stacd is in the middle of its 32 connects.
  await waitFor(() => live().length >= 1 || undefined, "first connect", 60_000);
  const before = identities(sample().filter((c) => c.state === "live"));
  t.target.removePort(LOOPBACK_PORT.id);
  // Those already made stay the same devices: the kernel reconnects them itself.
  watch.keep(before, "device");
  record.injected = "1 port removal";
  record.notes.push(`${before.size}/32 connected when the port went`);
  // A connect caught by the removal hangs in the kernel until its command times out.
  const removed = performance.now();
  await stacd.waitForLog(/Connect failed/, 60_000);
  record.notes.push(
    `first failed connect after ${((performance.now() - removed) / 1000).toFixed(1)} s`,
  );
  await sleep(1_000);
  createLinkedPort(t.target, LOOPBACK_PORT, t.nqns);

  await waitForLiveSet(t.nqns, 60_000);
  await assertSurvived(stacd, record);
  watch.assertClean();
  assertNoDuplicates();
  const after = identities();
  for (const [nqn, id] of before) {
    assert.equal(after.get(nqn)?.split("/")[0], id.split("/")[0], `${nqn} kept its device`);
  }
  // Each subsystem was connected by stacd exactly once: nothing deleted and remade.
  for (const nqn of t.nqns) {
    const connects = await settledCount(stacd, about(nqn, "Connection established!"), 1, 0);
    assert.equal(connects, 1, `${nqn} connected once\n${stacd.log}`);
  }
  assert.doesNotMatch(stacd.log, /Disconnected/);
  record.stateCorrect = true;
  assert.equal(await stacd.stop(), 0);
});

faultTest("target port removed and restored after connects", async (record) => {
  using t = createTarget({ subsystems: 8, ports: [LOOPBACK_PORT] });
  const s = await scratch();
  await Deno.writeTextFile(s.confFile, stacdConf(t.nqns, { global: PATIENT_KERNEL }));
  await using watch = new KernelWatch();
  // --tron: the kernel's reconnect events (udev change) show in stacd's log.
  await using stacd = new StacdProcess({ ...s, args: ["--tron"] });
  await waitForLiveSet(t.nqns, 60_000);
  const before = identities();
  watch.keep(before, "device");
  const mark = stacd.lines.length;
  t.target.removePort(LOOPBACK_PORT.id);
  record.injected = "1 port removal";
  await waitFor(() => live().length === 0 || undefined, "every association lost", 30_000);
  await sleep(2_000); // two of the kernel's failed reconnects
  createLinkedPort(t.target, LOOPBACK_PORT, t.nqns);

  await waitForLiveSet(t.nqns, 60_000);
  await assertSurvived(stacd, record);
  watch.assertClean();
  assertNoDuplicates();
  const after = identities();
  const newCntlid = [...before].filter(([nqn, id]) => after.get(nqn) !== id).length;
  record.notes.push(`kernel reconnected all 8 on their devices (${newCntlid} new cntlids)`);
  // The kernel did the work; stacd saw its events and made no connection of its own.
  await stacd.waitForLog(/udev change nvme/);
  assert.equal(await settledCount(stacd, /Connection established!/, 8), 8, stacd.log);
  assert.deepEqual(linesSince(stacd, mark, /Disconnected|removed by the kernel/), []);
  record.stateCorrect = true;
  assert.equal(await stacd.stop(), 0);
});

faultTest("subsystem removed from the target, then re-created", async (record) => {
  using t = createTarget({ subsystems: 8, ports: [LOOPBACK_PORT] });
  const [gone, ...others] = t.nqns as [string, ...string[]];
  const s = await scratch();
  // The kernel gives up on the lost subsystem after 2 s: stacd takes over.
  await Deno.writeTextFile(
    s.confFile,
    stacdConf(t.nqns, { global: "reconnect-delay = 1\nctrl-loss-tmo = 2" }),
  );
  await using watch = new KernelWatch();
  await using stacd = new StacdProcess(s);
  await waitForLiveSet(t.nqns, 60_000);
  const before = identities();
  watch.keep(new Map(others.map((nqn) => [nqn, before.get(nqn)!])));
  t.target.removeSubsystem(gone);
  record.injected = "1 subsystem removal";
  await stacd.waitForLog(about(gone, "Controller removed by the kernel, retrying"), 30_000);
  await stacd.waitForLog(about(gone, "Connect failed"), 30_000);
  await waitForLiveSet(others, 30_000);
  t.target.createSubsystem(gone);
  t.target.linkSubsystem(LOOPBACK_PORT.id, gone);

  await waitForLiveSet(t.nqns, 60_000);
  await assertSurvived(stacd, record);
  watch.assertClean();
  assertNoDuplicates();
  const after = identities();
  for (const nqn of others) assert.equal(after.get(nqn), before.get(nqn), `${nqn} untouched`);
  assert.equal(
    await settledCount(stacd, about(gone, "Connection established!"), 2),
    2,
    `${gone} connected again by stacd\n${stacd.log}`,
  );
  record.stateCorrect = true;
  assert.equal(await stacd.stop(), 0);
});
