/**
 * The reconcile core at scale, on the host: stafd reports 10,000 NVMe
 * subsystems (10 discovery controllers x 1,000 entries) while stacd manages
 * 1,000 of them, each with its kernel connection. Times the recompute a
 * stafd signal or a reload causes: desiredControllers() then plan(), both
 * pure. Then the whole Reconciler over a FakeKernel: from 10,000 new
 * controllers to all connected (the first pass creating and connecting
 * them, the next recording their devices) and a steady pass once all
 * 10,000 are connected (what every later signal costs).
 *
 * Each figure is the median of many runs of the CPU time the process spent
 * (getrusage: the JS thread plus V8's GC helpers), which a busy shared host
 * does not inflate; the wall-clock medians are printed beside them.
 *
 *   deno run -A bench/host/reconcile_scale.ts
 */
import process from "node:process";
import { FakeClock } from "../../tests/fake_clock.ts";
import type { StacdConfig } from "../../lib/config/stacd_conf.ts";
import { desiredControllers, type DiscoveredPage } from "../../lib/core/desired_set.ts";
import type { KernelController } from "../../lib/core/kernel_controller.ts";
import { createLogger } from "../../lib/logger.ts";
import { type ManagedView, plan, type Policy } from "../../lib/core/plan.ts";
import { Reconciler } from "../../lib/daemon/reconciler.ts";
import { TIMERS } from "../../lib/daemon/timers.ts";
import { matchesKernelController } from "../../lib/core/transport_id.ts";
import {
  configText,
  FakeKernel,
  kernelController,
  logEntry,
  MemoryStore,
  page,
  stacdConfig,
  sysConfig,
} from "../../tests/unit/fakes.ts";
import type { Figure } from "../guest/common.ts";
import { median } from "./stats.ts";

const ENTRIES = 10_000;
const PAGES = 10;
const CURRENT = 1_000;
const TARGET_MS = 50;

/** `entries` distinct tcp subsystems spread over `pages` discovery controllers' log pages. */
export function discoveredPages(entries: number, pages: number): DiscoveredPage[] {
  return Array.from({ length: pages }, (_, p) =>
    page(
      Array.from({ length: entries / pages }, (_, j) => {
        const i = p * (entries / pages) + j;
        return logEntry({
          traddr: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
          subnqn: `nqn.2026-11.io.bench:subsystem-${i}`,
          portid: String(p),
        });
      }),
    ));
}

/** Medians over runs, in ms: CPU time of the process, and wall-clock time. */
interface Timing {
  cpu: number;
  wall: number;
}

/** Runs `fn` `runs` times (after `warmup` unmeasured runs). */
async function timeRuns(runs: number, warmup: number, fn: () => unknown): Promise<Timing> {
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < warmup + runs; r++) {
    const start = performance.now();
    const usage = process.cpuUsage();
    await fn();
    const used = process.cpuUsage(usage);
    if (r < warmup) continue;
    wall.push(performance.now() - start);
    cpu.push((used.user + used.system) / 1000);
  }
  return { cpu: median(cpu), wall: median(wall) };
}

const quiet = createLogger({ write() {} });
/** A figure from a timing: CPU time against the target, wall time printed beside it. */
function figure(name: string, t: Timing, target: number | null = TARGET_MS): Figure {
  console.log(`  ${name}: CPU ${t.cpu.toFixed(1)} ms, wall ${t.wall.toFixed(1)} ms (medians)`);
  if (target === null) return { name, value: t.cpu, unit: "ms" };
  return { name, value: t.cpu, unit: "ms", target: `< ${target} ms`, pass: t.cpu < target };
}

/** The pure recompute: desired set from 10,000 entries, then the plan against 1,000 current. */
function pureCore(config: StacdConfig, pages: DiscoveredPage[]) {
  const sys = sysConfig();
  const input = { config, sys, resolved: new Map<string, string>(), discovered: pages };
  const desired = desiredControllers(input, () => {});
  // The first 1,000 desired controllers are managed and connected as nvme0..nvme999.
  const current = [...desired.values()].slice(0, CURRENT);
  const kernel: KernelController[] = current.map((d, i) =>
    kernelController({
      device: `nvme${i}`,
      traddr: d.tid.traddr,
      subsysnqn: d.tid.subsysnqn,
      hostnqn: d.tid.hostNqn,
    })
  );
  const managed: ManagedView[] = current.map((d, i) => ({
    key: d.key,
    origin: "discovered",
    transport: d.tid.transport,
    device: `nvme${i}`,
    connected: true,
    matches: (k) => matchesKernelController(d.tid, k),
  }));
  const policy: Policy = {
    scope: config.disconnectScope,
    trtypes: config.disconnectTrtypes,
    discoveredKnown: true,
    bootConnections: false,
  };
  const recompute = () => {
    const d = desiredControllers(input, () => {});
    return plan(d, managed, kernel, policy, (x, k) => matchesKernelController(x.tid, k));
  };
  const check = recompute();
  if (check.add.length !== ENTRIES - CURRENT || check.update.length !== CURRENT) {
    throw new Error(`unexpected plan: ${check.add.length} add, ${check.update.length} update`);
  }
  return { desiredOnly: () => desiredControllers(input, () => {}), recompute };
}

async function reconcilerPasses(
  pages: DiscoveredPage[],
): Promise<{ first: Timing; steady: Timing; unchanged: Timing }> {
  const config = stacdConfig(configText([]));
  const inputs = {
    config,
    sys: sysConfig(),
    discovered: pages,
    bootConnections: false,
    retry: { fastRetryMs: 3000, slowRetryMs: 60000, attemptsOnNcc: 0 },
  };
  const fresh = () => {
    const kernel = new FakeKernel();
    const reconciler = new Reconciler({
      clock: new FakeClock(),
      kernel,
      log: quiet,
      store: new MemoryStore(),
      resyncMs: TIMERS.resyncMs,
    });
    reconciler.setInputs(inputs);
    return { kernel, reconciler };
  };
  // First pass: 10,000 new controllers created and connected (the fake
  // connects finish at once), up to the pass that records them connected.
  const allConnected = async (r: Reconciler) => {
    const { controllers } = r.snapshot;
    while (controllers.length === 0 || !r.snapshot.controllers.every((c) => c.connected)) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  };
  let last = fresh();
  const first = await timeRuns(3, 1, async () => {
    last = fresh();
    await last.reconciler.runPass();
    await allConnected(last.reconciler);
  });
  const { kernel, reconciler } = last;
  if (reconciler.snapshot.controllers.length !== ENTRIES || kernel.controllers.length !== ENTRIES) {
    throw new Error("not every controller connected");
  }
  // A stafd signal: new inputs (equal ones), so the desired set is computed again.
  const steady = await timeRuns(20, 3, () => {
    reconciler.setInputs({ ...inputs });
    return reconciler.runPass();
  });
  // A retry, a udev event or the resync: the same inputs.
  const unchanged = await timeRuns(20, 3, () => reconciler.runPass());
  if (kernel.controllers.length !== ENTRIES) throw new Error("a steady pass changed the kernel");
  await reconciler.stop();
  return { first, steady, unchanged };
}

/** The figures of this bench. */
export async function benchReconcileScale(): Promise<Figure[]> {
  const pages = discoveredPages(ENTRIES, PAGES);
  const figures: Figure[] = [];
  const defaults = pureCore(stacdConfig(configText([])), pages);
  const desired = await timeRuns(30, 5, defaults.desiredOnly);
  const recompute = await timeRuns(30, 5, defaults.recompute);
  const audit = pureCore(
    stacdConfig(
      configText(
        [],
        "[I/O controller connection management]\n" +
          "disconnect-scope = all-connections-matching-disconnect-trtypes",
      ),
    ),
    pages,
  );
  const auditRecompute = await timeRuns(30, 5, audit.recompute);
  figures.push(
    figure("reconcile 10k/1k CPU: desired set", desired),
    figure("reconcile 10k/1k CPU: desired + plan", recompute),
    figure("reconcile 10k/1k CPU: desired + plan, audit scope", auditRecompute),
  );
  const passes = await reconcilerPasses(pages);
  figures.push(
    // Once per start, or when 10,000 entries are new: informative, no target.
    figure("Reconciler CPU: 10k new to connected (FakeKernel)", passes.first, null),
    figure("Reconciler CPU: steady pass, 10k connected", passes.steady),
    figure("Reconciler CPU: pass with unchanged inputs, 10k connected", passes.unchanged),
  );
  return figures;
}

if (import.meta.main) {
  for (const f of await benchReconcileScale()) console.log(f);
}
