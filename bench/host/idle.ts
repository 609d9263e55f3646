/**
 * Idle cost: the composed stacd (0 and 1,000 controllers, all connected)
 * left alone for 60 s after it settled (V8's memory reducer runs a few GCs
 * for about 40 s after start; see test-environment.md). CPU time is
 * utime+stime of /proc/PID/stat; wake-ups are voluntary plus involuntary
 * context switches summed over /proc/PID/task/* (the approach of
 * bench/idle_wakeups.ts). Reading /proc does not wake the process.
 *
 *   deno run -A bench/host/idle.ts [seconds]
 */
import { startPrivateBus } from "../../tests/dbus/private_bus.ts";
import { voluntarySwitches, wakeups } from "../idle_wakeups.ts";
import type { Figure } from "../guest/common.ts";
import { type ComposedStacd, spawnComposed } from "./composed.ts";
import { delay } from "./stats.ts";

/** How long after "ready" the measurement starts. */
export const SETTLE_MS = 45_000;
const IDLE_S = 60;

/** Voluntary plus involuntary context switches of each thread, keyed "tid name". */
export const contextSwitches = (pid: number) => voluntarySwitches(pid, true);

let ticksPerSecond: number | undefined;

/** utime+stime of the whole process, in ms. */
export function cpuMs(pid: number): number {
  ticksPerSecond ??= Number(
    new TextDecoder().decode(
      new Deno.Command("getconf", { args: ["CLK_TCK"] }).outputSync().stdout,
    ),
  ) || 100;
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1000 / ticksPerSecond;
}

/** A composed process started for a measurement, on the private bus at `busAddress`. */
export type SpawnComposed = (busAddress: string) => Promise<ComposedStacd>;

/**
 * Wake-ups and CPU time of the process `spawn` starts, left alone for
 * `seconds` once it has settled; `label` starts the figures' names.
 */
export async function idleFigures(
  label: string,
  spawn: SpawnComposed,
  seconds: number,
): Promise<Figure[]> {
  await using bus = await startPrivateBus();
  await using daemon = await spawn(bus.address);
  await daemon.ready;
  await delay(SETTLE_MS);
  const cpuBefore = cpuMs(daemon.pid);
  const before = contextSwitches(daemon.pid);
  await delay(seconds * 1000);
  const woke = wakeups(before, contextSwitches(daemon.pid)).filter((t) => t.wakeups > 0);
  const cpu = cpuMs(daemon.pid) - cpuBefore;
  const total = woke.reduce((n, t) => n + t.wakeups, 0);
  if (woke.length > 0) {
    console.log(`  ${label}: ${woke.map((t) => `${t.thread} ${t.wakeups}`).join(", ")}`);
  }
  return [
    { name: `${label}: wake-ups`, value: total, unit: "", target: "0", pass: total === 0 },
    { name: `${label}: CPU time`, value: cpu, unit: "ms" },
  ];
}

function idleOne(controllers: number, seconds: number): Promise<Figure[]> {
  return idleFigures(
    `idle ${seconds} s, ${controllers.toLocaleString("en")} ctrls`,
    (busAddress) => spawnComposed({ controllers, busAddress }),
    seconds,
  );
}

export async function benchIdle(seconds = IDLE_S): Promise<Figure[]> {
  const [none, many] = await Promise.all([idleOne(0, seconds), idleOne(1_000, seconds)]);
  return [...none!, ...many!];
}

if (import.meta.main) {
  for (const f of await benchIdle(Number(Deno.args[0] ?? IDLE_S))) console.log(f);
}
