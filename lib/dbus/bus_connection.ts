/**
 * stacd's one bus client, for its service, stacctl and the stafd follower:
 * it connects or fails within a deadline, every call settles within a time
 * limit (or when its signal aborts), the loss of the connection is reported
 * once, and a message that cannot be decoded is reported, not thrown. The
 * connection itself is lib/dbus/bus_socket.ts.
 */
import { type Clock, deadline, systemClock } from "../clock.ts";
import { BusSocket, systemBusAddress } from "./bus_socket.ts";
import { DBusError, Message } from "./message.ts";

export { DBUS_DAEMON, DISCONNECTED } from "./bus_socket.ts";
export { DBusError, Message, newErrorReply, NO_REPLY_EXPECTED, Variant } from "./message.ts";

/** The error of a call that got no reply within its time limit. */
export const NO_REPLY = "org.freedesktop.DBus.Error.NoReply";

/** A call to make: where it goes and what it carries. */
export interface CallSpec {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

/** Options of {@linkcode BusConnection.call}. */
export interface CallOptions {
  /** Default: the connection's `timeoutMs`. */
  timeoutMs?: number;
  /** Ends the wait at once, rejecting with the signal's reason; a later reply is dropped. */
  signal?: AbortSignal;
}

export interface BusConnection {
  readonly bus: BusSocket;
  /** Our unique name (`:1.42`). */
  readonly uniqueName: string;
  /** Resolves (never rejects) with the reason once the connection is gone. */
  readonly closed: Promise<string>;
  /**
   * Calls a method; rejects with a DBusError: the remote error,
   * {@linkcode NO_REPLY} after the time limit, or {@linkcode DISCONNECTED}
   * when the bus goes away. The timer lives only while the call is in flight.
   */
  call(spec: CallSpec, options?: CallOptions): Promise<Message>;
  /**
   * Disconnects after sending what is queued, waiting at most `graceMs`
   * (default 1000; 0 closes at once); idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

/** Options of {@linkcode connectSystemBus}. */
export interface ConnectOptions {
  /** Default: DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket. */
  address?: string;
  /** Limit for connecting, and for each call that sets none; default 5000 ms. */
  timeoutMs?: number;
  /** Runs the time limits; default the system clock. */
  clock?: Clock;
  /** Told once if the connection ends other than by close(). */
  onLost?: (why: string) => void;
  /** Told of a message that could not be decoded (and was dropped). */
  onBadMessage?: (why: string) => void;
}

/**
 * Connects to the bus at `options.address`; rejects with an Error naming
 * the address if that fails or takes longer than `timeoutMs`.
 */
export async function connectSystemBus(options: ConnectOptions = {}): Promise<BusConnection> {
  const address = options.address ?? systemBusAddress();
  const timeoutMs = options.timeoutMs ?? 5000;
  const clock = options.clock ?? systemClock;
  const bus = BusSocket.open(address, { onBadMessage: options.onBadMessage });
  const connecting = deadline(
    clock,
    timeoutMs,
    () => new Error(`no answer within ${timeoutMs} ms`),
  );
  try {
    await Promise.race([bus.ready, connecting.expired]);
  } catch (error) {
    await bus.close(0);
    throw new Error(
      `Cannot connect to the D-Bus system bus at ${address}: ${(error as Error).message}`,
    );
  } finally {
    connecting.cancel();
  }

  let closedByUs = false;
  const { onLost } = options;
  if (onLost) {
    void bus.closed.then((why) => {
      if (!closedByUs) onLost(why);
    });
  }

  const call = async (spec: CallSpec, callOptions: CallOptions = {}): Promise<Message> => {
    callOptions.signal?.throwIfAborted(); // nothing is sent for a call already given up
    const ms = callOptions.timeoutMs ?? timeoutMs;
    const limit = deadline(
      clock,
      ms,
      () => new DBusError(NO_REPLY, `${spec.member} got no reply within ${ms} ms`),
    );
    const abort = aborted(callOptions.signal);
    try {
      const message = new Message({ ...spec, body: spec.body ?? [] });
      return await bus.call(
        message,
        abort ? Promise.race([limit.expired, abort.promise]) : limit.expired,
      );
    } finally {
      limit.cancel();
      abort?.remove();
    }
  };

  return {
    bus,
    uniqueName: bus.uniqueName,
    closed: bus.closed,
    call,
    close(graceMs?: number) {
      closedByUs = true;
      return bus.close(graceMs);
    },
  };
}

/** A promise that rejects when `signal` aborts, and the removal of its listener. */
function aborted(
  signal: AbortSignal | undefined,
): { promise: Promise<never>; remove(): void } | undefined {
  if (!signal) return undefined;
  let onAbort = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  promise.catch(() => {}); // raced, or never settled: not an unhandled rejection
  return { promise, remove: () => signal.removeEventListener("abort", onAbort) };
}

/**
 * An error for a log line: a D-Bus error's name and text, control
 * characters blanked and the text cut short (a peer chose it).
 */
export function errorText(error: unknown): string {
  const { type, text, message } = error as { type?: unknown; text?: unknown; message?: unknown };
  // deno-lint-ignore no-control-regex
  const detail = String(text ?? message ?? error).replace(/[\u0000-\u001f\u007f]/g, " ");
  const short = detail.length > 200
    ? `${detail.slice(0, 200)}... (${detail.length} characters)`
    : detail;
  return typeof type === "string" ? `${type.slice(0, 255)}: ${short}` : short;
}
