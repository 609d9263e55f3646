/**
 * 1,000 udev events in a burst (`change` written to the controllers' uevent
 * files), with one controller lost amid them: stacd must see every event
 * (or, if its socket overflowed, say so and re-read sysfs), reconnect the
 * lost one and leave the others alone.
 * Runs only in the guest: deno task faults udev
 */
import assert from "node:assert/strict";
import { deleteController, waitFor } from "../guest/nvme_host.ts";
import { stacdConf, StacdProcess, waitForLiveSet } from "../guest/stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "../guest/target.ts";
import {
  about,
  assertNoDuplicates,
  assertSurvived,
  faultTest,
  identities,
  KernelWatch,
  linesSince,
  scratch,
  settledCount,
} from "./fault_kit.ts";

const EVENTS = 1000;

/** Makes the kernel emit a `change` uevent for `device` (as `echo change > uevent`). */
function triggerChange(device: string): void {
  using file = Deno.openSync(`/sys/class/nvme/${device}/uevent`, { write: true });
  file.writeSync(new TextEncoder().encode("change"));
}

faultTest("1,000 udev events in a burst, one controller lost amid them", async (record) => {
  using t = createTarget({ subsystems: 16, ports: [LOOPBACK_PORT] });
  const s = await scratch();
  await Deno.writeTextFile(s.confFile, stacdConf(t.nqns));
  await using watch = new KernelWatch();
  // --tron: stacd logs each uevent it reads, so the log shows that none was lost.
  await using stacd = new StacdProcess({ ...s, args: ["--tron"] });
  await waitForLiveSet(t.nqns, 60_000);
  const before = identities();
  const victim = t.nqns[4]!;
  const victimDevice = before.get(victim)!.split("/")[0]!;
  watch.keep(new Map([...before].filter(([nqn]) => nqn !== victim)));
  const devices = [...before.values()].map((id) => id.split("/")[0]!);
  const mark = stacd.lines.length;

  const written = new Map<string, number>();
  const started = performance.now();
  for (let i = 0, sent = 0; sent < EVENTS; i++) {
    if (sent === EVENTS / 2 && !written.has("lost")) {
      deleteController(victimDevice); // the kernel loses one, in the middle of the burst
      written.set("lost", 1);
    }
    const device = devices[i % devices.length]!;
    if (device === victimDevice && written.has("lost")) continue;
    triggerChange(device);
    written.set(device, (written.get(device) ?? 0) + 1);
    sent++;
  }
  const burstMs = performance.now() - started;
  written.delete("lost");
  record.injected = `${EVENTS} uevents + 1 controller lost`;

  await stacd.waitForLog(about(victim, "Controller removed by the kernel, retrying"), 30_000);
  await waitForLiveSet(t.nqns, 60_000);
  const overflowed = () => linesSince(stacd, mark, /udev events were lost/).length > 0;
  const changes = (device: string) =>
    linesSince(stacd, mark, new RegExp(`udev change ${device}$`)).length;
  await waitFor(
    () => overflowed() || devices.every((d) => changes(d) >= (written.get(d) ?? 0)) || undefined,
    "stacd read every uevent",
    60_000,
  ).catch(() => {});
  const seen = linesSince(stacd, mark, /udev change nvme/).length;
  record.notes.push(
    `${EVENTS} written in ${(burstMs / 1000).toFixed(1)} s, ${seen} change events read` +
      (overflowed() ? ", receive buffer overflowed: sysfs re-read" : ", no overflow"),
  );
  await assertSurvived(stacd, record);
  watch.assertClean();
  assertNoDuplicates();
  if (!overflowed()) {
    for (const d of devices) {
      assert.ok(changes(d) >= (written.get(d) ?? 0), `${d}: ${changes(d)} of ${written.get(d)}`);
    }
  }
  const after = identities();
  for (const [nqn, id] of before) {
    if (nqn !== victim) assert.equal(after.get(nqn), id, `${nqn} untouched`);
  }
  const victimConnects = await settledCount(stacd, about(victim, "Connection established!"), 2);
  assert.equal(victimConnects, 2, stacd.log);
  record.stateCorrect = true;
  assert.equal(await stacd.stop(), 0);
});
