/**
 * Memory: the resident set (VmRSS) of the composed stacd, idle with 0 and
 * with 1,000 connected controllers, read 45 s after it was ready: V8's
 * memory reducer (on, as stacd ships) has then run its GCs and is quiet.
 * Each figure is the median of three processes; every reading, and the RSS
 * right after start-up, is printed beside it.
 *
 *   deno run -A bench/host/memory.ts
 */
import { startPrivateBus } from "../../tests/dbus/private_bus.ts";
import type { Figure } from "../guest/common.ts";
import { anonymousMb, rssMb, spawnComposed } from "./composed.ts";
import { SETTLE_MS, type SpawnComposed } from "./idle.ts";
import { delay } from "./stats.ts";

const TARGET_MB = 60;
/**
 * Processes measured per figure, side by side: identical runs differ by up to
 * 2 MB (when V8's and glibc's background work last touched pages), so one
 * reading could pass or fail by luck. The figure is their median.
 */
const RUNS = 3;

interface Reading {
  atReady: number;
  settled: number;
  anonymous: number;
}

async function oneRun(spawn: SpawnComposed): Promise<Reading> {
  await using bus = await startPrivateBus();
  await using daemon = await spawn(bus.address);
  await daemon.ready;
  const atReady = rssMb(daemon.pid);
  await delay(SETTLE_MS);
  return { atReady, settled: rssMb(daemon.pid), anonymous: anonymousMb(daemon.pid) };
}

/**
 * RSS and private memory of RUNS processes `spawn` starts side by side, each
 * read SETTLE_MS after it was ready; `what` ends the figures' names ("1,000
 * ctrls"); `targetMb` is the RSS target, if any.
 */
export async function rssFigures(
  what: string,
  spawn: SpawnComposed,
  targetMb?: number,
): Promise<Figure[]> {
  const runs = await Promise.all(Array.from({ length: RUNS }, () => oneRun(spawn)));
  const median = (pick: (r: Reading) => number) =>
    runs.map(pick).sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
  const settled = median((r) => r.settled);
  const shown = (pick: (r: Reading) => number) => runs.map((r) => pick(r).toFixed(1)).join(", ");
  console.log(
    `  RSS, ${what} (${RUNS} runs): ${shown((r) => r.atReady)} MB when ready, ` +
      `${shown((r) => r.settled)} MB ${SETTLE_MS / 1000} s later`,
  );
  const target = targetMb === undefined
    ? {}
    : { target: `< ${targetMb} MB`, pass: settled < targetMb };
  return [
    {
      name: `idle RSS, ${what} (median of ${RUNS}, after ${SETTLE_MS / 1000} s)`,
      value: settled,
      unit: "MB",
      ...target,
    },
    // RSS includes ~40 MB of the deno executable's code pages, shared with every Deno process.
    {
      name: `idle private (anonymous) memory, ${what}`,
      value: median((r) => r.anonymous),
      unit: "MB",
    },
  ];
}

function rssAfterSettling(controllers: number): Promise<Figure[]> {
  return rssFigures(
    `${controllers.toLocaleString("en")} ctrls`,
    (busAddress) => spawnComposed({ controllers, busAddress }),
    TARGET_MB,
  );
}

export async function benchMemory(): Promise<Figure[]> {
  return (await Promise.all([rssAfterSettling(0), rssAfterSettling(1_000)])).flat();
}

if (import.meta.main) {
  for (const f of await benchMemory()) console.log(f);
}
