/**
 * Shared pieces of the in-guest benchmarks: a measured figure, the target's
 * setup, and a clean slate between measurements. Times are only compared
 * with others taken in the same guest run (TCG makes absolute times noisy).
 */
import {
  controllers,
  deleteAllControllers,
  hostIdentity,
  waitFor,
} from "../../tests/guest/nvme_host.ts";
import { DISCOVERY_NQN, kernelOptionString } from "../../lib/core/connect_request.ts";
import type { UdevDeviceEvent } from "../../lib/kernel/udev_event.ts";
import { UdevMonitor } from "../../lib/kernel/udev_monitor.ts";

/** One row of the bench table. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** Printed beside the figure; `pass` says whether the value meets it. */
  target?: string;
  pass?: boolean;
}

export const host = hostIdentity();

export function tcpTargets(nqns: string[]) {
  return nqns.map((subsysnqn) => ({
    transport: "tcp",
    traddr: "127.0.0.1",
    trsvcid: "4420",
    subsysnqn,
  }));
}

/** The kernel's limit: N sequential option-string writes to /dev/nvme-fabrics. */
export function rawWrites(nqns: string[]): number {
  const start = performance.now();
  for (const target of tcpTargets(nqns)) {
    using f = Deno.openSync("/dev/nvme-fabrics", { read: true, write: true });
    f.writeSync(new TextEncoder().encode(kernelOptionString({ target, host })));
    f.readSync(new Uint8Array(256));
  }
  return performance.now() - start;
}

/**
 * The kernel's limit as stacd's runs are timed: the same N sequential
 * writes, from their start to the kernel's N-th "connected" uevent, seen by
 * the same listener (see waitForConnected). A worker makes the writes, so
 * that the listener works during them as it does while stacd connects: the
 * observer's cost and latency then fall on both sides of the ratio.
 */
export async function observedRawWrites(nqns: string[]): Promise<number> {
  const worker = new Worker(new URL("./raw_writer.ts", import.meta.url), { type: "module" });
  try {
    const connected = waitForConnected(nqns.length);
    const written = new Promise((resolve, reject) => {
      worker.onmessage = resolve;
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`raw writes failed: ${event.message}`));
      };
    });
    const start = performance.now();
    worker.postMessage(nqns);
    await written;
    return await connected - start;
  } finally {
    worker.terminate();
  }
}

export async function clean(): Promise<void> {
  await deleteAllControllers();
  await waitFor(() => controllers().length === 0 || undefined, "no controllers left", 60_000);
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Resolves with the time at which the kernel announced the N-th new live
 * I/O controller (uevent NVME_EVENT=connected; a discovery controller, as
 * connect-all makes one, does not count). Event-driven on purpose: a sysfs
 * poll loop would steal the guest's CPU from what is measured.
 */
export function waitForConnected(n: number, timeoutMs = 120_000): Promise<number> {
  return waitForEvents(
    n,
    "connected",
    timeoutMs,
    (e) =>
      e.action === "change" && e.properties.NVME_EVENT === "connected" &&
      subsysnqn(e.sysname) !== DISCOVERY_NQN,
  );
}

function subsysnqn(device: string): string | undefined {
  try {
    return Deno.readTextFileSync(`/sys/class/nvme/${device}/subsysnqn`).trim();
  } catch {
    return undefined; // gone already
  }
}

/** Resolves with the time at which the N-th controller device was removed (uevent remove). */
export function waitForRemoved(n: number, timeoutMs = 120_000): Promise<number> {
  return waitForEvents(
    n,
    "removed",
    timeoutMs,
    (e) => e.action === "remove" && /^nvme\d+$/.test(e.sysname),
  );
}

/**
 * Listens from the call on (so start it before the action measured) until
 * `n` distinct devices had a matching event.
 */
async function waitForEvents(
  n: number,
  what: string,
  timeoutMs: number,
  matches: (e: UdevDeviceEvent) => boolean,
): Promise<number> {
  const monitor = UdevMonitor.open();
  const seen = new Set<string>();
  const timer = setTimeout(() => void monitor.close(), timeoutMs);
  try {
    for await (const e of monitor) {
      if (e.action === "overflow" || !matches(e)) continue;
      seen.add(e.sysname);
      if (seen.size >= n) return performance.now();
    }
    throw new Error(`only ${seen.size} of ${n} controllers ${what} within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    await monitor.close();
  }
}
