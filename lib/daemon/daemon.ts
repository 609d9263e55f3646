/**
 * The stacd daemon: wires the configuration, the reconciler, udev events,
 * stafd's answers and the config file watcher together. Every event only
 * requests a reconcile pass; the reconciler looks at the state itself.
 * It owns the configuration, the config soak timer and the trace setting,
 * and publishes what stacd shows of itself (status.ts).
 */
import type { Clock, Timer } from "../clock.ts";
import type { StafdReason } from "../dbus/stafd_follower.ts";
import {
  type Configuration,
  type ConfigurationFiles,
  loadConfiguration,
  logDiagnostics,
} from "../config/load.ts";
import { DEFAULT_SYS_CONF, HostNqnError } from "../config/sys_conf.ts";
import { ConfigWatcher } from "./config_watcher.ts";
import type { DiscoveredPage } from "../core/desired_set.ts";
import type { Kernel } from "../core/kernel_api.ts";
import type { LastKnownStore } from "./last_known_store.ts";
import type { Logger } from "../logger.ts";
import { Reconciler } from "./reconciler.ts";
import type { Notifier } from "./sd_notify.ts";
import { hostStatus, type StacdStatus } from "./status.ts";
import type { TimerState } from "../core/timer_text.ts";
import type { Timers } from "./timers.ts";
import type { IfaceOfAddress } from "../core/transport_id.ts";
import type { UdevEvent } from "../kernel/udev_event.ts";

/** A source of udev events that can be closed (UdevMonitor, or a fake). */
export interface UdevEventSource extends AsyncIterable<UdevEvent> {
  close(): Promise<void> | void;
}

export interface DaemonDeps {
  log: Logger;
  clock: Clock;
  kernel: Kernel;
  store: LastKnownStore;
  notifier: Notifier;
  timers: Timers;
  udev?: UdevEventSource;
  /** The interface holding a local address (tcp's host-iface rule). */
  ifaceOfAddress?: IfaceOfAddress;
  /** Reads the configuration; the default reads the files. */
  load?: (files: ConfigurationFiles) => Configuration;
  /** NBFT boot connections present (firmware tables). */
  bootConnections?: boolean;
  /** Hears what stacd shows of itself, at every change. */
  publish?: (status: StacdStatus) => void;
  /**
   * Another part's configuration (the in-process finder's stafd.conf):
   * watched with stacd's files; `reload` is called with every reload of
   * stacd's, whether a signal or a change of any watched file asked for it.
   */
  companion?: { files: readonly string[]; reload(): void };
}

/** The config soak timer, and stafd's pages waiting for it. */
interface Soak extends TimerState {
  timer: Timer;
  pages?: { value: readonly DiscoveredPage[] };
}

export class Daemon {
  readonly #files: ConfigurationFiles;
  /** stacd.conf and sys.conf, with sys.conf's default applied: what is watched and named. */
  readonly #configPaths: readonly [string, string];
  readonly #deps: DaemonDeps;
  readonly reconciler: Reconciler;
  #configuration: Configuration;
  #discovered: readonly DiscoveredPage[] | undefined = undefined;
  #udevLoop: Promise<void> | undefined;
  readonly #configWatcher: ConfigWatcher;
  #stopping = false;
  /** --tron holds until the first reload; then the file decides. */
  #cliTron: boolean;
  #soak: Soak | undefined;
  /** stafd left the bus and has not answered since. */
  #stafdVanished = false;
  #returnedUntil = 0;

  constructor(files: ConfigurationFiles, deps: DaemonDeps, options: { tron?: boolean } = {}) {
    this.#files = files;
    this.#configPaths = [files.confFile, files.sysConfFile ?? DEFAULT_SYS_CONF];
    this.#deps = deps;
    this.#cliTron = options.tron ?? false;
    this.#configWatcher = new ConfigWatcher(
      [...this.#configPaths, ...deps.companion?.files ?? []],
      {
        clock: deps.clock,
        log: deps.log,
        soakMs: deps.timers.configSoakMs,
        onChange: () => this.reload(),
      },
    );
    this.#configuration = this.#load();
    deps.log.tron = this.#cliTron || this.#configuration.config.tron;
    this.reconciler = new Reconciler({
      clock: deps.clock,
      kernel: deps.kernel,
      log: deps.log,
      store: deps.store,
      ifaceOfAddress: deps.ifaceOfAddress,
      resyncMs: deps.timers.resyncMs,
      settleMs: deps.timers.settleMs,
      publish: () => this.#publish(),
    });
    this.#updateInputs(false);
    this.#publish();
  }

  get configuration(): Configuration {
    return this.#configuration;
  }

  /** Debug logging; see {@linkcode setTron}. */
  get tron(): boolean {
    return this.#deps.log.tron;
  }

  /**
   * Turns debug logging on or off from `source` (e.g. "set over D-Bus"):
   * the one place that changes it after the start, besides a reload, which
   * takes the file's setting.
   */
  setTron(on: boolean, source: string): void {
    const { log } = this.#deps;
    if (log.tron === on) return;
    log.tron = on;
    log.info(`Trace ${on ? "on" : "off"} (${source})`);
    this.#publish();
  }

  /**
   * Restores the last-known controllers, runs the first pass, starts
   * listening. READY=1 goes out once the pass ran and `readyAfter` settled
   * (the D-Bus name: systemd's Type=notify start then means both).
   *
   * The listeners start once the first pass yields to the event loop, i.e.
   * when its connects are in the kernel (or it waits for a name lookup):
   * under load their set-up delayed the first connect. Nothing is lost
   * meanwhile: uevents queue in the monitor's socket, and the config
   * watcher looks for a change made since the load when it starts.
   */
  async start(
    options: { watchConfig?: boolean; readyAfter?: Promise<unknown> } = {},
  ): Promise<void> {
    logDiagnostics(this.#deps.log, this.#configuration.diagnostics);
    await this.reconciler.restore();
    const pass = this.reconciler.runPass();
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (this.#deps.udev) this.#udevLoop = this.#followUdev(this.#deps.udev);
    // sys.conf may live elsewhere than stacd.conf (-f): both directories.
    if (options.watchConfig ?? true) {
      const files = [...this.#configPaths, ...this.#deps.companion?.files ?? []];
      this.#configWatcher.start([...new Set(files.map(dirOf))]);
    }
    await Promise.all([pass, options.readyAfter?.catch(() => {})]);
    this.#deps.notifier.notify("READY=1", "STATUS=Running");
  }

  /**
   * SIGHUP: re-read both files in place; connections are left alone. A
   * reload that fails (no usable host NQN, a file that cannot be read, any
   * error) keeps the running configuration: exiting would make systemd
   * restart stacd into the same failure. systemd hears READY=1 either way.
   */
  reload(): void {
    if (this.#stopping) return;
    const { log, notifier, timers } = this.#deps;
    notifier.notify("RELOADING=1");
    const running = { configuration: this.#configuration, cliTron: this.#cliTron, tron: log.tron };
    try {
      this.#configuration = this.#load();
      this.#cliTron = false;
      log.tron = this.#configuration.config.tron;
      logDiagnostics(log, this.#configuration.diagnostics);
      log.info(`Configuration reloaded from ${this.#files.confFile}`);
      this.#updateInputs(true);
      this.#startSoak(timers.configSoakMs, "config reloaded");
    } catch (error) {
      // Whatever step failed, what runs is what ran before (the reconciler
      // only takes new inputs at the last step, which did not complete).
      this.#configuration = running.configuration;
      this.#cliTron = running.cliTron;
      log.tron = running.tron;
      if (error instanceof HostNqnError) logDiagnostics(log, error.diagnostics);
      const files = this.#configPaths.join(", ");
      log.error(
        `Reload failed (${files}): ${(error as Error).message}; ` +
          "the running configuration is kept",
      );
    } finally {
      notifier.notify("READY=1");
      this.#publish();
    }
    try {
      this.#deps.companion?.reload();
    } catch (error) {
      log.error(`Reload of the finder failed: ${(error as Error).message}`);
    }
  }

  /**
   * stafd's answer from the follower. Unknown is installed at once (it only
   * keeps things); known pages wait for the soak, which each new answer
   * restarts, as upstream's timer does. The soak is 1.5 s, also when stafd
   * is first seen (at stacd's start or later); only the first answer after
   * stafd vanished and came back starts 10 s, long enough for a restarted
   * stafd to refill its cache, and later answers do not cut that short.
   */
  stafdPages(pages: DiscoveredPage[] | undefined, reason: StafdReason): void {
    if (this.#stopping) return;
    const { clock, timers, log } = this.#deps;
    if (pages === undefined) {
      if (reason === "vanished") this.#stafdVanished = true;
      log.debug(`stafd's answer is unknown (${reason}): discovered controllers are kept`);
      this.#discovered = undefined;
      this.#updateInputs(false);
      this.#startSoak(timers.configSoakMs, `stafd ${reason}`, { replacePages: true });
      return;
    }
    const now = clock.now();
    if (this.#stafdVanished) this.#returnedUntil = now + timers.stafdReturnedSoakMs;
    this.#stafdVanished = false;
    const soak = Math.max(timers.configSoakMs, this.#returnedUntil - now);
    log.debug(`stafd: ${pages.length} log pages (${reason}); applied in ${soak} ms`);
    this.#startSoak(soak, `stafd ${reason}`, { replacePages: true, pages });
  }

  /** Stops everything; never disconnects a controller. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const { log, notifier, udev } = this.#deps;
    notifier.notify("STOPPING=1");
    this.#soak?.timer.cancel();
    this.#soak = undefined;
    // Each step on its own: one failing must not keep the others from running.
    const steps: [string, () => unknown][] = [
      ["config watcher", () => this.#configWatcher.close()],
      ["udev monitor", () => udev?.close()],
      ["reconciler", () => this.reconciler.stop()],
      ["udev loop", () => this.#udevLoop],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        log.error(`Stopping ${name} failed: ${(error as Error).message}`);
      }
    }
  }

  /**
   * (Re)starts the one config soak timer (upstream's `config soak timer`):
   * when it fires, stafd's pages waiting for it are installed and a pass
   * runs. `replacePages` drops pages still waiting (a newer answer came); a
   * reload keeps them, and does not cut a longer soak short.
   */
  #startSoak(
    delayMs: number,
    reason: string,
    options: { replacePages?: boolean; pages?: readonly DiscoveredPage[] } = {},
  ): void {
    const { clock } = this.#deps;
    const now = clock.now();
    const previous = this.#soak;
    previous?.timer.cancel();
    const pages = options.replacePages
      ? options.pages && { value: options.pages }
      : previous?.pages;
    const dueMs = options.replacePages || !previous
      ? now + delayMs
      : Math.max(previous.dueMs, now + delayMs);
    const timer = clock.after(dueMs - now, () => {
      this.#soak = undefined;
      if (pages) {
        this.#discovered = pages.value;
        this.#updateInputs(false);
      }
      this.reconciler.requestPass(0, reason);
      this.#publish();
    });
    this.#soak = { timer, delayMs: dueMs - now, dueMs, pages };
    this.#publish();
  }

  #publish(): void {
    const { publish, timers } = this.#deps;
    if (!publish) return;
    const { sys, config } = this.#configuration;
    const soak = this.#soak;
    publish({
      pass: this.reconciler.snapshot,
      soak: soak && { delayMs: soak.delayMs, dueMs: soak.dueMs },
      soakIdleMs: this.#stafdVanished ? timers.stafdReturnedSoakMs : timers.configSoakMs,
      host: hostStatus(sys),
      ignoreIface: config.ignoreIface,
      tron: this.#deps.log.tron,
    });
  }

  #load(): Configuration {
    this.#configWatcher.loaded();
    return (this.#deps.load ?? loadConfiguration)(this.#files);
  }

  #updateInputs(reload: boolean): void {
    const { config, sys } = this.#configuration;
    const { fastRetryMs, slowRetryMs } = this.#deps.timers;
    this.reconciler.setInputs({
      config,
      sys,
      discovered: this.#discovered,
      bootConnections: this.#deps.bootConnections ?? false,
      retry: { fastRetryMs, slowRetryMs },
    }, { reload });
  }

  async #followUdev(udev: UdevEventSource): Promise<void> {
    const { log } = this.#deps;
    try {
      for await (const event of udev) {
        try {
          this.#onUdev(event);
        } catch (error) {
          log.error(`udev event handling failed: ${(error as Error).message}`);
        }
      }
    } catch (error) {
      if (!this.#stopping) log.error(`udev monitor failed: ${(error as Error).message}`);
    }
  }

  /**
   * A removal is looked at after the settle time (the pass sees the device
   * gone and retries its controller 3 s later); an `add` 1 s later, for
   * the audit only.
   */
  #onUdev(event: UdevEvent): void {
    const { log, timers } = this.#deps;
    if (event.action === "overflow") {
      log.warning("udev events were lost (receive buffer overflow); re-reading sysfs");
      this.reconciler.requestPass(timers.settleMs, "udev events lost");
      return;
    }
    log.debug(`udev ${event.action} ${event.sysname}`);
    if (event.action === "remove") {
      this.reconciler.requestPass(timers.settleMs, `udev remove ${event.sysname}`);
    } else if (event.action === "add") {
      const audit = this.#configuration.config.disconnectScope ===
        "all-connections-matching-disconnect-trtypes";
      if (audit) this.reconciler.requestPass(timers.auditAfterAddMs, `udev add ${event.sysname}`);
    }
  }
}

/** The directory holding `file`, as watchFs needs it. */
function dirOf(file: string): string {
  return file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
}
