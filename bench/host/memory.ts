/**
 * Memory: the resident set (VmRSS) of the composed stacd, idle with 0 and
 * with 1,000 connected controllers, read 45 s after it was ready: V8's
 * memory reducer (on, as stacd ships) has then run its GCs and is quiet.
 * The RSS right after start-up is printed for comparison.
 *
 *   deno run -A bench/host/memory.ts
 */
import { startPrivateBus } from "../../tests/dbus/private_bus.ts";
import type { Figure } from "../guest/common.ts";
import { anonymousMb, rssMb, spawnComposed } from "./composed.ts";
import { SETTLE_MS } from "./idle.ts";
import { delay } from "./stats.ts";

const TARGET_MB = 60;

async function rssAfterSettling(controllers: number): Promise<Figure[]> {
  await using bus = await startPrivateBus();
  await using stacd = await spawnComposed({ controllers, busAddress: bus.address });
  await stacd.ready;
  const atReady = rssMb(stacd.pid);
  await delay(SETTLE_MS);
  const settled = rssMb(stacd.pid);
  const anonymous = anonymousMb(stacd.pid);
  console.log(
    `  RSS, ${controllers} controllers: ${atReady.toFixed(1)} MB when ready, ` +
      `${settled.toFixed(1)} MB ${SETTLE_MS / 1000} s later`,
  );
  const count = controllers.toLocaleString("en");
  return [
    {
      name: `idle RSS, ${count} ctrls (after ${SETTLE_MS / 1000} s)`,
      value: settled,
      unit: "MB",
      target: `< ${TARGET_MB} MB`,
      pass: settled < TARGET_MB,
    },
    // RSS includes ~40 MB of the deno executable's code pages, shared with every Deno process.
    { name: `idle private (anonymous) memory, ${count} ctrls`, value: anonymous, unit: "MB" },
  ];
}

export async function benchMemory(): Promise<Figure[]> {
  return (await Promise.all([rssAfterSettling(0), rssAfterSettling(1_000)])).flat();
}

if (import.meta.main) {
  for (const f of await benchMemory()) console.log(f);
}
