/**
 * The host benchmarks: stacd and stafd without a kernel (a BenchKernel
 * composed in code), run on the host where timings are not slowed down by
 * emulation. The timed ones run one after another; the memory and idle
 * ones mostly wait, so stacd's run side by side (about 110 s), then the
 * finder's (another 110 s: 16 processes starting at once on a small host
 * would still be busy when the idle measurement begins).
 *
 *   deno run -A bench/host/main.ts [reconcile_scale] [dbus_latency] [startup] [memory] [idle]
 *     [finder_page] [finder_memory] [finder_idle]
 */
import type { Figure } from "../guest/common.ts";
import { benchDbusLatency } from "./dbus_latency.ts";
import { benchFinderIdle } from "./finder_idle.ts";
import { benchFinderMemory } from "./finder_memory.ts";
import { benchFinderPage } from "./finder_page.ts";
import { benchIdle } from "./idle.ts";
import { benchMemory } from "./memory.ts";
import { benchReconcileScale } from "./reconcile_scale.ts";
import { benchStartup } from "./startup.ts";

/** Every host bench, in the order of the table. */
export const HOST_BENCHES: Record<string, () => Promise<Figure[]>> = {
  reconcile_scale: benchReconcileScale,
  dbus_latency: benchDbusLatency,
  startup: benchStartup,
  memory: benchMemory,
  idle: benchIdle,
  finder_page: benchFinderPage,
  finder_memory: benchFinderMemory,
  finder_idle: benchFinderIdle,
};

/** Benches that measure processes left alone: each group's run side by side. */
const WAITING_GROUPS = [["memory", "idle"], ["finder_memory", "finder_idle"]];
const WAITING = new Set(WAITING_GROUPS.flat());

/** Runs the named host benches (all by default); figures in table order. */
export async function runHostBenches(names = Object.keys(HOST_BENCHES)): Promise<Figure[]> {
  const unknown = names.filter((n) => !(n in HOST_BENCHES));
  if (unknown.length > 0) throw new Error(`Unknown host bench ${unknown.join(", ")}`);
  const results = new Map<string, Figure[]>();
  for (const name of names.filter((n) => !WAITING.has(n))) {
    console.log(`bench (host): ${name}`);
    results.set(name, await HOST_BENCHES[name]!());
  }
  for (const group of WAITING_GROUPS) {
    const waiting = names.filter((n) => group.includes(n));
    if (waiting.length === 0) continue;
    console.log(`bench (host): ${waiting.join(" and ")} (~110 s)`);
    await Promise.all(waiting.map(async (n) => results.set(n, await HOST_BENCHES[n]!())));
  }
  return Object.keys(HOST_BENCHES).flatMap((n) => results.get(n) ?? []);
}

/** What the table says about the machine. */
export function hostDescription(): { cpu: string; cpus: number; kernel: string; load: string } {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU",
    cpus: navigator.hardwareConcurrency,
    kernel: Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim(),
    load: Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" "),
  };
}

if (import.meta.main) {
  const figures = await runHostBenches(Deno.args.length > 0 ? Deno.args : undefined);
  for (const f of figures) console.log(f);
}
