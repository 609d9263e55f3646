/**
 * Assembles a running stafd from its parts, and takes it apart in reverse:
 * the configuration, the finder (lib/finder/finder.ts), udev events, the
 * health socket and the D-Bus service (kept up as far as the bus allows).
 * The same finder runs inside stacd in the one-process mode
 * (docs/design.md#one-process-mode), without the bus: `onChange` is how the
 * connector follows it there.
 */
import { systemClock } from "../clock.ts";
import { loadStafdConfiguration, logDiagnostics } from "../config/load.ts";
import type { StafdConfig } from "../config/stafd_conf.ts";
import type { SysConfig } from "../config/sys_conf.ts";
import { FileReadError } from "../config/text_file.ts";
import { hostNamesToResolve } from "../core/desired_set.ts";
import type { UdevEventSource } from "../daemon/daemon.ts";
import { serveHealth } from "../daemon/health_socket.ts";
import { resolveHostNames } from "../daemon/host_resolver.ts";
import { fileStore } from "../daemon/last_known_store.ts";
import { type Notifier, sdNotifier } from "../daemon/sd_notify.ts";
import { hostStatus, Latest, stopInOrder } from "../daemon/status.ts";
import { keepOnBus } from "../dbus/bus_keeper.ts";
import { createStafModel, type StafdStatus, type StafModel } from "../dbus/staf_model.ts";
import { startStafService } from "../dbus/staf_service.ts";
import type { FabricsSupport } from "../kernel/fabrics_support.ts";
import { ifaceOfAddress } from "../kernel/net_iface.ts";
import type { Logger } from "../logger.ts";
import { VERSION } from "../version.ts";
import { type DiscoveryKernel, Finder, FINDER_TIMERS, type FinderSnapshot } from "./finder.ts";
import { scaled } from "../daemon/timers.ts";

/** Where the finder keeps its pages in its runtime directory. */
export const PAGE_CACHE_FILE = "discovery-pages";

export interface StafdAppOptions {
  confFile: string;
  sysConfFile?: string;
  tron: boolean;
  runtimeDir: string;
  log: Logger;
  kernel: DiscoveryKernel;
  udev: UdevEventSource;
  /** For the start-up line: libnvme's version and where uevents come from. */
  describe: string;
  kernelSupport?: Promise<FabricsSupport>;
  /** Serve org.nvmexpress.staf (stafd); false in the one-process mode. */
  dbus: boolean;
  /** Serve the health socket (stafd); the connector serves it in the one-process mode. */
  health: boolean;
  notifier?: Notifier;
}

export interface StafdApp {
  readonly model: StafModel;
  /** The finder's latest snapshot. */
  snapshot(): FinderSnapshot;
  /** Called after every change of what the finder knows (a page read, DCs removed). */
  onChange(listener: () => void): void;
  reload(): void;
  stop(): Promise<void>;
}

/**
 * Starts everything; throws HostNqnError when sys.conf gives no usable host
 * NQN, FileReadError when stafd.conf or sys.conf exists but cannot be read.
 */
export async function startStafdApp(o: StafdAppOptions): Promise<StafdApp> {
  const { log, kernel } = o;
  const notifier = o.notifier ?? sdNotifier();
  const files = { confFile: o.confFile, sysConfFile: o.sysConfFile };
  let { config, sys, diagnostics } = loadStafdConfiguration(files);
  // In the one-process mode the logger is stacd's: stacd.conf decides tron.
  const ownsTron = o.dbus;
  if (ownsTron) log.tron = o.tron || config.tron;
  log.info(`Starting stafd ${VERSION} (${o.describe})`);
  logDiagnostics(log, diagnostics);

  const status = new Latest<StafdStatus>();
  const listeners: (() => void)[] = [];
  const changed = () => {
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        log.error(`Following the finder failed: ${(error as Error).message}`);
      }
    }
  };
  const publishStatus = (finder = status.get().finder) =>
    status.set({
      tron: log.tron,
      host: hostStatus(sys),
      ignoreIface: config.ignoreIface,
      finder,
    });
  publishStatus({ dcs: [] });

  const store = fileStore(o.runtimeDir, PAGE_CACHE_FILE);
  let service: Awaited<ReturnType<typeof startStafService>> | undefined;
  const finder = new Finder({
    clock: systemClock,
    kernel,
    log,
    timers: scaled(FINDER_TIMERS), // STACD_TEST_TIMER_SCALE, as stacd's
    store,
    ifaceOfAddress,
    publish: (snapshot) => publishStatus(snapshot),
    onPageRead: (dc) => {
      service?.emitLogPagesChanged(dc);
      changed();
    },
    onRemoved: () => {
      service?.emitDcRemoved();
      changed();
    },
  });
  const inputs = async (c: StafdConfig, s: SysConfig) => ({
    config: c,
    sys: s,
    resolved: await resolveHostNames(
      hostNamesToResolve(c, s),
      c.ipFamily,
      undefined,
      (message) => log.warning(message),
    ),
  });
  await finder.start(await inputs(config, sys));

  const udevDone = (async () => {
    try {
      for await (const event of o.udev) finder.udevEvent(event);
    } catch (error) {
      log.error(`udev monitor failed: ${(error as Error).message}`);
    }
  })();
  const health = o.health
    ? await serveHealth(o.runtimeDir, () => "ok").catch((error) => {
      log.warning(`Health socket unavailable: ${(error as Error).message}`);
      return undefined;
    })
    : undefined;
  const model = createStafModel({
    status: () => status.get(),
    setTron: (on) => {
      log.tron = on;
      publishStatus();
    },
    clock: systemClock,
    cacheFile: store.path,
    kernelOptions: (await o.kernelSupport)?.options,
  });
  const staf = o.dbus
    ? keepOnBus("org.nvmexpress.staf", () => startStafService(model, { log }), {
      log,
      onUp: (s) => service = s,
    })
    : undefined;
  await staf?.firstAttempt;
  notifier.notify("READY=1", "STATUS=Discovering");

  let reloading = Promise.resolve();
  return {
    model,
    snapshot: () => status.get().finder,
    onChange: (listener) => listeners.push(listener),
    reload() {
      reloading = reloading.then(async () => {
        notifier.notify("RELOADING=1");
        try {
          ({ config, sys, diagnostics } = loadStafdConfiguration(files));
          // As upstream: a reload sets tron to the file's value.
          if (ownsTron) log.tron = config.tron;
          log.info("Reloading stafd's configuration");
          logDiagnostics(log, diagnostics);
          finder.setInputs(await inputs(config, sys));
          publishStatus();
        } catch (error) {
          const why = error instanceof FileReadError ? error.message : String(error);
          log.error(`Reload failed (${why}); the running configuration stays`);
        }
        notifier.notify("READY=1");
      });
    },
    async stop() {
      notifier.notify("STOPPING=1");
      await reloading;
      const disconnect = !config.persistentConnections;
      const steps: [string, () => unknown][] = [
        ["D-Bus service", () => staf?.close()],
        ["finder", () => finder.stop({ disconnect })],
        ["udev monitor", async () => {
          await o.udev.close();
          await udevDone;
        }],
        ["health socket", () => health?.close()],
      ];
      await stopInOrder(steps, log);
    },
  };
}
