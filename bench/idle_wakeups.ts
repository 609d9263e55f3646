/**
 * Measures how often a process waiting on a UdevMonitor wakes up: it should
 * sleep in the kernel until a uevent arrives, with no timer.
 *
 *   deno run --allow-all bench/idle_wakeups.ts [seconds]
 *
 * A child process opens the monitor (subsystem nvme) and waits on it; this
 * process waits until the child's start-up is over, then samples its
 * per-thread voluntary context switches from /proc/<pid>/task/<tid>/status,
 * so the measurement adds no wake-up of its own to the figure.
 */

import { UdevMonitor } from "../lib/kernel/udev_monitor.ts";

/**
 * Context switches of each thread of `pid`, keyed "tid name". By default
 * only voluntary ones: a thread that wakes up counts one when it goes back to
 * sleep (involuntary switches are preemptions of a running thread: CPU load,
 * not wake-ups). `includeInvoluntary` counts both.
 */
export function voluntarySwitches(pid: number, includeInvoluntary = false): Map<string, number> {
  const switches = new Map<string, number>();
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    let status: string;
    try {
      status = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/status`);
    } catch {
      continue; // the thread exited while we listed them
    }
    const name = status.match(/^Name:\s*(.*)$/m)?.[1] ?? "?";
    const count = (field: string) =>
      Number(status.match(new RegExp(`^${field}_ctxt_switches:\\s*(\\d+)`, "m"))?.[1] ?? 0);
    const n = count("voluntary") + (includeInvoluntary ? count("nonvoluntary") : 0);
    switches.set(`${task.name} ${name}`, n);
  }
  return switches;
}

/** Per-thread increase from `before` to `after` (threads born in between count from 0). */
export function wakeups(before: Map<string, number>, after: Map<string, number>) {
  return [...after].map(([thread, n]) => ({ thread, wakeups: n - (before.get(thread) ?? 0) }));
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (counts: { wakeups: number }[]) => counts.reduce((n, c) => n + c.wakeups, 0);

/** Waits until start-up work (module loading, code cache, GC) is over: 500 ms without a switch. */
async function settle(pid: number): Promise<void> {
  for (let tries = 0; tries < 40; tries++) {
    const before = voluntarySwitches(pid);
    await delay(500);
    if (sum(wakeups(before, voluntarySwitches(pid))) === 0) return;
  }
}

async function child(): Promise<void> {
  await using monitor = UdevMonitor.open();
  console.log("ready");
  for await (const event of monitor) console.error("event", event.action);
}

async function main(seconds: number): Promise<void> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", import.meta.filename!, "--child"],
    stdout: "piped",
  });
  const process = command.spawn();
  const reader = process.stdout.getReader();
  await reader.read(); // "ready": the monitor is open and the wait is about to start
  await settle(process.pid);
  const before = voluntarySwitches(process.pid);
  await delay(seconds * 1000);
  const result = wakeups(before, voluntarySwitches(process.pid));
  process.kill("SIGTERM");
  reader.releaseLock();
  await process.stdout.cancel();
  await process.status;
  for (const { thread, wakeups } of result) console.log(`${thread.padEnd(24)} ${wakeups}`);
  console.log(`total: ${sum(result)} wake-ups in ${seconds} s while waiting on the monitor`);
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") await child();
  else await main(Number(Deno.args[0] ?? 5));
}
