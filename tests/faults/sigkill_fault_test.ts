/**
 * stacd SIGKILLed at random moments of a 64-controller convergence, 20
 * rounds, then restarted for good. Each round first takes away about half of
 * the connections (stacd is dead then), so that every round converges
 * again. The moments come from a seeded generator: the seed is printed, and
 * STACD_FAULT_SEED replays a run. Checked in every round: no duplicate,
 * every connection alive when stacd started survives as it was (the restarted
 * stacd adopts it), and every connection in the kernel is in the last-known
 * config (docs/design.md#last-known-config: recorded before its connect is issued).
 * Runs only in the guest: deno task faults sigkill
 */
import assert from "node:assert/strict";
import { deleteController, waitFor } from "../guest/nvme_host.ts";
import { stacdConf, StacdProcess, waitForLiveSet } from "../guest/stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "../guest/target.ts";
import { seededRandom, seedFrom } from "../seeded_random.ts";
import {
  assertNoDuplicates,
  assertSurvived,
  faultTest,
  identities,
  isRunning,
  KernelWatch,
  scratch,
  settledCount,
  sleep,
} from "./fault_kit.ts";

/** CI's rounds; the campaign's --long mode (STACD_FAULT_LONG=1) runs more. */
const ROUNDS = Deno.env.get("STACD_FAULT_LONG") === "1" ? 60 : 4;
const CONTROLLERS = 64;

/** The subsystems the last-known config lists (none when it does not exist yet). */
function recorded(runtimeDir: string): Set<string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${runtimeDir}/last-known-config`);
  } catch {
    return new Set();
  }
  const saved = JSON.parse(text) as { controllers: { subsysnqn: string }[] };
  return new Set(saved.controllers.map((c) => c.subsysnqn));
}

faultTest(
  `stacd SIGKILLed at random moments of a ${CONTROLLERS}-controller convergence (${ROUNDS} rounds)`,
  async (record) => {
    const seed = seedFrom("STACD_FAULT_SEED");
    console.log(`SIGKILL rounds: seed ${seed} (replay with STACD_FAULT_SEED=${seed})`);
    record.notes.push(`seed ${seed}`);
    const random = seededRandom(seed);
    // One round in five is killed during start-up, the others during the connects.
    const earlyPhase = Math.floor(random() * 5);
    using t = createTarget({ subsystems: CONTROLLERS, ports: [LOOPBACK_PORT] });
    const s = await scratch();
    await Deno.writeTextFile(s.confFile, stacdConf(t.nqns));
    // Only our I/O controllers exist in this test: counting sysfs entries is enough (and cheap).
    const made = () => [...Deno.readDirSync("/sys/class/nvme")].length;
    await using watch = new KernelWatch();
    const moments: string[] = [];
    const unrecorded: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const roundStarted = performance.now();
      // A fixed number of draws per round, whatever the timing did, so that a
      // seed replays the same plan: which subsystems to take away, and when to kill.
      const drop = new Set(t.nqns.filter(() => random() < 0.4));
      const early = round % 5 === earlyPhase;
      const at = random();
      // stacd is dead: take some away, so that this round has work to do.
      for (const [nqn, id] of identities()) {
        if (drop.has(nqn)) {
          watch.release(nqn);
          deleteController(id.split("/")[0]!);
        }
      }
      const survivors = identities();
      watch.releaseAll();
      watch.keep(survivors);
      const missing = CONTROLLERS - survivors.size;
      const deletedMs = performance.now() - roundStarted;
      {
        await using stacd = new StacdProcess(s);
        if (early) {
          // Anywhere in start-up (deno's own start, lock, config, restore, first pass).
          const ms = Math.floor(at * 5_000);
          await sleep(ms);
          moments.push(`${ms}ms`);
        } else {
          // After a random share of the connects this round has to make.
          const k = 1 + Math.floor(at * missing);
          await waitFor(
            () => made() >= survivors.size + k || undefined,
            `round ${round}: ${k} of ${missing} connects`,
            60_000,
          );
          moments.push(`${k}/${missing}`);
        }
        assert.ok(await isRunning(stacd), `round ${round}: stacd died by itself\n${stacd.log}`);
        stacd.signal("SIGKILL");
        await stacd.child.status;
      }
      console.log(
        `round ${round}: ${missing} missing (deleted in ${Math.round(deletedMs)} ms), ` +
          `killed at ${moments.at(-1)} after ${Math.round(performance.now() - roundStarted)} ms`,
      );
      const saved = recorded(s.runtimeDir);
      for (const nqn of identities().keys()) {
        if (!saved.has(nqn)) unrecorded.push(`round ${round}: ${nqn}`);
      }
      assertNoDuplicates();
    }
    record.injected = `${ROUNDS} SIGKILL`;
    console.log(`SIGKILL moments (time after start, or connects made/missing): ${moments}`);
    record.notes.push(`moments ${moments.join(" ")}`);
    console.log(`watch: ${watch.samples} samples, ${Math.round(watch.busyMs)} ms sampling`);

    const survivors = identities();
    watch.releaseAll();
    watch.keep(survivors);
    await using stacd = new StacdProcess(s);
    await waitForLiveSet(t.nqns, 90_000);
    await assertSurvived(stacd, record);
    watch.assertClean();
    assertNoDuplicates();
    assert.deepEqual(unrecorded, [], "connections missing from the last-known config");
    if (survivors.size > 0) await stacd.waitForLog(/Restored \d+ controllers/);
    assert.equal(
      await settledCount(stacd, /Connection established!/, CONTROLLERS - survivors.size),
      CONTROLLERS - survivors.size,
      `the survivors were adopted, not reconnected\n${stacd.log}`,
    );
    record.stateCorrect = true;
    assert.equal(await stacd.stop(), 0);
  },
);
