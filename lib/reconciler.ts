/**
 * The executor of the reconcile decision: holds the managed controllers,
 * runs passes (one at a time; requests during a pass collapse into one more
 * pass), applies the plan, persists the set. Events (udev, stafd signals,
 * SIGHUP) only request a pass; each pass re-reads the kernel's state.
 */
import type { Clock, Timer } from "./clock.ts";
import type { StacdConfig } from "./config/stacd_conf.ts";
import type { SysConfig } from "./config/sys_conf.ts";
import { Controller, type ControllerSpec, type Kernel, type RetryPolicy } from "./controller.ts";
import {
  connectRequest,
  type DesiredController,
  desiredControllers,
  type DiscoveredPage,
  hostKeyRefusal,
  hostNamesToResolve,
} from "./desired.ts";
import type { KernelController } from "./kernel_controller.ts";
import { decodeLastKnown, encodeLastKnown, type LastKnownStore } from "./last_known.ts";
import type { Logger } from "./logger.ts";
import { type ManagedOrigin, plan, type Policy } from "./reconcile.ts";
import { resolveHostNames, type Resolver } from "./resolve.ts";
import { timerText } from "./timer_text.ts";
import {
  type IfaceOfAddress,
  makeTid,
  matchesExclude,
  matchesKernelController,
  printableTid,
  tidKey,
  type TransportId,
} from "./transport_id.ts";

/** Upstream's terminator audit period (CtrlTerminator.DISPOSAL_AUDIT_PERIOD_SEC). */
export const TERMINATOR_AUDIT_MS = 30_000;

/** A running timer: the delay it was set for, and when it fires (clock time). */
export interface TimerState {
  delayMs: number;
  dueMs: number;
}

/** A running timer with its handle. */
export interface PendingTimer extends TimerState {
  timer: Timer;
}

export interface ReconcilerDeps {
  clock: Clock;
  kernel: Kernel;
  log: Logger;
  store: LastKnownStore;
  resolver?: Resolver;
  ifaceOfAddress?: IfaceOfAddress;
  /** Called after every change of a controller or of the set (D-Bus, metrics). */
  onChange?: () => void;
}

/** One managed controller with what the plan needs beside its life. */
export interface Managed {
  key: string;
  tid: TransportId;
  origin: ManagedOrigin;
  controller: Controller;
  dlpe?: DesiredController["dlpe"];
}

export interface Inputs {
  config: StacdConfig;
  sys: SysConfig;
  /** stafd's pages, or undefined while its answer is unknown. */
  discovered: readonly DiscoveredPage[] | undefined;
  /** NBFT boot connections present. */
  bootConnections: boolean;
  retry: RetryPolicy;
}

export class Reconciler {
  readonly #deps: ReconcilerDeps;
  readonly #managed = new Map<string, Managed>();
  readonly #disposals = new Set<Promise<void>>();
  #inputs: Inputs | undefined;
  #timer: PendingTimer | undefined;
  /** Disposals waiting for a connect in flight (upstream's terminator), and since when. */
  #terminator = { waiting: 0, sinceMs: 0 };
  #running: Promise<void> | undefined;
  #again = false;
  #kickOnNextPass = false;
  #stopped = false;
  #lastReports = new Set<string>();

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
  }

  /** The controllers stacd manages now. */
  get managed(): readonly Managed[] {
    return [...this.#managed.values()];
  }

  /** The pending pass (the end of a soak), if one is requested. */
  get passTimer(): TimerState | undefined {
    return this.#timer && { delayMs: this.#timer.delayMs, dueMs: this.#timer.dueMs };
  }

  /**
   * process_info's `terminator.audit timer`. Upstream's terminator checks
   * every 30 s whether the connects that hold up a disposal are over; here
   * the disposal itself waits for them, and the timer shows, as upstream's
   * would, the seconds left in the current 30 s while one waits.
   */
  terminatorTimerText(): string {
    const { waiting, sinceMs } = this.#terminator;
    if (waiting === 0) return timerText(TERMINATOR_AUDIT_MS);
    const elapsed = (this.#deps.clock.now() - sinceMs) % TERMINATOR_AUDIT_MS;
    return timerText(TERMINATOR_AUDIT_MS, TERMINATOR_AUDIT_MS - elapsed);
  }

  /** New inputs (config, stafd's pages). `reload` retries idle controllers at the next pass. */
  setInputs(inputs: Inputs, options: { reload?: boolean } = {}): void {
    this.#inputs = inputs;
    if (options.reload) this.#kickOnNextPass = true;
  }

  /**
   * Re-creates the controllers of the last-known config that still have a
   * matching kernel connection; the others are forgotten.
   */
  async restore(): Promise<void> {
    const { store, log, kernel } = this.#deps;
    let text: string | undefined;
    try {
      text = await store.load();
    } catch (error) {
      log.warning(`Cannot read last known config ${store.path}: ${(error as Error).message}`);
    }
    if (text === undefined) return;
    const { entries, dropped } = decodeLastKnown(text);
    if (dropped > 0) {
      log.warning(`Last known config ${store.path}: ${dropped} malformed entries ignored`);
    }
    const connections = await kernel.list();
    for (const entry of entries) {
      const key = tidKey(entry.tid);
      if (this.#managed.has(key)) continue;
      const existing = connections.find((k) => this.#matches(entry.tid, k));
      if (!existing) continue;
      this.#manage(key, entry.tid, entry.origin, this.#restoredSpec(entry.tid)).controller.start(
        connections,
      );
    }
    if (this.#managed.size > 0) {
      log.info(`Restored ${this.#managed.size} controllers from ${store.path}`);
    }
  }

  /**
   * Asks for a pass in `delayMs`. Bursts collapse: a pending pass that is due
   * sooner stays; a later one is brought forward.
   */
  requestPass(delayMs = 0): void {
    if (this.#stopped) return;
    const { clock } = this.#deps;
    const due = clock.now() + delayMs;
    if (this.#timer && this.#timer.dueMs <= due) return;
    this.#timer?.timer.cancel();
    this.#timer = {
      delayMs,
      dueMs: due,
      timer: clock.after(delayMs, () => {
        this.#timer = undefined;
        void this.runPass();
      }),
    };
  }

  /** Runs a pass now (or right after the running one). Resolves when it is done. */
  runPass(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#pass();
        } catch (error) {
          this.#deps.log.error(`Reconcile pass failed: ${(error as Error).stack ?? error}`);
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => this.#running = undefined);
    return this.#running;
  }

  /** udev `remove` of a device: the controller that owned it retries. */
  deviceRemoved(device: string): void {
    for (const m of this.#managed.values()) m.controller.deviceRemoved(device);
  }

  /**
   * udev events were lost: a pass re-reads sysfs for the connected
   * controllers, and connects in flight check their device when they return.
   */
  eventsLost(): void {
    for (const m of this.#managed.values()) m.controller.eventsLost();
    this.requestPass(0);
  }

  /**
   * Stops managing without touching the kernel: cancels timers, waits for
   * connects in flight and disposals under way, saves the last-known config.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.timer.cancel();
    this.#timer = undefined;
    await this.#running;
    await Promise.all(this.#managed.values().map((m) => m.controller.dispose(false)));
    await Promise.all(this.#disposals);
    await this.#save();
  }

  async #pass(): Promise<void> {
    const inputs = this.#inputs;
    if (!inputs || this.#stopped) return;
    const { kernel, log } = this.#deps;
    const reports = new Set<string>();
    const report = (message: string, level: "info" | "warning" = "info") => {
      reports.add(message);
      // Each reason is told once, not at every pass.
      if (!this.#lastReports.has(message)) log[level](message);
    };
    const resolved = await resolveHostNames(
      hostNamesToResolve(inputs.config, inputs.sys),
      inputs.config.ipFamily,
      this.#deps.resolver,
      report,
    );
    const desired = desiredControllers({ ...inputs, resolved }, report);
    this.#lastReports = reports;
    const connections = await kernel.list();
    // stop() came during the awaits: a stopping stacd neither connects nor disconnects.
    if (this.#stopped) return;
    this.#noticeVanished(connections);
    const policy: Policy = {
      scope: inputs.config.disconnectScope,
      trtypes: inputs.config.disconnectTrtypes,
      discoveredKnown: inputs.discovered !== undefined,
      bootConnections: inputs.bootConnections,
    };
    const views = [...this.#managed.values()].map((m) => ({
      key: m.key,
      origin: m.origin,
      excluded: inputs.config.excluded.some((e) =>
        e.invalid === undefined && matchesExclude(m.tid, e.match)
      ),
      transport: m.tid.transport,
      device: m.controller.device,
      matches: (k: KernelController) => this.#matches(m.tid, k),
    }));
    const actions = plan(desired, views, connections, policy, (d, k) => this.#matches(d.tid, k));
    const changed = actions.add.length + actions.dispose.length + actions.audit.length > 0;

    const started: Controller[] = [];
    for (const d of actions.add) {
      started.push(this.#manage(d.key, d.tid, d.origin, this.#spec(d, inputs), d.dlpe).controller);
    }
    for (const a of actions.audit) {
      const tid = tidOfKernel(a.kernel);
      const key = tidKey(tid);
      if (a.disconnect) {
        log.info(
          `${printableTid(tid)} | ${a.kernel.device} - Not wanted (${policy.scope}); disconnecting`,
        );
      }
      const m = this.#manage(key, tid, "audited", this.#restoredSpec(tid));
      m.controller.assumeDevice(a.kernel.device);
      if (a.disconnect) this.#dispose(m, true);
      else started.push(m.controller);
    }
    for (const { key, disconnect } of actions.dispose) {
      const m = this.#managed.get(key);
      if (m) this.#dispose(m, disconnect);
    }
    // Record before connecting: a SIGKILL during a connect must not leave a
    // connection that the restarted stacd does not know it made.
    if (changed) await this.#save();
    if (this.#stopped) return;
    for (const update of actions.update) {
      const m = this.#managed.get(update.key);
      if (!m) continue;
      // While stafd's answer is unknown, a configured controller keeps the
      // log page entry it had: its NCC bit has not been cleared.
      const d = inputs.discovered === undefined && !update.dlpe && m.dlpe
        ? { ...update, dlpe: m.dlpe, ncc: m.controller.spec.ncc }
        : update;
      m.origin = d.origin;
      m.dlpe = d.dlpe;
      m.controller.update(this.#spec(d, inputs));
      if (this.#kickOnNextPass) m.controller.kick();
    }
    this.#kickOnNextPass = false;
    for (const c of started) c.start(connections);
    if (changed) this.#deps.onChange?.();
  }

  /** A connected controller whose device is gone from sysfs missed its udev remove. */
  #noticeVanished(connections: readonly KernelController[]): void {
    const present = new Set(connections.map((k) => k.device));
    for (const m of this.#managed.values()) {
      const device = m.controller.device;
      if (m.controller.connected && device && !present.has(device)) {
        m.controller.deviceRemoved(device);
      }
    }
  }

  #manage(
    key: string,
    tid: TransportId,
    origin: ManagedOrigin,
    spec: ControllerSpec,
    dlpe?: DesiredController["dlpe"],
  ): Managed {
    const { clock, kernel, log } = this.#deps;
    const retry = this.#inputs?.retry ??
      { fastRetryMs: 3000, slowRetryMs: 60000, attemptsOnNcc: 0 };
    const controller = new Controller(spec, {
      clock,
      kernel,
      log,
      retry,
      // A connect or a retry is not a change of the set: the file is
      // written when the set changes and at stop, not on every connect.
      onChange: () => this.#deps.onChange?.(),
    });
    const m: Managed = { key, tid, origin, controller, dlpe };
    this.#managed.set(key, m);
    return m;
  }

  #dispose(m: Managed, disconnect: boolean): void {
    this.#managed.delete(m.key);
    const terminator = this.#terminator;
    const waits = m.controller.state === "connecting";
    if (waits && terminator.waiting++ === 0) terminator.sinceMs = this.#deps.clock.now();
    const done = m.controller.dispose(disconnect).finally(() => {
      this.#disposals.delete(done);
      if (waits) terminator.waiting--;
    });
    this.#disposals.add(done);
  }

  #spec(d: DesiredController, inputs: Inputs): ControllerSpec {
    return {
      id: d.id,
      request: d.request,
      ncc: d.ncc,
      attemptsOnNcc: inputs.config.connectAttemptsOnNcc,
      matches: (k) => this.#matches(d.tid, k),
      refused: d.refused,
    };
  }

  /** A spec for a controller known only by identity (restored, audited): global options, the host key. */
  #restoredSpec(tid: TransportId): ControllerSpec {
    const sys = this.#inputs?.sys ?? { hostNqn: tid.hostNqn, keyFiles: [] };
    return {
      id: printableTid(tid),
      ncc: false,
      matches: (k) => this.#matches(tid, k),
      request: connectRequest(tid, sys, { ...this.#inputs?.config.connection }, {}),
      refused: hostKeyRefusal(sys, undefined),
    };
  }

  #matches(tid: TransportId, k: KernelController): boolean {
    return matchesKernelController(tid, k, this.#deps.ifaceOfAddress);
  }

  #saving: Promise<void> = Promise.resolve();
  #saveQueued = false;

  /**
   * Saves are chained so that the file always ends with the latest set, and
   * coalesced: a burst of changes (32 connects completing) queues one write,
   * which records the state as it is when the write starts.
   */
  #save(): Promise<void> {
    if (this.#saveQueued) return this.#saving;
    this.#saveQueued = true;
    this.#saving = this.#saving.then(() => {
      this.#saveQueued = false;
      const text = encodeLastKnown(
        [...this.#managed.values()].map((m) => ({
          tid: m.tid,
          origin: m.origin,
          device: m.controller.device,
        })),
      );
      return this.#deps.store.save(text);
    }).catch((error) => {
      this.#deps.log.warning(
        `Unable to save last known config ${this.#deps.store.path}: ${(error as Error).message}`,
      );
    });
    return this.#saving;
  }
}

/** The identity of an unmanaged kernel connection, as the audit adopts it. */
function tidOfKernel(k: KernelController): TransportId {
  return makeTid({
    transport: k.transport,
    traddr: k.traddr,
    trsvcid: k.trsvcid,
    subsysnqn: k.subsysnqn,
    hostTraddr: k.hostTraddr ?? "",
    hostIface: k.hostIface ?? "",
    hostNqn: k.hostnqn,
  }, { hostNqn: k.hostnqn });
}
