/**
 * A SIGHUP storm: 100 reloads in a second, the configuration different each
 * time (one controller swapped, kato changed). The final state must be the
 * last configuration's; the controllers every version wants stay untouched.
 * Runs only in the guest: deno task faults sighup
 */
import assert from "node:assert/strict";

import { liveNqns, stacdConf, StacdProcess, waitForLiveSet } from "../guest/stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "../guest/target.ts";
import {
  assertNoDuplicates,
  assertSurvived,
  countLines,
  faultTest,
  identities,
  KernelWatch,
  replaceFile,
  scratch,
  settledCount,
  sleep,
} from "./fault_kit.ts";

const SIGNALS = 100;

faultTest(
  "SIGHUP storm: 100 reloads in a second, the config changing each time",
  async (record) => {
    using t = createTarget({ subsystems: 16, ports: [LOOPBACK_PORT] });
    const base = t.nqns.slice(0, 8);
    const extras = t.nqns.slice(8);
    const wanted = (version: number) => [...base, extras[version % extras.length]!];
    const conf = (version: number) =>
      stacdConf(wanted(version), { global: `# version ${version}\nkato = ${10 + version % 20}` });
    const s = await scratch();
    await Deno.writeTextFile(s.confFile, conf(0));
    await using watch = new KernelWatch();
    await using stacd = new StacdProcess(s);
    await waitForLiveSet(wanted(0), 60_000);
    const before = identities();
    watch.keep(new Map(base.map((nqn) => [nqn, before.get(nqn)!])));

    const started = performance.now();
    for (let version = 1; version <= SIGNALS; version++) {
      // Replaced whole (rename), as editors do: a reload never reads half a file.
      replaceFile(s.confFile, conf(version));
      stacd.signal("SIGHUP");
      // On schedule, one every 10 ms; when behind (TCG), the next one at once.
      const ahead = started + version * 10 - performance.now();
      if (ahead > 0) await sleep(ahead);
    }
    const stormMs = performance.now() - started;
    record.injected = `${SIGNALS} SIGHUP`;

    await waitForLiveSet(wanted(SIGNALS), 60_000);
    await sleep(1_500); // twenty soaks later, nothing has moved
    assert.deepEqual(liveNqns(), [...wanted(SIGNALS)].sort(), "the last config holds");
    const reloads = countLines(stacd, /Configuration reloaded/);
    const connects = await settledCount(stacd, /Connection established!/, 9, 0);
    const disconnects = countLines(stacd, /Disconnected/);
    record.notes.push(
      `${SIGNALS} sent in ${(stormMs / 1000).toFixed(1)} s, ${reloads} reloads logged, ` +
        `${connects} connects and ${disconnects} disconnects of the swapped controller`,
    );
    await assertSurvived(stacd, record);
    watch.assertClean();
    assertNoDuplicates();
    assert.ok(reloads >= 1, "the reloads are logged");
    const after = identities();
    for (const nqn of base) assert.equal(after.get(nqn), before.get(nqn), `${nqn} untouched`);
    record.stateCorrect = true;
    assert.equal(await stacd.stop(), 0);
  },
);
