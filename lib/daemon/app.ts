/**
 * Assembles a running stacd from its parts, in order, and takes it apart
 * in reverse: the kernel adapter, the daemon, the health socket, the D-Bus
 * service (kept up as far as the bus allows) and what it follows for
 * discovery: stafd over D-Bus, or, in the one-process mode, the finder in
 * this process (docs/design.md#one-process-mode). lib/cli/run_daemon.ts
 * checks the preconditions and owns signals and the exit code.
 */
import { systemClock } from "../clock.ts";
import { Daemon, type UdevEventSource } from "./daemon.ts";
import { keepOnBus } from "../dbus/bus_keeper.ts";
import { startStacService } from "../dbus/service.ts";
import { followStafd } from "../dbus/stafd_follower.ts";
import { followFinder } from "../finder/in_process.ts";
import { type StafdApp, startStafdApp } from "../finder/stafd_app.ts";
import type { FabricsSupport } from "../kernel/fabrics_support.ts";
import { serveHealth } from "./health_socket.ts";
import type { DiscoveryKernel, Kernel } from "../core/kernel_api.ts";
import { fileStore } from "./last_known_store.ts";
import type { Logger } from "../logger.ts";
import { ifaceOfAddress } from "../kernel/net_iface.ts";
import { sdNotifier } from "./sd_notify.ts";
import { createStacModel } from "../dbus/status_model.ts";
import { Latest, type StacdStatus, stopInOrder } from "./status.ts";
import { scaledTimers } from "./timers.ts";
import { VERSION } from "../version.ts";

export interface AppOptions {
  confFile: string;
  /** Default /etc/stas/sys.conf. */
  sysConfFile?: string;
  tron: boolean;
  runtimeDir: string;
  log: Logger;
  /** The kernel adapter: RealKernel in stacd; benches without a kernel compose a fake. */
  kernel: Kernel | DiscoveryKernel;
  udev: UdevEventSource;
  /** For the start-up line: libnvme's version and where uevents come from. */
  describe: string;
  /**
   * What the kernel's fabrics driver takes, as the kernel adapter read it
   * (RealKernel.support()), for process_info; absent: shown as unknown.
   */
  kernelSupport?: Promise<FabricsSupport>;
  /** Firmware-listed NVMe-oF boot connections (NBFT) exist. */
  bootConnections: boolean;
  /**
   * The one-process mode: the finder runs here, with this stafd.conf and
   * its own udev source (the kernel must then read discovery log pages).
   */
  finder?: { confFile: string; udev: UdevEventSource };
}

export interface App {
  readonly daemon: Daemon;
  reload(): void;
  stop(): Promise<void>;
}

/**
 * Starts everything; throws HostNqnError when sys.conf gives no usable host
 * NQN, FileReadError when stacd.conf or sys.conf exists but cannot be read.
 */
export async function startApp(o: AppOptions): Promise<App> {
  const { log, kernel, udev } = o;
  const timers = scaledTimers();
  const store = fileStore(o.runtimeDir);
  const status = new Latest<StacdStatus>();
  // The in-process finder (one-process mode) reloads with stacd, and its
  // stafd.conf is watched with stacd's files.
  let finder: StafdApp | undefined;
  const daemon = new Daemon({ confFile: o.confFile, sysConfFile: o.sysConfFile }, {
    log,
    clock: systemClock,
    kernel,
    store,
    notifier: sdNotifier(),
    timers,
    udev,
    bootConnections: o.bootConnections,
    ifaceOfAddress,
    publish: (s) => status.set(s),
    companion: o.finder
      ? { files: [o.finder.confFile], reload: () => finder?.reload() }
      : undefined,
  }, { tron: o.tron });
  log.info(`Starting stacd ${VERSION} (${o.describe})`);
  if (o.bootConnections) {
    log.info(
      "NVMe-oF boot connections listed by the firmware (NBFT): the audit disconnects nothing",
    );
  }

  // Connects start first: the health socket, the model and the bus come
  // up beside the first pass. READY=1 (Type=notify) waits for the bus name,
  // owned or known to be out of reach.
  const bus = Promise.withResolvers<void>();
  const started = daemon.start({ readyAfter: bus.promise });
  started.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
  const health = await serveHealth(o.runtimeDir, () => "ok").catch((error) => {
    log.warning(`Health socket unavailable: ${(error as Error).message}`);
    return undefined;
  });
  const model = createStacModel({
    status: () => status.get(),
    setTron: (on) => daemon.setTron(on, "set over D-Bus"),
    clock: systemClock,
    lastKnownFile: store.path,
    kernelOptions: (await o.kernelSupport)?.options,
  });
  const stac = keepOnBus("org.nvmexpress.stac", () => startStacService(model, { log }), { log });
  void stac.firstAttempt.then(bus.resolve);
  await started;
  let stafd: { close(): Promise<void> } | undefined;
  if (o.finder) {
    if (!("discoveryLog" in kernel)) {
      throw new Error("the one-process mode needs a discovery kernel");
    }
    finder = await startStafdApp({
      confFile: o.finder.confFile,
      sysConfFile: o.sysConfFile,
      tron: o.tron,
      runtimeDir: o.runtimeDir,
      log,
      kernel,
      udev: o.finder.udev,
      describe: "in stacd's process",
      kernelSupport: o.kernelSupport,
      dbus: false,
      health: false,
      notifier: { notify() {} },
    });
    followFinder(finder, { log, onPages: (p, r) => daemon.stafdPages(p, r) });
  } else {
    // Not awaited: a slow bus must not hold up the controllers stacd manages.
    stafd = keepOnBus(
      "stafd follower",
      () => followStafd({ log, clock: systemClock, onPages: (p, r) => daemon.stafdPages(p, r) }),
      { log },
    );
  }

  return {
    daemon,
    reload() {
      daemon.reload();
      stac.current?.emitTron(daemon.tron);
    },
    async stop() {
      const steps: [string, () => unknown][] = [
        ["stafd follower", () => stafd?.close()],
        ["finder", () => finder?.stop()],
        ["D-Bus service", () => stac.close()],
        ["daemon", () => daemon.stop()],
        ["health socket", () => health?.close()],
      ];
      await stopInOrder(steps, log);
    },
  };
}

/** Whether the firmware lists NVMe-oF boot connections (an NBFT ACPI table). */
export function hasBootConnections(tables = "/sys/firmware/acpi/tables"): boolean {
  try {
    return [...Deno.readDirSync(tables)].some((e) => e.name.startsWith("NBFT"));
  } catch {
    return false;
  }
}
