/**
 * stacd for the host benchmarks: the components lib/app.ts assembles, in
 * the same order, with a FakeKernel in place of libnvme and sysfs (contract
 * 1: no hidden modes in main.ts; a bench composes the daemon in code). Real
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
import { systemClock } from "../../lib/clock.ts";
import { Daemon, scaledTimers } from "../../lib/daemon.ts";
import { keepOnBus } from "../../lib/dbus/bus_keeper.ts";
import { startStacService } from "../../lib/dbus/service.ts";
import { followStafd } from "../../lib/dbus/stafd_follower.ts";
import { supportedFabricsOptions } from "../../lib/fabrics_device.ts";
import { serveHealth } from "../../lib/health.ts";
import { acquireInstanceLock } from "../../lib/instance_lock.ts";
import type { KernelController } from "../../lib/kernel_controller.ts";
import { fileStore } from "../../lib/last_known.ts";
import { createLogger } from "../../lib/logger.ts";
import { sdNotifier } from "../../lib/sd_notify.ts";
import { createStacModel } from "../../lib/stac_model.ts";
import { UdevMonitor } from "../../lib/udev_monitor.ts";
import { FakeKernel, HOSTID, HOSTNQN } from "../../tests/unit/fakes.ts";

/** The i-th benchmark controller's `controller =` value: its own address and subsystem. */
export function benchController(i: number): string {
  return `transport=tcp;traddr=10.${i >> 16}.${(i >> 8) & 255}.${i & 255};trsvcid=4420;` +
    `nqn=nqn.2026-11.io.bench:subsystem-${i}`;
}

/** The sysfs attributes of a fake connection, as createStacModel reads them. */
function attribute(k: KernelController, name: string): string | undefined {
  switch (name) {
    case "address":
      return `traddr=${k.traddr},trsvcid=${k.trsvcid}`;
    case "transport":
    case "subsysnqn":
    case "hostnqn":
    case "hostid":
    case "cntrltype":
    case "dctype":
    case "state":
    case "model":
    case "serial":
      return k[name];
  }
  return undefined;
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

  // lib/app.ts's part, with the fake kernel.
  const kernel = new FakeKernel();
  const timers = scaledTimers();
  const store = fileStore(dir);
  let forget: (device: string) => void = () => {};
  const daemon = new Daemon({ confFile, sysConfFile }, {
    log,
    clock: systemClock,
    kernel,
    store,
    notifier: sdNotifier(),
    timers,
    udev,
    onUdevEvent: (event) => {
      if (event.action !== "overflow") forget(event.sysname);
    },
  });
  const health = await serveHealth(dir, () => "ok");
  const model = createStacModel({
    daemon,
    log,
    lastKnownFile: store.path,
    configSoakMs: timers.configSoakMs,
    kernelOptions: await supportedFabricsOptions(),
    readAttribute: (device, name) => {
      const k = kernel.controllers.find((c) => c.device === device);
      return k && attribute(k, name);
    },
  });
  forget = model.forget;
  const stac = keepOnBus("org.nvmexpress.stac", () => startStacService(model, { log }), { log });
  await stac.firstAttempt;
  await daemon.start();
  const stafd = keepOnBus(
    "stafd follower",
    () => followStafd({ log, clock: systemClock, onPages: (p, r) => daemon.stafdPages(p, r) }),
    { log },
  );

  // Ready once every controller is connected (the fake kernel answers in a turn or two).
  while (!daemon.reconciler.managed.every((m) => m.controller.connected)) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  if (daemon.reconciler.managed.length !== count) {
    throw new Error(`${daemon.reconciler.managed.length} controllers managed, not ${count}`);
  }
  Deno.stderr.writeSync(text.encode("ready\n"));

  const stopped = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", stopped.resolve);
  await stopped.promise;
  for (const step of [() => stafd.close(), () => stac.close(), () => daemon.stop()]) {
    await step();
  }
  health.close();
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
