/**
 * The control loop: the pass is the only writer. The reconciler owns the
 * managed controllers (their devices, attempts and next attempts); events
 * (udev, stafd, reloads, connects that returned, timers) only request a
 * pass, with a reason for the debug log. A pass applies the connects that
 * returned, re-reads the kernel, plans (core/plan.ts), starts connects and
 * disposals, records the set, arms its one timer for the next look and
 * publishes an immutable snapshot. Passes run one at a time; requests
 * during a pass collapse into one more pass.
 */
import type { Clock, Timer } from "../clock.ts";
import type { StacdConfig } from "../config/stacd_conf.ts";
import type { SysConfig } from "../config/sys_conf.ts";
import {
  connectRequest,
  type DesiredController,
  desiredControllers,
  type DiscoveredPage,
  hostKeyRefusal,
  hostNamesToResolve,
} from "../core/desired_set.ts";
import { pairedHost } from "../core/host_id.ts";
import type { Kernel } from "../core/kernel_api.ts";
import type { KernelController } from "../core/kernel_controller.ts";
import { decodeLastKnown, encodeLastKnown, type LastKnownStore } from "./last_known_store.ts";
import type { Logger } from "../logger.ts";
import * as life from "../core/managed_controller.ts";
import type {
  ControllerSpec,
  LogLine,
  ManagedController,
  ManagedOrigin,
  Phase,
  RetryPolicy,
} from "../core/managed_controller.ts";
import { type ManagedView, plan, type Policy } from "../core/plan.ts";
import { resolveHostNames, type Resolver } from "./host_resolver.ts";
import type { TimerState } from "../core/timer_text.ts";
import {
  type IfaceOfAddress,
  makeTid,
  matchesExclude,
  matchesKernelController,
  printableTid,
  tidKey,
  type TransportId,
} from "../core/transport_id.ts";

/** What the snapshot shows of one managed controller; never a key. */
export interface ControllerSnapshot {
  readonly key: string;
  readonly tid: TransportId;
  readonly origin: ManagedOrigin;
  readonly phase: Phase;
  readonly dlpe?: DesiredController["dlpe"];
  readonly ncc: boolean;
  readonly device?: string;
  readonly connected: boolean;
  readonly attempts: number;
  /** The retry timer while it runs; else upstream shows `lastDelayMs` as off. */
  readonly retry?: TimerState;
  readonly lastDelayMs: number;
  /** The kernel's facts about its device, as the pass read them. */
  readonly kernel?: KernelController;
}

/** What a pass saw and decided, published whole after every pass. */
export interface PassSnapshot {
  readonly controllers: readonly ControllerSnapshot[];
  /** Disposals waiting for a connect in flight (upstream's terminator), and since when. */
  readonly terminator: { readonly waiting: number; readonly sinceMs: number };
}

export interface ReconcilerDeps {
  clock: Clock;
  kernel: Kernel;
  log: Logger;
  store: LastKnownStore;
  resolver?: Resolver;
  /** The interface holding a local address (tcp's host-iface rule); none in tests. */
  ifaceOfAddress?: IfaceOfAddress;
  /** Hears every snapshot, once per pass. */
  publish?: (snapshot: PassSnapshot) => void;
  /** A look at the kernel when nothing asked for one: the backstop for lost events. */
  resyncMs: number;
  /** The delay of a pass for a connect returning or a disposal ending; default 0. */
  settleMs?: number;
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

/** How a connect ended: the device it made, or why it failed. */
type Outcome = { device: string } | { error: unknown };

export class Reconciler {
  readonly #deps: ReconcilerDeps;
  readonly #managed = new Map<string, ManagedController>();
  /** Connects in the kernel, by controller; a disposal waits for its controller's. */
  readonly #inFlight = new Map<ManagedController, Promise<Outcome>>();
  /** Connects that returned since the last pass, applied by the next one. */
  #returned: [ManagedController, Outcome][] = [];
  readonly #disposals = new Set<Promise<void>>();
  #inputs: Inputs | undefined;
  /** The earliest pass asked for, and why. */
  #requested: { dueMs: number; reasons: Set<string> } | undefined;
  #timer: { timer: Timer; dueMs: number } | undefined;
  #lastPassMs = 0;
  /** After a failed pass, the next waits this long (clock time). */
  #backoffUntil = 0;
  #terminator = { waiting: 0, sinceMs: 0 };
  #running: Promise<void> | undefined;
  #again = false;
  /** Inputs a reload installed: their first pass retries the controllers that gave up. */
  #kickInputs: Inputs | undefined;
  /** Keys whose disposal waits for a connect in flight: not started again meanwhile. */
  readonly #disposing = new Map<string, number>();
  #stopped = false;
  #lastReports = new Set<string>();
  #kernelFacts = new Map<string, KernelController>();
  #lastDesired: {
    inputs: Inputs;
    desired: ReadonlyMap<string, DesiredController>;
    reports: [string, "info" | "warning" | undefined][];
  } | undefined;
  #snapshot: PassSnapshot = { controllers: [], terminator: { waiting: 0, sinceMs: 0 } };

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
  }

  /** What the latest pass saw and decided. */
  get snapshot(): PassSnapshot {
    return this.#snapshot;
  }

  /**
   * New inputs (config, stafd's pages): a new object per change, never
   * changed in place (the desired set is kept per inputs object). `reload`
   * retries the controllers that gave up, in the first pass on these inputs.
   */
  setInputs(inputs: Readonly<Inputs>, options: { reload?: boolean } = {}): void {
    this.#inputs = inputs;
    if (options.reload) this.#kickInputs = inputs;
  }

  /**
   * Takes back the controllers of the last-known config that still have a
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
      const c = this.#manage(key, entry.tid, entry.origin, this.#restoredSpec(entry.tid));
      this.#write(life.connected(c, existing.device, "Adopted existing connection"));
    }
    if (this.#managed.size > 0) {
      log.info(`Restored ${this.#managed.size} controllers from ${store.path}`);
    }
    this.#kernelFacts = new Map(connections.map((k) => [k.device, k]));
    this.#publish();
  }

  /**
   * Asks for a pass in `delayMs`, for `reason` (told in the debug log).
   * Bursts collapse: a pending pass that is due sooner stays; a later one
   * is brought forward.
   */
  requestPass(delayMs: number, reason: string): void {
    if (this.#stopped) return;
    const dueMs = this.#deps.clock.now() + delayMs;
    const requested = this.#requested ??= { dueMs, reasons: new Set() };
    requested.dueMs = Math.min(requested.dueMs, dueMs);
    // Bounded: a flood of events names a few of them.
    if (requested.reasons.size < 8) requested.reasons.add(reason);
    // The timer is due sooner anyway: nothing to re-arm (10,000 connects
    // returning must not each scan every controller's next attempt).
    if (this.#timer && this.#timer.dueMs <= dueMs) return;
    this.#setTimer(dueMs);
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
          this.#backoffUntil = 0;
        } catch (error) {
          this.#deps.log.error(`Reconcile pass failed: ${(error as Error).stack ?? error}`);
          // Not again at once: a pass that keeps failing must not spin.
          this.#backoffUntil = this.#deps.clock.now() + (this.#inputs?.retry.fastRetryMs ?? 0);
        }
      } while (this.#again && !this.#stopped);
      // Also after a pass that failed: the retries and the resync go on.
      this.#arm();
    })().finally(() => this.#running = undefined);
    return this.#running;
  }

  /**
   * Stops managing without touching the kernel: cancels the timer, waits
   * for the pass, the connects in flight and the disposals under way, and
   * saves the last-known config with the devices those connects made.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.timer.cancel();
    this.#timer = undefined;
    await this.#running;
    await Promise.all(this.#inFlight.values());
    this.#applyReturned();
    await Promise.all(this.#disposals);
    await this.#save();
    this.#publish();
  }

  async #pass(): Promise<void> {
    const inputs = this.#inputs;
    if (!inputs || this.#stopped) return;
    const { clock, kernel, log } = this.#deps;
    const requested = this.#requested;
    const asked = requested !== undefined && requested.dueMs <= clock.now();
    if (asked) this.#requested = undefined;
    log.debug(`Reconcile pass (${asked ? [...requested.reasons].join(", ") : "due"})`);
    // Connects that return later are taken in by the next pass: this one's
    // kernel read must be newer than every outcome it applies.
    this.#applyReturned();

    const reports = new Set<string>();
    const report = (message: string, level: "info" | "warning" = "info") => {
      reports.add(message);
      // Each reason is told once, not at every pass.
      if (!this.#lastReports.has(message)) log[level](message);
    };
    const desired = await this.#desiredSet(inputs, report);
    this.#lastReports = reports;
    const connections = await kernel.list();
    // stop() came during the awaits: a stopping stacd neither connects nor disconnects.
    if (this.#stopped) return;
    const now = clock.now();
    const policy: Policy = {
      scope: inputs.config.disconnectScope,
      trtypes: inputs.config.disconnectTrtypes,
      discoveredKnown: inputs.discovered !== undefined,
      bootConnections: inputs.bootConnections,
    };
    const views: ManagedView[] = [...this.#managed.values()].map((c) => ({
      key: c.key,
      origin: c.origin,
      excluded: inputs.config.excluded.some((e) =>
        e.invalid === undefined && matchesExclude(c.tid, e.match)
      ),
      transport: c.tid.transport,
      device: c.device,
      connected: c.phase === "connected",
      matches: (k: KernelController) => this.#matches(c.tid, k),
    }));
    const actions = plan(desired, views, connections, policy, (d, k) => this.#matches(d.tid, k));
    const changed = actions.add.length + actions.dispose.length + actions.audit.length > 0;

    const leaving = new Set(actions.dispose.map((d) => d.key));
    for (const key of actions.vanished) {
      if (!leaving.has(key)) this.#write(life.removed(this.#managed.get(key)!, inputs.retry, now));
    }
    for (const d of actions.add) {
      this.#manage(d.key, d.tid, d.origin, this.#spec(d, inputs), d.dlpe);
    }
    for (const a of actions.audit) {
      const tid = tidOfKernel(a.kernel);
      if (a.disconnect) {
        log.info(
          `${printableTid(tid)} | ${a.kernel.device} - Not wanted (${policy.scope}); disconnecting`,
        );
      }
      const c = this.#manage(tidKey(tid), tid, "audited", this.#restoredSpec(tid));
      life.assumeDevice(c, a.kernel.device);
      if (a.disconnect) this.#dispose(c, true);
    }
    for (const { key, disconnect } of actions.dispose) {
      const c = this.#managed.get(key);
      if (c) this.#dispose(c, disconnect);
    }
    // Record before connecting: a SIGKILL during a connect must not leave a
    // connection that the restarted stacd does not know it made.
    if (changed) await this.#save();
    if (this.#stopped) return;
    for (const update of actions.update) {
      const c = this.#managed.get(update.key);
      if (!c) continue;
      // While stafd's answer is unknown, a configured controller keeps the
      // log page entry it had: its NCC bit has not been cleared.
      const d = inputs.discovered === undefined && !update.dlpe && c.dlpe
        ? { ...update, dlpe: c.dlpe, ncc: c.spec.ncc }
        : update;
      c.origin = d.origin;
      c.dlpe = d.dlpe;
      life.respecified(c, this.#spec(d, inputs), now);
      if (this.#kickInputs === inputs) life.kicked(c, now);
    }
    if (this.#kickInputs === inputs) this.#kickInputs = undefined;
    for (const c of this.#managed.values()) {
      // A key whose old connect a disposal still waits for is left alone:
      // that connection may be the one it adopts.
      if (life.isDue(c, now) && !this.#disposing.has(c.key)) {
        this.#start(c, connections, inputs.retry, now);
      }
    }
    this.#kernelFacts = new Map(connections.map((k) => [k.device, k]));
    this.#lastPassMs = now;
    this.#publish();
  }

  /**
   * The desired set, with the configured host names resolved, computed
   * again only when the inputs change (a reload, stafd's answer): passes
   * for connects returning, retries, udev events and the resync neither
   * look names up (a DNS hiccup or a round-robin answer must not move a
   * controller) nor pay for 10,000 log page entries. Its reports are told
   * again as if computed, so that "told once" holds.
   */
  async #desiredSet(
    inputs: Inputs,
    report: (message: string, level?: "info" | "warning") => void,
  ): Promise<ReadonlyMap<string, DesiredController>> {
    const last = this.#lastDesired;
    if (last?.inputs === inputs) {
      for (const [message, level] of last.reports) report(message, level);
      return last.desired;
    }
    const reports: [string, "info" | "warning" | undefined][] = [];
    const tell = (message: string, level?: "info" | "warning") => {
      reports.push([message, level]);
      report(message, level);
    };
    const resolved = await resolveHostNames(
      hostNamesToResolve(inputs.config, inputs.sys),
      inputs.config.ipFamily,
      this.#deps.resolver,
      tell,
    );
    const desired = desiredControllers({ ...inputs, resolved }, tell);
    this.#lastDesired = { inputs, desired, reports };
    return desired;
  }

  /** Adopts a matching kernel connection, or connects. */
  #start(
    c: ManagedController,
    connections: readonly KernelController[],
    retry: RetryPolicy,
    now: number,
  ): void {
    const existing = connections.find((k) => this.#matches(c.tid, k));
    if (existing) {
      this.#write(life.connected(c, existing.device, "Adopted existing connection"));
      return;
    }
    const { kernel } = this.#deps;
    if (c.spec.refused) {
      this.#write(life.failed(c, c.spec.refused, retry, now));
      return;
    }
    life.connecting(c);
    let host;
    try {
      // The kernel refuses a host NQN / host ID pair other than the one it has.
      host = pairedHost(c.spec.request.host, connections, kernel.refusesSharedHostId ?? true);
    } catch (error) {
      this.#write(life.failed(c, error, retry, now));
      return;
    }
    const request = host === c.spec.request.host ? c.spec.request : { ...c.spec.request, host };
    const connect = kernel.connect(request).then(
      (device): Outcome => ({ device }),
      (error): Outcome => ({ error }),
    );
    this.#inFlight.set(c, connect);
    void connect.then((outcome) => {
      this.#inFlight.delete(c);
      // A disposed controller's outcome is its disposal's to handle.
      if (this.#managed.get(c.key) !== c) return;
      this.#returned.push([c, outcome]);
      this.requestPass(this.#deps.settleMs ?? 0, `connect of ${c.spec.id} returned`);
    });
  }

  #applyReturned(): void {
    const returned = this.#returned;
    this.#returned = [];
    const now = this.#deps.clock.now();
    for (const [c, outcome] of returned) {
      if (this.#managed.get(c.key) !== c || c.phase !== "connecting") continue;
      this.#write(
        "device" in outcome
          ? life.connected(c, outcome.device, "Connection established!")
          : life.failed(c, outcome.error, this.#inputs!.retry, now),
      );
    }
  }

  /** Arms the one timer for the earliest of: the pass asked for, a retry due, the resync. */
  #arm(): void {
    if (this.#stopped) return;
    const candidates = [
      this.#requested?.dueMs,
      life.nextDue(this.#managed.values()),
      this.#lastPassMs + this.#deps.resyncMs,
    ].filter((t): t is number => t !== undefined);
    const dueMs = Math.max(Math.min(...candidates), this.#backoffUntil);
    if (this.#timer?.dueMs !== dueMs) this.#setTimer(dueMs);
  }

  #setTimer(dueMs: number): void {
    const { clock } = this.#deps;
    this.#timer?.timer.cancel();
    const fire = () => {
      this.#timer = undefined;
      void this.runPass();
    };
    // Due now: the next turn of the event loop, whatever the clock (a fake one included).
    const delayMs = dueMs - clock.now();
    const timer = delayMs > 0 ? clock.after(delayMs, fire) : nextTurn(fire);
    this.#timer = { timer, dueMs };
  }

  #publish(): void {
    const controllers = [...this.#managed.values()].map((c): ControllerSnapshot => {
      const next = c.phase === "waiting" && c.next && c.next.delayMs > 0 ? c.next : undefined;
      const kernel = c.device === undefined ? undefined : this.#kernelFacts.get(c.device);
      return Object.freeze({
        key: c.key,
        tid: c.tid,
        origin: c.origin,
        phase: c.phase,
        dlpe: c.dlpe,
        ncc: c.spec.ncc,
        device: c.device,
        connected: c.phase === "connected",
        attempts: c.attempts,
        retry: next && { delayMs: next.delayMs, dueMs: next.dueMs },
        lastDelayMs: c.lastDelayMs,
        // The pass checked that a connected controller's device is its own.
        kernel: c.phase === "connected" ? kernel : undefined,
      });
    });
    this.#snapshot = Object.freeze({
      controllers: Object.freeze(controllers),
      terminator: Object.freeze({ ...this.#terminator }),
    });
    this.#deps.publish?.(this.#snapshot);
  }

  #write(line: LogLine | undefined): void {
    if (line) this.#deps.log[line.level](line.text);
  }

  #manage(
    key: string,
    tid: TransportId,
    origin: ManagedOrigin,
    spec: ControllerSpec,
    dlpe?: DesiredController["dlpe"],
  ): ManagedController {
    const c = life.newManaged({ key, tid, origin, spec, dlpe }, this.#inputs!.retry);
    this.#managed.set(key, c);
    return c;
  }

  /**
   * Stops managing `c`: waits for its connect in flight (never delete a
   * controller while its connect is still in the kernel), then disconnects
   * its device if told to and the name is still this controller's.
   */
  #dispose(c: ManagedController, disconnect: boolean): void {
    this.#managed.delete(c.key);
    const { clock, log } = this.#deps;
    const terminator = this.#terminator;
    const connect = this.#inFlight.get(c);
    if (connect) {
      if (terminator.waiting++ === 0) terminator.sinceMs = clock.now();
      this.#disposing.set(c.key, (this.#disposing.get(c.key) ?? 0) + 1);
    }
    const done = (async () => {
      const outcome = await connect;
      const device = outcome && "device" in outcome ? outcome.device : c.device;
      if (!disconnect || device === undefined) return;
      if (this.#managed.has(c.key)) {
        // Wanted again meanwhile: its new record adopts the connection.
        log.debug(`${c.spec.id} | ${device} - Wanted again, kept`);
        return;
      }
      await this.#disconnect(c, device);
    })().catch((error) => {
      log.error(`${c.spec.id} | Disposal failed: ${(error as Error).message}`);
    }).finally(() => {
      this.#disposals.delete(done);
      if (!connect) return;
      terminator.waiting--;
      const left = this.#disposing.get(c.key)! - 1;
      if (left > 0) this.#disposing.set(c.key, left);
      else this.#disposing.delete(c.key);
      this.requestPass(this.#deps.settleMs ?? 0, `disposal of ${c.spec.id} done`);
    });
    this.#disposals.add(done);
  }

  /** Disconnects `device` if the name is still this controller's (it may have been reused). */
  async #disconnect(c: ManagedController, device: string): Promise<void> {
    const { kernel, log } = this.#deps;
    const current = await kernel.controller(device);
    if (!current || !this.#matches(c.tid, current)) {
      log.debug(`${c.spec.id} | ${device} - Already gone, nothing to disconnect`);
      return;
    }
    try {
      await kernel.disconnect(device);
      log.info(`${c.spec.id} | ${device} - Disconnected`);
    } catch (error) {
      log.error(`${c.spec.id} | ${device} - Disconnect failed: ${(error as Error).message}`);
    }
  }

  #spec(d: DesiredController, inputs: Inputs): ControllerSpec {
    return {
      id: d.id,
      request: d.request,
      ncc: d.ncc,
      attemptsOnNcc: inputs.config.connectAttemptsOnNcc,
      refused: d.refused,
    };
  }

  /** A spec for a controller known only by identity (restored, audited): global options, the host key. */
  #restoredSpec(tid: TransportId): ControllerSpec {
    const inputs = this.#inputs!;
    return {
      id: printableTid(tid),
      ncc: false,
      attemptsOnNcc: inputs.config.connectAttemptsOnNcc,
      request: connectRequest(tid, inputs.sys, { ...inputs.config.connection }, {}),
      refused: hostKeyRefusal(inputs.sys, undefined),
    };
  }

  #matches(tid: TransportId, k: KernelController): boolean {
    return matchesKernelController(tid, k, this.#deps.ifaceOfAddress);
  }

  #saving: Promise<void> = Promise.resolve();
  #saveQueued = false;

  /**
   * Saves are chained so that the file always ends with the latest set, and
   * coalesced: a burst of changes queues one write, which records the state
   * as it is when the write starts.
   */
  #save(): Promise<void> {
    if (this.#saveQueued) return this.#saving;
    this.#saveQueued = true;
    this.#saving = this.#saving.then(() => {
      this.#saveQueued = false;
      const text = encodeLastKnown(
        [...this.#managed.values()].map((c) => ({
          tid: c.tid,
          origin: c.origin,
          device: c.device,
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

function nextTurn(fire: () => void): Timer {
  const id = setTimeout(fire, 0);
  return { cancel: () => clearTimeout(id) };
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
