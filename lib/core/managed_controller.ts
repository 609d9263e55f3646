/**
 * One controller stacd manages, as state the reconciler owns and only a
 * pass changes: its device, its connect attempts and when (and why) it is
 * tried next. The functions here are the life rules: retry 3 s after the
 * first failure, then every 60 s; stop after N attempts when the subsystem
 * is Not Connected to the CDC (NCC); give up at once on a connect that must
 * not be made (fail closed); retry 3 s after the kernel took the device
 * away. They only change the record and say what to log: no I/O, no timers.
 */
import type { DiscoveryLogEntry } from "./discovery_log.ts";
import type { Origin } from "./desired_set.ts";
import type { ConnectRequest } from "./connect_request.ts";
import { ConnectRefusedError } from "./kernel_api.ts";
import type { TimerState } from "./timer_text.ts";
import type { TransportId } from "./transport_id.ts";

/** Where a managed controller came from: the desired set, or the kernel audit. */
export type ManagedOrigin = Origin | "audited";

/** Retry timing; tests shorten it through STACD_TEST_TIMER_SCALE. */
export interface RetryPolicy {
  fastRetryMs: number;
  slowRetryMs: number;
}

/** How to connect a controller, as the desired set (or the audit) says now. */
export interface ControllerSpec {
  /** Printable id, e.g. `(tcp, 10.0.0.1, 4420, nqn.x)`. */
  id: string;
  request: ConnectRequest;
  /** The log page entry's NCC bit, when the controller was discovered. */
  ncc: boolean;
  /** connect-attempts-on-ncc as configured now: 0 = never stop. */
  attemptsOnNcc: number;
  /**
   * Why this controller must not be connected (e.g. the host key it would
   * use is malformed); an existing kernel connection is still adopted.
   */
  refused?: ConnectRefusedError;
}

/**
 * `new`: not looked at yet; `connecting`: a connect is in the kernel;
 * `waiting`: tried again at `next.dueMs`; `given-up`: tried again only
 * after a reload or a new spec.
 */
export type Phase = "new" | "connecting" | "connected" | "waiting" | "given-up";

/** The next attempt: when, the delay it was set for (0: at once), and why. */
export interface NextAttempt extends TimerState {
  reason: string;
}

export interface ManagedController {
  readonly key: string;
  readonly tid: TransportId;
  origin: ManagedOrigin;
  spec: ControllerSpec;
  dlpe?: DiscoveryLogEntry;
  phase: Phase;
  device?: string;
  attempts: number;
  next?: NextAttempt;
  /** Upstream's timer is made with the slow period and shows it until a failure changes it. */
  lastDelayMs: number;
}

/** A line for the log, which the reconciler writes. */
export interface LogLine {
  level: "debug" | "info" | "error";
  text: string;
}

export function newManaged(
  fields: Pick<ManagedController, "key" | "tid" | "origin" | "spec" | "dlpe">,
  retry: RetryPolicy,
): ManagedController {
  return { ...fields, phase: "new", attempts: 0, lastDelayMs: retry.slowRetryMs };
}

/** Whether a pass at `nowMs` should adopt or connect this controller. */
export function isDue(c: ManagedController, nowMs: number): boolean {
  if (c.phase === "new") return true;
  return c.phase === "waiting" && c.next !== undefined && c.next.dueMs <= nowMs;
}

/** The earliest time a waiting controller is due, if any waits. */
export function nextDue(controllers: Iterable<ManagedController>): number | undefined {
  let due: number | undefined;
  for (const c of controllers) {
    if (c.phase === "waiting" && c.next && (due === undefined || c.next.dueMs < due)) {
      due = c.next.dueMs;
    }
  }
  return due;
}

/** The controller has `device`: found in the kernel, or made by its connect. */
export function connected(c: ManagedController, device: string, what: string): LogLine {
  c.device = device;
  c.attempts = 0;
  c.phase = "connected";
  c.next = undefined;
  return { level: "info", text: `${c.spec.id} | ${device} - ${what}` };
}

/** An existing kernel connection found by the audit: taken over as it is. */
export function assumeDevice(c: ManagedController, device: string): void {
  c.device = device;
  c.phase = "connected";
}

/** A connect was issued (the attempt counts from now). */
export function connecting(c: ManagedController): void {
  c.phase = "connecting";
  c.attempts++;
  c.next = undefined;
}

/** The kernel no longer has our device (udev remove, or a pass saw it gone). */
export function removed(c: ManagedController, retry: RetryPolicy, nowMs: number): LogLine {
  const device = c.device;
  c.device = undefined;
  c.attempts = 0;
  schedule(c, retry.fastRetryMs, nowMs, "removed by the kernel");
  return {
    level: "info",
    text: `${c.spec.id} | ${device} - Controller removed by the kernel, retrying`,
  };
}

/**
 * A connect failed, or must not be made. Only the second failure is worth
 * an operator's attention: later ones would flood the log when many
 * controllers are unreachable.
 */
export function failed(
  c: ManagedController,
  error: unknown,
  retry: RetryPolicy,
  nowMs: number,
): LogLine {
  const reason = error instanceof Error ? error.message : String(error);
  const prefix = `${c.spec.id} | nvme? -`;
  if (error instanceof ConnectRefusedError) {
    giveUp(c);
    return { level: "error", text: `${prefix} Not connected: ${reason}` };
  }
  const limit = c.spec.attemptsOnNcc;
  if (c.spec.ncc && limit > 0 && c.attempts >= limit) {
    giveUp(c);
    return {
      level: "info",
      text: `${prefix} Connect failed (${reason}); NCC set, giving up after ${c.attempts} attempts`,
    };
  }
  if (c.attempts <= 1) {
    schedule(c, retry.fastRetryMs, nowMs, "connect failed");
    return {
      level: "debug",
      text: `${prefix} Connect failed (${reason}), retrying in ${retry.fastRetryMs / 1000}s`,
    };
  }
  schedule(c, retry.slowRetryMs, nowMs, "connect failed");
  return {
    level: c.attempts === 2 ? "error" : "debug",
    text: `${prefix} Connect failed (${reason}), retrying every ${retry.slowRetryMs / 1000}s`,
  };
}

/**
 * A new spec for the same identity (reload, new log page). Connection
 * parameters apply to the next connect only; a cleared NCC bit resets the
 * attempt count and retries at once.
 */
export function respecified(c: ManagedController, spec: ControllerSpec, nowMs: number): void {
  const nccCleared = c.spec.ncc && !spec.ncc;
  c.spec = spec;
  if (nccCleared && (c.phase === "given-up" || c.phase === "waiting")) {
    c.attempts = 0;
    retryNow(c, nowMs, "NCC cleared");
  }
}

/**
 * Reload: a controller that gave up is tried again at once. Its attempt
 * count stays (as upstream's): only a log page clearing NCC, a connection
 * or a removal resets it, so a reload gives one more attempt, not N more.
 */
export function kicked(c: ManagedController, nowMs: number): void {
  if (c.phase === "given-up") retryNow(c, nowMs, "reload");
}

function retryNow(c: ManagedController, nowMs: number, reason: string): void {
  c.phase = "waiting";
  c.next = { delayMs: 0, dueMs: nowMs, reason };
}

function schedule(c: ManagedController, delayMs: number, nowMs: number, reason: string): void {
  c.phase = "waiting";
  c.next = { delayMs, dueMs: nowMs + delayMs, reason };
  c.lastDelayMs = delayMs;
}

function giveUp(c: ManagedController): void {
  c.phase = "given-up";
  c.next = undefined;
}
