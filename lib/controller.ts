/**
 * One I/O controller's life (contract 6): connect, with the host ID the
 * kernel pairs with its host NQN (see host_id.ts), or adopt an existing
 * kernel connection; retry on failure (3 s, then every 60 s), stop after N
 * attempts when the subsystem is Not Connected to the CDC, give up at once
 * on a connect that must not be made (fail closed), retry after the
 * kernel removed the device, and disconnect only when told to, never while
 * a connect is still in flight.
 */
import type { Clock, Timer } from "./clock.ts";
import type { ConnectRequest } from "./fabrics_options.ts";
import { pairedHost } from "./host_id.ts";
import type { KernelController } from "./kernel_controller.ts";
import type { Logger } from "./logger.ts";
import { timerText } from "./timer_text.ts";

/** The side effects a controller needs from the kernel (real: libnvme + sysfs; tests: a fake). */
export interface Kernel {
  /** The fabrics controllers the kernel has now. */
  list(): Promise<KernelController[]>;
  /** One of them, read alone (cheaper than list() with many); undefined if it is gone. */
  controller(device: string): Promise<KernelController | undefined>;
  /**
   * Connects; resolves with the device name (nvmeX). Rejects with
   * {@linkcode ConnectRefusedError} when the connect must not be made at all.
   */
  connect(request: ConnectRequest): Promise<string>;
  /** Deletes the kernel controller `device`. */
  disconnect(device: string): Promise<void>;
  /** Whether a connect with a host ID paired with another host NQN fails (6.5+); default true. */
  readonly refusesSharedHostId?: boolean;
}

/**
 * A connect that must not be made (fail closed, contract 6): retrying cannot
 * help until the configuration or the kernel changes. `setting` is the
 * config option concerned; the message never holds a key.
 */
export class ConnectRefusedError extends Error {
  constructor(readonly setting: string, message: string) {
    super(message);
    this.name = "ConnectRefusedError";
  }
}

/** Retry timing (contract 6); tests shorten it through STACD_TEST_TIMER_SCALE. */
export interface RetryPolicy {
  fastRetryMs: number;
  slowRetryMs: number;
  /** connect-attempts-on-ncc: 0 = never stop. */
  attemptsOnNcc: number;
}

export const UPSTREAM_RETRY: RetryPolicy = {
  fastRetryMs: 3_000,
  slowRetryMs: 60_000,
  attemptsOnNcc: 0,
};

export interface ControllerDeps {
  clock: Clock;
  kernel: Kernel;
  log: Logger;
  retry: RetryPolicy;
  /** Called when the device or connection state changed (for persistence, D-Bus). */
  onChange?: (controller: Controller) => void;
}

export interface ControllerSpec {
  /** Printable id, e.g. `(tcp, 10.0.0.1, 4420, nqn.x)`. */
  id: string;
  request: ConnectRequest;
  /** Whether an existing kernel connection is this controller (contract 5's match rules). */
  matches: (kernel: KernelController) => boolean;
  /** The log page entry's NCC bit, when the controller was discovered. */
  ncc: boolean;
  /** connect-attempts-on-ncc as configured now (0 = never stop); else the retry policy's. */
  attemptsOnNcc?: number;
  /**
   * Why this controller must not be connected (e.g. the host key it would
   * use is malformed); an existing kernel connection is still adopted.
   */
  refused?: ConnectRefusedError;
}

export type ControllerState =
  | "idle"
  | "connecting"
  | "connected"
  | "retry-wait"
  | "given-up"
  | "disposed";

export class Controller {
  #spec: ControllerSpec;
  readonly #deps: ControllerDeps;
  #state: ControllerState = "idle";
  #device: string | undefined;
  #attempts = 0;
  #retry: { timer: Timer; dueMs: number; delayMs: number } | undefined;
  #inFlight: Promise<void> | undefined;
  /** Upstream's timer is made with the slow period and shows it until a failure changes it. */
  #lastDelayMs: number;
  /**
   * Devices udev removed while this controller looked or connected (its own
   * may be one), or "unknown" when udev events were lost meanwhile.
   */
  #removedMeanwhile: Set<string> | "unknown" | undefined;

  constructor(spec: ControllerSpec, deps: ControllerDeps) {
    this.#spec = spec;
    this.#deps = deps;
    this.#lastDelayMs = deps.retry.slowRetryMs;
  }

  get id(): string {
    return this.#spec.id;
  }
  get spec(): ControllerSpec {
    return this.#spec;
  }
  get state(): ControllerState {
    return this.#state;
  }
  get device(): string | undefined {
    return this.#device;
  }
  get connected(): boolean {
    return this.#state === "connected";
  }
  get attempts(): number {
    return this.#attempts;
  }
  /** `60.0s [off]` / `3.0s [2.5s]` (seconds left), as upstream's `retry connect timer`. */
  get retryTimerText(): string {
    const retry = this.#retry;
    if (!retry) return timerText(this.#lastDelayMs);
    return timerText(retry.delayMs, retry.dueMs - this.#deps.clock.now());
  }

  /** Takes over `device`, a kernel connection found to be this controller (audit). */
  assumeDevice(device: string): void {
    if (this.#state !== "idle") return;
    this.#device = device;
    this.#state = "connected";
  }

  /**
   * Adopts a matching kernel connection, or connects. `snapshot` is the
   * kernel's state the caller just read: with it, N controllers started by
   * one pass do not each re-read sysfs (N x N attribute reads).
   */
  start(snapshot?: readonly KernelController[]): void {
    if (this.#state !== "idle") return;
    this.#run(snapshot);
  }

  /**
   * A new spec for the same identity (reload, new log page). Connection
   * parameters apply to the next connect only; a cleared NCC bit resets the
   * attempt count and retries at once.
   */
  update(spec: ControllerSpec): void {
    const nccCleared = this.#spec.ncc && !spec.ncc;
    this.#spec = spec;
    if (nccCleared && (this.#state === "given-up" || this.#state === "retry-wait")) {
      this.#attempts = 0;
      this.#retryNow();
    }
  }

  /**
   * Reload: a controller that is not connected and has no retry pending is
   * retried at once. Its attempt count stays (as upstream's): only a log
   * page clearing NCC, a connection or a udev remove resets it, so a
   * reload gives a controller that gave up one more attempt, not N more.
   */
  kick(): void {
    if (this.#state === "given-up" || this.#state === "idle") this.#retryNow();
  }

  /**
   * The kernel removed our device (udev remove): forget it and reconnect in
   * 3 s. While a connect is in flight the device's name is not known yet:
   * the removal is kept, and checked once the connect says which device is ours.
   */
  deviceRemoved(device: string): void {
    if (this.#state === "connecting") {
      const meanwhile = this.#removedMeanwhile ?? new Set<string>();
      if (meanwhile !== "unknown") this.#removedMeanwhile = meanwhile.add(device);
      return;
    }
    if (device !== this.#device || this.#state === "disposed") return;
    this.#deps.log.info(`${this.id} | ${device} - Controller removed by the kernel, retrying`);
    this.#device = undefined;
    this.#attempts = 0;
    this.#state = "retry-wait";
    this.#schedule(this.#deps.retry.fastRetryMs);
    this.#deps.onChange?.(this);
  }

  /** udev events were lost: a connect in flight checks its device in sysfs once it returns. */
  eventsLost(): void {
    if (this.#state === "connecting") this.#removedMeanwhile = "unknown";
  }

  /**
   * Stops managing: cancels retries, waits for an in-flight connect, then
   * disconnects the kernel controller only if `disconnect` is true.
   */
  async dispose(disconnect: boolean): Promise<void> {
    if (this.#state === "disposed") return;
    this.#cancelRetry();
    this.#state = "disposed";
    // Never delete a controller while its connect is still in the kernel.
    await this.#inFlight;
    const device = this.#device;
    if (!disconnect || device === undefined) return;
    const { kernel, log } = this.#deps;
    // The name nvmeX may have been reused by another connection since.
    const current = await kernel.controller(device);
    if (!current || !this.#spec.matches(current)) {
      log.debug(`${this.id} | ${device} - Already gone, nothing to disconnect`);
      return;
    }
    try {
      await kernel.disconnect(device);
      log.info(`${this.id} | ${device} - Disconnected`);
    } catch (error) {
      log.error(`${this.id} | ${device} - Disconnect failed: ${message(error)}`);
    }
  }

  /** A method, not a comparison, because dispose() can change the state across an await. */
  #isDisposed(): boolean {
    return this.#state === "disposed";
  }

  #retryNow(): void {
    this.#cancelRetry();
    this.#run();
  }

  #run(snapshot?: readonly KernelController[]): void {
    if (this.#inFlight || this.#state === "disposed") return;
    this.#state = "connecting";
    this.#inFlight = this.#attempt(snapshot).finally(() => this.#inFlight = undefined);
  }

  async #attempt(snapshot?: readonly KernelController[]): Promise<void> {
    const { kernel } = this.#deps;
    this.#removedMeanwhile = undefined;
    try {
      const connections = snapshot ?? await kernel.list();
      const existing = connections.find((k) => this.#spec.matches(k));
      if (this.#isDisposed()) {
        // Disposed while looking: leave the connection found for dispose() to decide on.
        if (existing) this.#device = existing.device;
        return;
      }
      if (existing) {
        this.#connected(existing.device, "Adopted existing connection");
      } else {
        if (this.#spec.refused) throw this.#spec.refused;
        this.#attempts++;
        const { request } = this.#spec;
        // The kernel refuses a host NQN / host ID pair other than the one it has.
        const host = pairedHost(request.host, connections, kernel.refusesSharedHostId ?? true);
        const device = await kernel.connect(host === request.host ? request : { ...request, host });
        if (this.#isDisposed()) {
          // Disposed while connecting: keep the device so dispose() can decide.
          this.#device = device;
          return;
        }
        this.#connected(device, "Connection established!");
      }
    } catch (error) {
      if (this.#isDisposed()) return;
      this.#failed(error);
      return;
    }
    await this.#confirmNotRemoved();
  }

  /**
   * A removal of our device's name (or a loss of udev events) came while we
   * did not know the name yet (the kernel can take a controller away before
   * its connect returns): sysfs says whether our device is still there, or
   * the removal was of an older device whose name ours reused.
   * Removals from now on reach deviceRemoved() as for any connected controller.
   */
  async #confirmNotRemoved(): Promise<void> {
    const device = this.#device;
    const meanwhile = this.#removedMeanwhile;
    const removed = device !== undefined &&
      (meanwhile === "unknown" || meanwhile?.has(device) === true);
    this.#removedMeanwhile = undefined;
    if (!removed) return;
    const current = await this.#deps.kernel.controller(device).catch(() => undefined);
    if (this.#device !== device || this.#state !== "connected") return;
    if (!current || !this.#spec.matches(current)) this.deviceRemoved(device);
  }

  #connected(device: string, what: string): void {
    this.#device = device;
    this.#attempts = 0;
    this.#state = "connected";
    this.#deps.log.info(`${this.id} | ${device} - ${what}`);
    this.#deps.onChange?.(this);
  }

  #failed(error: unknown): void {
    const { log, retry } = this.#deps;
    const reason = message(error);
    if (error instanceof ConnectRefusedError) {
      // Not retried: one error, then nothing until a reload or a new spec.
      log.error(`${this.id} | nvme? - Not connected: ${reason}`);
      this.#state = "given-up";
      this.#deps.onChange?.(this);
      return;
    }
    const limit = this.#spec.attemptsOnNcc ?? retry.attemptsOnNcc;
    if (this.#spec.ncc && limit > 0 && this.#attempts >= limit) {
      log.info(
        `${this.id} | nvme? - Connect failed (${reason}); NCC set, giving up after ${this.#attempts} attempts`,
      );
      this.#state = "given-up";
      this.#deps.onChange?.(this);
      return;
    }
    if (this.#attempts === 1) {
      log.debug(
        `${this.id} | nvme? - Connect failed (${reason}), retrying in ${retry.fastRetryMs / 1000}s`,
      );
      this.#schedule(retry.fastRetryMs);
    } else {
      // Only the second failure is worth an operator's attention; later ones
      // would flood the log when many controllers are unreachable.
      const report = this.#attempts === 2 ? log.error : log.debug;
      report(
        `${this.id} | nvme? - Connect failed (${reason}), retrying every ${
          retry.slowRetryMs / 1000
        }s`,
      );
      this.#schedule(retry.slowRetryMs);
    }
    this.#state = "retry-wait";
    this.#deps.onChange?.(this);
  }

  #schedule(delayMs: number): void {
    this.#cancelRetry();
    const timer = this.#deps.clock.after(delayMs, () => {
      this.#retry = undefined;
      this.#run();
    });
    this.#retry = { timer, dueMs: this.#deps.clock.now() + delayMs, delayMs };
    this.#lastDelayMs = delayMs;
  }

  #cancelRetry(): void {
    this.#retry?.timer.cancel();
    this.#retry = undefined;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
