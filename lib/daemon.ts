/**
 * The stacd daemon: wires the configuration, the reconciler, udev events
 * and the config file watcher together. Every event only requests a
 * reconcile pass; the reconciler looks at the state itself.
 */
import type { Clock } from "./clock.ts";
import type { StafdReason } from "./dbus/stafd_follower.ts";
import {
  type Configuration,
  type ConfigurationFiles,
  loadConfiguration,
  logDiagnostics,
} from "./configuration.ts";
import { DEFAULT_SYS_CONF, HostNqnError } from "./config/sys_conf.ts";
import { ConfigWatcher } from "./config_watcher.ts";
import type { Kernel, RetryPolicy } from "./controller.ts";
import type { DiscoveredPage } from "./desired.ts";
import type { LastKnownStore } from "./last_known.ts";
import type { Logger } from "./logger.ts";
import { type PendingTimer, Reconciler } from "./reconciler.ts";
import type { Notifier } from "./sd_notify.ts";
import { timerText } from "./timer_text.ts";
import type { IfaceOfAddress } from "./transport_id.ts";
import type { UdevEvent } from "./udev_event.ts";

/** Upstream's timers (contract 5 and 6), in milliseconds. */
export const TIMERS = {
  /** Soak after a config reload or a stafd signal before recomputing. */
  configSoakMs: 1_500,
  /** Soak after stafd vanished and came back, so that it can refill its cache. */
  stafdReturnedSoakMs: 10_000,
  /** The audit looks 1 s after a udev `add`. */
  auditAfterAddMs: 1_000,
  fastRetryMs: 3_000,
  slowRetryMs: 60_000,
} as const;

export type Timers = { -readonly [K in keyof typeof TIMERS]: number };

/**
 * The timers scaled by the test-only variable STACD_TEST_TIMER_SCALE (e.g.
 * 0.01 makes the 60 s retry 0.6 s); the defaults are upstream's.
 */
export function scaledTimers(
  scale = Number(Deno.env.get("STACD_TEST_TIMER_SCALE") ?? "1"),
): Timers {
  const s = Number.isFinite(scale) && scale > 0 ? scale : 1;
  return Object.fromEntries(
    Object.entries(TIMERS).map(([k, v]) => [k, Math.round(v * s)]),
  ) as Timers;
}

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
  /** Sees every udev event after the daemon (e.g. to drop cached sysfs facts). */
  onUdevEvent?: (event: UdevEvent) => void;
  ifaceOfAddress?: IfaceOfAddress;
  /** Reads the configuration; the default reads the files. */
  load?: (files: ConfigurationFiles) => Configuration;
  /** NBFT boot connections present (firmware tables). */
  bootConnections?: boolean;
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

  constructor(files: ConfigurationFiles, deps: DaemonDeps, options: { tron?: boolean } = {}) {
    this.#files = files;
    this.#configPaths = [files.confFile, files.sysConfFile ?? DEFAULT_SYS_CONF];
    this.#deps = deps;
    this.#cliTron = options.tron ?? false;
    this.#configWatcher = new ConfigWatcher(
      this.#configPaths,
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
    });
    this.#updateInputs(false);
  }

  get configuration(): Configuration {
    return this.#configuration;
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
    if (options.watchConfig ?? true) this.#configWatcher.start(this.#configPaths.map(dirOf));
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
      this.reconciler.requestPass(timers.configSoakMs);
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
    this.#pendingPages?.timer.cancel();
    this.#pendingPages = undefined;
    if (pages === undefined) {
      if (reason === "vanished") this.#stafdVanished = true;
      log.debug(`stafd's answer is unknown (${reason}): discovered controllers are kept`);
      return this.setDiscovered(undefined, timers.configSoakMs);
    }
    const now = clock.now();
    if (this.#stafdVanished) this.#returnedUntil = now + timers.stafdReturnedSoakMs;
    this.#stafdVanished = false;
    const soak = Math.max(timers.configSoakMs, this.#returnedUntil - now);
    log.debug(`stafd: ${pages.length} log pages (${reason}); applied in ${soak} ms`);
    const timer = clock.after(soak, () => {
      this.#pendingPages = undefined;
      this.setDiscovered(pages, 0);
    });
    this.#pendingPages = { timer, delayMs: soak, dueMs: now + soak };
  }

  /**
   * process_info's `config soak timer`, one timer as upstream's: stafd's
   * answer waiting, else the pending pass; when off, the soak the next
   * stafd answer gets (10 s while stafd is away, as upstream sets it).
   */
  soakTimerText(): string {
    const { clock, timers } = this.#deps;
    const running = this.#pendingPages ?? this.reconciler.passTimer;
    if (running) return timerText(running.delayMs, running.dueMs - clock.now());
    return timerText(this.#stafdVanished ? timers.stafdReturnedSoakMs : timers.configSoakMs);
  }

  #pendingPages: PendingTimer | undefined;
  /** stafd left the bus and has not answered since. */
  #stafdVanished = false;
  #returnedUntil = 0;

  /** stafd's log pages (undefined: unknown, stafd not answering). */
  setDiscovered(
    pages: readonly DiscoveredPage[] | undefined,
    soakMs = this.#deps.timers.configSoakMs,
  ): void {
    this.#discovered = pages;
    this.#updateInputs(false);
    this.reconciler.requestPass(soakMs);
  }

  /** Stops everything; never disconnects a controller. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const { log, notifier, udev } = this.#deps;
    notifier.notify("STOPPING=1");
    this.#pendingPages?.timer.cancel();
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

  #load(): Configuration {
    this.#configWatcher.loaded();
    return (this.#deps.load ?? loadConfiguration)(this.#files);
  }

  #updateInputs(reload: boolean): void {
    const { config, sys } = this.#configuration;
    const retry: RetryPolicy = {
      fastRetryMs: this.#deps.timers.fastRetryMs,
      slowRetryMs: this.#deps.timers.slowRetryMs,
      attemptsOnNcc: config.connectAttemptsOnNcc,
    };
    this.reconciler.setInputs({
      config,
      sys,
      discovered: this.#discovered,
      bootConnections: this.#deps.bootConnections ?? false,
      retry,
    }, { reload });
  }

  async #followUdev(udev: UdevEventSource): Promise<void> {
    const { log, timers } = this.#deps;
    try {
      for await (const event of udev) {
        try {
          this.#onUdev(event, timers);
          this.#deps.onUdevEvent?.(event);
        } catch (error) {
          log.error(`udev event handling failed: ${(error as Error).message}`);
        }
      }
    } catch (error) {
      if (!this.#stopping) log.error(`udev monitor failed: ${(error as Error).message}`);
    }
  }

  #onUdev(event: UdevEvent, timers: Timers): void {
    const { log } = this.#deps;
    if (event.action === "overflow") {
      log.warning("udev events were lost (receive buffer overflow); re-reading sysfs");
      this.reconciler.eventsLost();
      return;
    }
    log.debug(`udev ${event.action} ${event.sysname}`);
    if (event.action === "remove") {
      this.reconciler.deviceRemoved(event.sysname);
    } else if (event.action === "add") {
      const audit = this.#configuration.config.disconnectScope ===
        "all-connections-matching-disconnect-trtypes";
      if (audit) this.reconciler.requestPass(timers.auditAfterAddMs);
    }
  }
}

/** The directory holding `file`, as watchFs needs it. */
function dirOf(file: string): string {
  return file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
}
