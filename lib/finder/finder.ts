/**
 * The finder's control loop (docs/design.md#the-finder), built like stacd's
 * reconciler: the pass is the only writer. The finder owns the discovery
 * controllers (DCs) it manages: configured ones and those referred to by
 * another DC's log page. Events (a reload, udev, a connect or a log page
 * read that returned, timers) only request a pass. A pass applies what
 * returned, computes the desired DCs, re-reads the kernel, disposes of the
 * DCs no longer wanted, adopts or connects the due ones (upstream's 3 s then
 * 60 s retries), starts the log page reads that are due (after a connect,
 * an adoption, a "discovery log changed" AEN, a kernel reconnect, or 20 s
 * after a failed read), saves the pages, arms its one timer and publishes
 * a frozen snapshot.
 *
 * A DC's entries are kept while it reconnects and when a read fails: only
 * removing the DC from the set removes them. A DC never read is "unknown",
 * not empty, until its first read fails or its second connect does.
 */
import type { Clock, Timer } from "../clock.ts";
import type { SysConfig } from "../config/sys_conf.ts";
import type { StafdConfig } from "../config/stafd_conf.ts";
import type { FabricsOptions } from "../core/connect_request.ts";
import {
  type DesiredController,
  desiredControllers,
  type DiscoveredPage,
  type Origin,
} from "../core/desired_set.ts";
import type { DiscoveryLogEntry } from "../core/discovery_log.ts";
import { decodeDiscoveryPage } from "../core/discovery_page.ts";
import type { DiscoveryKernel } from "../core/kernel_api.ts";

export type { DiscoveryKernel } from "../core/kernel_api.ts";
import type { KernelController } from "../core/kernel_controller.ts";
import * as life from "../core/managed_controller.ts";
import type { LogLine, ManagedController, Phase } from "../core/managed_controller.ts";
import type { TimerState } from "../core/timer_text.ts";
import {
  type IfaceOfAddress,
  matchesKernelController,
  type TransportId,
} from "../core/transport_id.ts";
import type { Logger } from "../logger.ts";
import type { UdevEvent } from "../kernel/udev_event.ts";
import { decodePageCache, encodePageCache, type PageCacheEntry } from "./page_cache.ts";
import type { LastKnownStore } from "../daemon/last_known_store.ts";

/** The finder's timings (upstream's, in milliseconds). */
export interface FinderTimers {
  /** Retry after a first failed connect, or after the kernel removed the DC. */
  fastRetryMs: number;
  /** Retry after later failures. */
  slowRetryMs: number;
  /** Retry of a failed log page read. */
  fetchRetryMs: number;
  /** The delay of a pass for something that returned, so that a burst is one pass. */
  settleMs: number;
}

/** Upstream's values. */
export const FINDER_TIMERS: Readonly<FinderTimers> = {
  fastRetryMs: 3_000,
  slowRetryMs: 60_000,
  fetchRetryMs: 20_000,
  settleMs: 500,
};

/** How long stopping waits for connects and disconnects in flight. */
export const STOP_WAIT_MS = 10_000;

/** The pause after a pass that failed (stacd's reconciler's too). */
export const FAILED_PASS_BACKOFF_MS = 3_000;

/** The kernel's "discovery log page changed" asynchronous event, as udev reports it. */
export const AEN_DISCOVERY_LOG_CHANGED = 0x70f002;

/**
 * DCs that referrals may add, over all pages: a target answering with
 * thousands of referrals must not make the host connect thousands of DCs.
 */
export const MAX_REFERRED_DCS = 64;

/**
 * Entries all pages together may hold: about 2.5 MB of get_all_log_pages
 * JSON, far below what stacd reads whole (16 MiB), and still 8 full arrays
 * of 1,000 subsystems. A page that would go over is refused.
 */
export const MAX_TOTAL_ENTRIES = 8192;

/** What the configuration says: the finder's input. */
export interface FinderInputs {
  config: StafdConfig;
  sys: SysConfig;
  /** Host name -> address for the configured DCs' names. */
  resolved: ReadonlyMap<string, string>;
}

/** What a snapshot shows of one DC; never a key. */
export interface DcSnapshot {
  readonly key: string;
  readonly id: string;
  readonly tid: TransportId;
  readonly origin: Origin;
  readonly phase: Phase;
  readonly device?: string;
  readonly attempts: number;
  readonly retry?: TimerState;
  readonly lastDelayMs: number;
  /** The last page read; undefined while never read. */
  readonly entries?: readonly DiscoveryLogEntry[];
  /**
   * False while a DC never read may still answer (unknown, not empty): until
   * its first read fails or its second connect does. After that, a DC that
   * does not answer counts as listing nothing, so that one dead DC cannot
   * hold up what the others discover.
   */
  readonly known: boolean;
  /** Failed reads since the last good one, and the last one's reason. */
  readonly fetchFailures: number;
  readonly fetchError?: string;
  readonly kernel?: KernelController;
}

export interface FinderSnapshot {
  readonly dcs: readonly DcSnapshot[];
}

export interface FinderDeps {
  clock: Clock;
  kernel: DiscoveryKernel;
  log: Logger;
  timers: FinderTimers;
  /** The page cache (last-known config): a restart serves the pages at once. */
  store?: LastKnownStore;
  ifaceOfAddress?: IfaceOfAddress;
  publish?: (snapshot: FinderSnapshot) => void;
  /** A DC's page was read, changed or not (upstream's log_pages_changed). */
  onPageRead?: (dc: DcSnapshot) => void;
  /** DCs left the set (upstream's dc_removed). */
  onRemoved?: () => void;
}

/** A DC the finder manages: a managed controller (core/managed_controller.ts) and its page. */
interface Dc extends ManagedController {
  /** Frozen: replaced whole by a read, never changed in place (snapshots share it). */
  entries?: readonly DiscoveryLogEntry[];
  fetch: { inFlight: boolean; dueMs?: number; failures: number; error?: string };
}

type Outcome = { device: string } | { error: unknown };
type Read = { entries: DiscoveryLogEntry[]; problems: string[] } | { error: unknown };

/**
 * Options a discovery connection takes: no I/O queue and no DH-HMAC-CHAP
 * key (upstream's libnvme sends none to a DC either).
 */
const DC_OPTIONS = [
  "hdrDigest",
  "dataDigest",
  "kato",
  "reconnectDelay",
  "ctrlLossTmo",
  "disableSqflow",
] as const;

export class Finder {
  readonly #deps: FinderDeps;
  readonly #dcs = new Map<string, Dc>();
  readonly #inFlight = new Map<Dc, Promise<Outcome>>();
  #returned: [Dc, Outcome][] = [];
  #read: [Dc, string, Read][] = [];
  /** Devices whose page udev said changed (AEN) or that the kernel reconnected. */
  readonly #reread = new Set<string>();
  readonly #disposing = new Map<string, Promise<void>>();
  /** The DCs being disposed of, until their disconnect is done. */
  readonly #leaving = new Set<Dc>();
  #inputs: FinderInputs | undefined;
  #requested: { dueMs: number; reasons: Set<string> } | undefined;
  #timer: { timer: Timer; dueMs: number } | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  /** The desired set's reports of the last pass: each is logged when it first appears. */
  #reported = new Set<string>();
  /** The cache's content changed since it was saved (a page read, a DC gone). */
  #unsaved = false;
  /** A reload asked the DCs that gave up to try again. */
  #kick = false;
  /** After a failed pass, the next waits until then (clock time). */
  #backoffUntil = 0;
  /** What a pass has to tell (page reads, DCs gone): told once its snapshot is published. */
  #events: (() => void)[] = [];

  constructor(deps: FinderDeps) {
    this.#deps = deps;
  }

  /** Loads the page cache, then runs the first pass with `inputs`. */
  async start(inputs: FinderInputs): Promise<void> {
    this.#inputs = inputs;
    const text = await this.#deps.store?.load().catch((error) => {
      this.#deps.log.warning(`Cannot read the page cache: ${(error as Error).message}`);
      return undefined;
    });
    if (text) this.#restore(decodePageCache(text));
    await this.runPass();
  }

  /** A reload: new inputs, applied by the next pass. */
  setInputs(inputs: FinderInputs): void {
    this.#inputs = inputs;
    // Upstream re-reads every connected DC's page on a reload; one that gave up tries again.
    for (const dc of this.#dcs.values()) if (dc.device) this.#reread.add(dc.device);
    this.#kick = true;
    this.requestPass(0, "reload");
  }

  /** A udev event of the nvme subsystem. */
  udevEvent(event: UdevEvent): void {
    if (event.action === "overflow") {
      // An AEN may be among the events lost: every page is read again.
      for (const dc of this.#dcs.values()) if (dc.device) this.#reread.add(dc.device);
      this.requestPass(this.#deps.timers.settleMs, "udev events lost");
      return;
    }
    const device = event.sysname;
    if (event.action === "change") {
      const aen = Number.parseInt(event.properties.NVME_AEN ?? "", 16);
      const kernelEvent = event.properties.NVME_EVENT;
      const reconnected = kernelEvent === "connected" || kernelEvent === "rediscover";
      if (aen !== AEN_DISCOVERY_LOG_CHANGED && !reconnected) return;
      if (![...this.#dcs.values()].some((dc) => dc.device === device)) return;
      this.#deps.log.info(
        `${device} - ${
          reconnected ? `Kernel event: ${kernelEvent}` : "Discovery log page changed (AEN)"
        }`,
      );
      this.#reread.add(device);
      this.requestPass(0, `udev change of ${device}`);
    } else if (event.action === "remove") {
      this.requestPass(this.#deps.timers.settleMs, `udev remove of ${device}`);
    }
  }

  /** Asks for a pass in `delayMs` (the earliest request wins); `reason` goes to the debug log. */
  requestPass(delayMs: number, reason: string): void {
    if (this.#stopped) return;
    const dueMs = this.#deps.clock.now() + delayMs;
    const r = this.#requested ??= { dueMs, reasons: new Set() };
    r.dueMs = Math.min(r.dueMs, dueMs);
    if (r.reasons.size < 8) r.reasons.add(reason);
    if (!this.#running) this.#arm();
  }

  /** Runs a pass now (or once more after the one running). */
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
          // As the reconciler: the next pass comes after a pause (a failing
          // sysfs read must not spin), whatever asked for one meanwhile.
          this.#deps.log.error(`Finder pass failed: ${(error as Error).message}`);
          this.#backoffUntil = this.#deps.clock.now() + FAILED_PASS_BACKOFF_MS;
          this.requestPass(FAILED_PASS_BACKOFF_MS, "retry after a failed pass");
          this.#events = [];
        }
      } while (this.#again && !this.#stopped);
      this.#running = undefined;
      this.#arm();
    })();
    return this.#running;
  }

  /**
   * Stops: no more passes; waits for connects in flight; disconnects every
   * DC when `disconnect` (persistent-connections = false), else keeps them.
   */
  async stop(options: { disconnect: boolean }): Promise<void> {
    this.#stopped = true;
    this.#timer?.timer.cancel();
    await this.#running;
    // A connect to a dead DC can take minutes: stopping waits a bounded time.
    const waited = Promise.allSettled([...this.#inFlight.values(), ...this.#disposing.values()]);
    let timer: Timer | undefined;
    await Promise.race([
      waited,
      new Promise((r) => timer = this.#deps.clock.after(STOP_WAIT_MS, () => r(undefined))),
    ]);
    timer?.cancel();
    for (const [dc, outcome] of this.#returned) {
      if ("device" in outcome) dc.device = outcome.device;
    }
    await this.#save();
    if (!options.disconnect) return;
    for (const dc of this.#dcs.values()) {
      if (dc.device) await this.#disconnect(dc, dc.device);
    }
  }

  async #pass(): Promise<void> {
    const { clock, kernel, log } = this.#deps;
    const inputs = this.#inputs;
    if (!inputs) return;
    const reasons = this.#requested ? [...this.#requested.reasons].join(", ") : "timer";
    this.#requested = undefined;
    log.debug(`Finder pass (${reasons})`);
    const now = clock.now();
    this.#applyReturned(now);
    this.#applyRead(now);

    const desired = this.#desired(inputs);
    const list = await kernel.list();
    const byDevice = new Map(list.map((k) => [k.device, k]));
    const matches = (dc: Dc, k: KernelController) =>
      matchesKernelController(dc.tid, k, this.#deps.ifaceOfAddress, "discovery");
    for (const dc of this.#dcs.values()) {
      if (dc.phase !== "connected" || dc.device === undefined) continue;
      const k = byDevice.get(dc.device);
      if (!k || !matches(dc, k)) this.#write(life.removed(dc, this.#retry, now));
    }

    let removed = 0;
    for (const dc of [...this.#dcs.values()]) {
      if (desired.has(dc.key)) continue;
      this.#dcs.delete(dc.key);
      this.#dispose(dc);
      this.#unsaved ||= dc.entries !== undefined;
      removed++;
    }
    if (removed > 0) this.#events.push(() => this.#deps.onRemoved?.());

    for (const d of desired.values()) {
      const dc = this.#dcs.get(d.key);
      if (dc) {
        life.respecified(dc, this.#spec(d), now);
        dc.origin = d.origin;
      } else if (!this.#disposing.has(d.key)) {
        this.#dcs.set(d.key, this.#newDc(d));
      }
    }

    // A device in use, or about to be disconnected by a disposal, is nobody's to adopt.
    if (this.#kick) {
      for (const dc of this.#dcs.values()) life.kicked(dc, now);
      this.#kick = false;
    }
    const held = new Set(
      [...this.#dcs.values(), ...this.#leaving].map((dc) => dc.device).filter(Boolean),
    );
    for (const dc of this.#dcs.values()) {
      if (!life.isDue(dc, now)) continue;
      const k = list.find((k) => !held.has(k.device) && matches(dc, k));
      if (k) {
        held.add(k.device);
        this.#write(life.connected(dc, k.device, "Adopted existing connection"));
        dc.fetch.dueMs = now;
      } else {
        this.#connect(dc);
      }
    }
    for (const dc of this.#dcs.values()) {
      if (dc.device && this.#reread.delete(dc.device)) dc.fetch.dueMs = now;
      const { dueMs, inFlight } = dc.fetch;
      if (dc.device && !inFlight && dueMs !== undefined && dueMs <= now) this.#fetch(dc, dc.device);
    }
    this.#reread.clear();
    await this.#save();
    this.#publish(byDevice);
    // Told after the snapshot is out: a listener reading the pages must see these.
    const events = this.#events;
    this.#events = [];
    for (const tell of events) tell();
  }

  get #retry(): life.RetryPolicy {
    return this.#deps.timers;
  }

  /** Configured DCs and the referrals of every page read, at most MAX_REFERRED_DCS of those. */
  #desired(inputs: FinderInputs): Map<string, DesiredController> {
    const pages: DiscoveredPage[] = [...this.#dcs.values()].flatMap((dc) =>
      dc.entries
        ? [{
          hostTraddr: dc.tid.hostTraddr,
          hostIface: dc.tid.hostIface,
          hostNqn: dc.tid.hostNqn,
          entries: dc.entries,
        }]
        : []
    );
    const reports: string[] = [];
    const desired = desiredControllers(
      { ...inputs, discovered: pages },
      (message) => reports.push(message),
      "discovery",
    );
    let referred = 0;
    for (const [key, d] of desired) {
      if (d.origin === "referral" && ++referred > MAX_REFERRED_DCS) desired.delete(key);
    }
    if (referred > MAX_REFERRED_DCS) {
      reports.push(`${referred} referred discovery controllers: only ${MAX_REFERRED_DCS} are used`);
    }
    const now = new Set(reports);
    for (const line of now) if (!this.#reported.has(line)) this.#deps.log.info(line);
    this.#reported = now;
    return desired;
  }

  /**
   * How to connect a DC: its request without keys, with the DC options and
   * the discovery flag (a unique TP8013 NQN must be named a DC). Nothing
   * about keys can refuse it: none is sent.
   */
  #spec(d: DesiredController): life.ControllerSpec {
    const options: FabricsOptions = { discovery: true };
    for (const name of DC_OPTIONS) {
      const value = d.request.options?.[name];
      if (value !== undefined) (options as Record<string, unknown>)[name] = value;
    }
    const { dhchapKey: _key, ...host } = d.request.host;
    return {
      id: d.id,
      request: { ...d.request, host, options },
      ncc: false,
      attemptsOnNcc: 0,
    };
  }

  #newDc(d: DesiredController): Dc {
    const managed = life.newManaged(
      { key: d.key, tid: d.tid, origin: d.origin, spec: this.#spec(d) },
      this.#retry,
    );
    return { ...managed, fetch: { inFlight: false, failures: 0 } };
  }

  #connect(dc: Dc): void {
    life.connecting(dc);
    const request = dc.spec.refused
      ? Promise.reject(dc.spec.refused)
      : this.#deps.kernel.connect(dc.spec.request);
    const outcome = request.then(
      (device): Outcome => ({ device }),
      (error): Outcome => ({ error }),
    );
    this.#inFlight.set(dc, outcome);
    void outcome.then((o) => {
      this.#inFlight.delete(dc);
      this.#returned.push([dc, o]);
      this.requestPass(0, `connect of ${dc.spec.id} returned`);
    });
  }

  #applyReturned(now: number): void {
    const returned = this.#returned;
    this.#returned = [];
    for (const [dc, outcome] of returned) {
      if (this.#dcs.get(dc.key) !== dc || dc.phase !== "connecting") {
        // Disposed while connecting: #dispose() takes the device down.
        continue;
      }
      if ("device" in outcome) {
        this.#write(life.connected(dc, outcome.device, "Connection established!"));
        dc.fetch.dueMs = now;
      } else {
        this.#write(life.failed(dc, outcome.error, this.#retry, now));
      }
    }
  }

  #fetch(dc: Dc, device: string): void {
    dc.fetch.inFlight = true;
    dc.fetch.dueMs = undefined;
    void this.#deps.kernel.discoveryLog(device)
      .then((bytes): Read => {
        const page = decodeDiscoveryPage(bytes);
        // Upstream drops entries without an address the host could use.
        const entries = page.entries.filter((e) => !["", "0.0.0.0", "::"].includes(e.traddr));
        return { entries, problems: page.problems };
      })
      .catch((error): Read => ({ error }))
      .then((read) => {
        this.#read.push([dc, device, read]);
        this.requestPass(0, `log page of ${device} read`);
      });
  }

  #applyRead(now: number): void {
    const read = this.#read;
    this.#read = [];
    for (const [dc, device, result] of read) {
      dc.fetch.inFlight = false;
      if (this.#dcs.get(dc.key) !== dc || dc.device !== device) continue;
      const { log } = this.#deps;
      if ("error" in result) {
        const reason = result.error instanceof Error ? result.error.message : String(result.error);
        dc.fetch.failures++;
        dc.fetch.error = reason;
        dc.fetch.dueMs ??= now + this.#deps.timers.fetchRetryMs;
        const say = dc.fetch.failures === 1 ? log.error : log.debug;
        say(`${dc.spec.id} | ${device} - Failed to retrieve log pages (${reason}); entries kept`);
        continue;
      }
      const others = [...this.#dcs.values()].reduce(
        (sum, other) => sum + (other === dc ? 0 : other.entries?.length ?? 0),
        0,
      );
      if (others + result.entries.length > MAX_TOTAL_ENTRIES) {
        // What stacd could no longer read whole: this page is refused, what was known stays.
        const why = `the pages would hold ${others + result.entries.length} entries, ` +
          `more than ${MAX_TOTAL_ENTRIES}`;
        dc.fetch.failures++;
        dc.fetch.error = why;
        if (dc.fetch.failures === 1) log.error(`${dc.spec.id} | ${device} - Page refused: ${why}`);
        continue;
      }
      for (const problem of result.problems) log.warning(`${dc.spec.id} | ${device} - ${problem}`);
      dc.fetch.failures = 0;
      dc.fetch.error = undefined;
      const before = dc.entries?.length;
      if (!sameEntries(dc.entries, result.entries)) this.#unsaved = true;
      dc.entries = Object.freeze(result.entries);
      log.debug(
        `${dc.spec.id} | ${device} - Log page read: ${result.entries.length} entries` +
          (before === undefined ? "" : ` (was ${before})`),
      );
      const snapshot = this.#snapshotOf(dc, undefined);
      this.#events.push(() => this.#deps.onPageRead?.(snapshot));
    }
  }

  /** Takes a DC out: waits for its connect in flight, then disconnects its device. */
  #dispose(dc: Dc): void {
    const what = dc.device || this.#inFlight.has(dc) ? "disconnecting" : "dropped";
    this.#deps.log.info(`${dc.spec.id} | ${dc.device ?? "nvme?"} - No longer wanted: ${what}`);
    const inFlight = this.#inFlight.get(dc);
    this.#leaving.add(dc);
    const done = (async () => {
      const outcome = await inFlight;
      const device = outcome && "device" in outcome ? outcome.device : dc.device;
      if (device) await this.#disconnect(dc, device);
    })().finally(() => {
      this.#leaving.delete(dc);
      this.#disposing.delete(dc.key);
      this.requestPass(this.#deps.timers.settleMs, `disposal of ${dc.spec.id} ended`);
    });
    this.#disposing.set(dc.key, done);
  }

  /** Deletes `device` if it is still this DC's: the name may belong to another controller by now. */
  async #disconnect(dc: Dc, device: string): Promise<void> {
    try {
      const k = await this.#deps.kernel.controller(device);
      const ours = k !== undefined &&
        matchesKernelController(dc.tid, k, this.#deps.ifaceOfAddress, "discovery");
      if (!ours) return void this.#deps.log.debug(`${dc.spec.id} | ${device} - Gone already`);
      await this.#deps.kernel.disconnect(device);
      this.#deps.log.info(`${dc.spec.id} | ${device} - Disconnected`);
    } catch (error) {
      this.#deps.log.error(
        `${dc.spec.id} | ${device} - Disconnect failed: ${(error as Error).message}`,
      );
    }
  }

  #restore(cache: { entries: PageCacheEntry[]; dropped: number }): void {
    if (cache.dropped > 0) {
      this.#deps.log.warning(`Page cache: ${cache.dropped} unreadable entries dropped`);
    }
    // Cached DCs come back with their pages. The first pass gives the ones
    // still wanted their spec (before anything connects) and drops the others.
    for (const e of cache.entries) {
      const spec = {
        id: e.id,
        request: { target: e.tid, host: { hostnqn: e.tid.hostNqn, hostid: "" } },
      };
      const dc = this.#newDc({ ...e, ...spec, ncc: false });
      dc.entries = Object.freeze(e.entries);
      this.#dcs.set(e.key, dc);
    }
  }

  #cacheEntries(): PageCacheEntry[] {
    return [...this.#dcs.values()].flatMap((dc) =>
      dc.entries
        ? [{
          key: dc.key,
          id: dc.spec.id,
          tid: dc.tid,
          origin: dc.origin as Origin,
          entries: dc.entries,
        }]
        : []
    );
  }

  /** Saves the cache when its content changed: encoding it costs as much as the pages are big. */
  async #save(): Promise<void> {
    const store = this.#deps.store;
    if (!store || !this.#unsaved) return;
    try {
      await store.save(encodePageCache(this.#cacheEntries()));
      this.#unsaved = false;
    } catch (error) {
      this.#deps.log.warning(`Cannot save the page cache: ${(error as Error).message}`);
    }
  }

  #write(line: LogLine): void {
    this.#deps.log[line.level](line.text);
  }

  #arm(): void {
    if (this.#stopped) return;
    const fetchDue = [...this.#dcs.values()].flatMap((dc) =>
      dc.device && !dc.fetch.inFlight && dc.fetch.dueMs !== undefined ? [dc.fetch.dueMs] : []
    );
    const candidates = [this.#requested?.dueMs, life.nextDue(this.#dcs.values()), ...fetchDue]
      .filter((t): t is number => t !== undefined);
    if (candidates.length === 0) {
      this.#timer?.timer.cancel();
      this.#timer = undefined;
      return;
    }
    const dueMs = Math.max(Math.min(...candidates), this.#backoffUntil);
    if (this.#timer?.dueMs === dueMs) return;
    this.#timer?.timer.cancel();
    const fire = () => {
      this.#timer = undefined;
      void this.runPass();
    };
    const delayMs = dueMs - this.#deps.clock.now();
    const timer = delayMs > 0 ? this.#deps.clock.after(delayMs, fire) : nextTurn(fire);
    this.#timer = { timer, dueMs };
  }

  #snapshotOf(dc: Dc, kernel: KernelController | undefined): DcSnapshot {
    const next = dc.phase === "waiting" && dc.next && dc.next.delayMs > 0 ? dc.next : undefined;
    return Object.freeze({
      key: dc.key,
      id: dc.spec.id,
      tid: dc.tid,
      origin: dc.origin as Origin,
      phase: dc.phase,
      device: dc.device,
      attempts: dc.attempts,
      retry: next && { delayMs: next.delayMs, dueMs: next.dueMs },
      lastDelayMs: dc.lastDelayMs,
      entries: dc.entries,
      known: dc.entries !== undefined || dc.fetch.failures > 0 || dc.phase === "given-up" ||
        (dc.phase === "waiting" && dc.attempts >= 2),
      fetchFailures: dc.fetch.failures,
      fetchError: dc.fetch.error,
      kernel,
    });
  }

  #publish(byDevice: ReadonlyMap<string, KernelController>): void {
    const dcs = [...this.#dcs.values()].map((dc) =>
      this.#snapshotOf(dc, dc.device === undefined ? undefined : byDevice.get(dc.device))
    );
    this.#deps.publish?.(Object.freeze({ dcs: Object.freeze(dcs) }));
  }
}

function sameEntries(a: readonly DiscoveryLogEntry[] | undefined, b: readonly DiscoveryLogEntry[]) {
  return a !== undefined && a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}

function nextTurn(fire: () => void): Timer {
  const id = setTimeout(fire, 0);
  return { cancel: () => clearTimeout(id) };
}
