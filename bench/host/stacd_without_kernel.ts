/**
 * stacd for the host benchmarks: lib/daemon/app.ts's assembly (startApp) with a
 * BenchKernel (./bench_kernel.ts: connects succeed at once) in place of
 * libnvme and sysfs (docs/design.md#command-line: no hidden modes in main.ts; a
 * bench composes the daemon in code). Real
 * are the config files, the daemon and reconciler, the last-known file, the
 * health socket, the udev netlink monitor, the config watcher, the D-Bus
 * service and the stafd follower on DBUS_SYSTEM_BUS_ADDRESS. Missing from a
 * real start: the root and /dev/nvme-fabrics checks and dlopen of libnvme.
 *
 *   deno run -A bench/host/stacd_without_kernel.ts DIR CONTROLLERS
 *
 * Writes stacd.conf (CONTROLLERS tcp controllers) and sys.conf into DIR,
 * logs to DIR/stacd.log, and once every controller is connected writes
 * "ready" to stderr. SIGTERM stops it as main.ts does.
 */
import { startApp } from "../../lib/daemon/app.ts";
import { acquireInstanceLock } from "../../lib/daemon/instance_lock.ts";
import { createLogger } from "../../lib/logger.ts";
import { UdevMonitor } from "../../lib/kernel/udev_monitor.ts";
import { BenchKernel } from "./bench_kernel.ts";

// The host identity (sys.conf); test code stays out of the measured process.
const HOSTID = "11111111-2222-3333-4444-555555555555";
const HOSTNQN = `nqn.2014-08.org.nvmexpress:uuid:${HOSTID}`;

/** The i-th benchmark controller's `controller =` value: its own address and subsystem. */
export function benchController(i: number): string {
  return `transport=tcp;traddr=10.${i >> 16}.${(i >> 8) & 255}.${i & 255};trsvcid=4420;` +
    `nqn=nqn.2026-11.io.bench:subsystem-${i}`;
}

async function main(dir: string, count: number): Promise<void> {
  const confFile = `${dir}/stacd.conf`;
  const sysConfFile = `${dir}/sys.conf`;
  const lines = Array.from({ length: count }, (_, i) => `controller = ${benchController(i)}`);
  Deno.writeTextFileSync(confFile, `[Global]\n\n[Controllers]\n${lines.join("\n")}\n`);
  Deno.writeTextFileSync(sysConfFile, `[Host]\nnqn = ${HOSTNQN}\nid = ${HOSTID}\n`);

  // main.ts's part: the instance lock, the log, the udev monitor.
  const lock = acquireInstanceLock(dir);
  const logFile = Deno.openSync(`${dir}/stacd.log`, { create: true, append: true });
  const text = new TextEncoder();
  const log = createLogger({ write: (_, line) => logFile.writeSync(text.encode(`${line}\n`)) });
  const udev = UdevMonitor.open();

  // lib/daemon/app.ts's assembly, with the bench kernel.
  const kernel = new BenchKernel();
  const app = await startApp({
    confFile,
    sysConfFile,
    tron: false,
    runtimeDir: dir,
    log,
    kernel,
    udev,
    describe: "bench kernel",
    bootConnections: false,
  });
  const { daemon } = app;

  // Ready once every controller is connected (the fake kernel answers in a turn or two).
  const managed = () => daemon.reconciler.snapshot.controllers;
  while (!managed().every((c) => c.connected)) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  if (managed().length !== count) {
    throw new Error(`${managed().length} controllers managed, not ${count}`);
  }
  Deno.stderr.writeSync(text.encode("ready\n"));

  const stopped = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", stopped.resolve);
  await stopped.promise;
  await app.stop();
  lock.release();
  logFile.close();
}

if (import.meta.main) {
  const [dir, count] = Deno.args;
  if (!dir || !/^\d+$/.test(count ?? "")) {
    console.error("usage: stacd_without_kernel.ts DIR CONTROLLERS");
    Deno.exit(2);
  }
  await main(dir, Number(count));
  Deno.exit(0);
}
