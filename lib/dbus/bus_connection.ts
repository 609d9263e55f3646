/**
 * A connection to the system bus with the guarantees dbus-next lacks: it
 * connects or fails within a deadline (dbus-next waits forever for Hello),
 * every call has a timeout and fails when the connection drops (dbus-next
 * leaves it pending), an error event never throws (an EventEmitter 'error'
 * without a listener would kill the process), and the loss of the bus is
 * reported once, through `closed`.
 */
import type { EventEmitter } from "node:events";
import dbus from "dbus-next";

/** Where the system bus lives when DBUS_SYSTEM_BUS_ADDRESS is not set. */
export const DEFAULT_SYSTEM_BUS_ADDRESS = "unix:path=/var/run/dbus/system_bus_socket";

/** The dbus-next objects we use, typed by what we rely on. */
export type MessageBus = dbus.MessageBus;
export type Message = dbus.Message;
export const { Message, Variant, DBusError } = dbus;

/** An error reply to `call` (the typings declare the wrong parameter type). */
export const newErrorReply = Message.newError as unknown as (
  call: Message,
  errorName: string,
  text: string,
) => Message;

/** Header flag: the caller does not want a reply (the typings' enum values are wrong). */
export const NO_REPLY_EXPECTED = 1;

/** A call to make: where it goes and what it carries. */
export interface CallSpec {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

export interface BusConnection {
  readonly bus: MessageBus;
  /** Our unique name (`:1.42`). */
  readonly uniqueName: string;
  /** Resolves (never rejects) with the reason once the connection is gone. */
  readonly closed: Promise<string>;
  /**
   * Calls a method; rejects with a dbus-next DBusError: the remote error,
   * `org.freedesktop.DBus.Error.NoReply` after `timeoutMs`, or
   * `org.freedesktop.DBus.Error.Disconnected` when the bus goes away.
   */
  call(spec: CallSpec, timeoutMs?: number): Promise<Message>;
  /** Disconnects; idempotent. */
  close(): Promise<void>;
}

// dbus-next keeps these private; we need the socket to learn that it closed
// (MessageBus does not forward 'end') and the reply table to drop a timed-out call.
interface BusInternals {
  _connection: { stream: EventEmitter & { destroy(): void; end(): void } };
  _methodReturnHandlers: Record<number, unknown>;
}

/**
 * Connects to the system bus at `address` (default: DBUS_SYSTEM_BUS_ADDRESS,
 * else /var/run/dbus/system_bus_socket); rejects with an Error naming the
 * address if that fails or takes longer than `timeoutMs`.
 */
export async function connectSystemBus(
  options: { address?: string; timeoutMs?: number } = {},
): Promise<BusConnection> {
  const address = options.address ?? Deno.env.get("DBUS_SYSTEM_BUS_ADDRESS") ??
    DEFAULT_SYSTEM_BUS_ADDRESS;
  const timeoutMs = options.timeoutMs ?? 5000;
  let bus: MessageBus;
  try {
    // sessionBus() is the only entry point taking an address; the bus type is the address's.
    bus = dbus.sessionBus({ busAddress: address });
  } catch (error) {
    throw new Error(`Cannot connect to the D-Bus system bus at ${address}: ${message(error)}`);
  }
  const internals = bus as unknown as BusInternals;
  const stream = internals._connection.stream;
  const gone = Promise.withResolvers<string>();
  let lost = false;
  // The socket closing is the one sure sign of loss: dbus-next also emits
  // 'error' for things it survives (a message it cannot decode), so errors
  // only explain the loss, and fail the connect while it is pending.
  let lastError: string | undefined;
  const failed = Promise.withResolvers<never>();
  bus.on("error", (error: unknown) => {
    lastError = message(error);
    failed.reject(new Error(lastError));
  });
  failed.promise.catch(() => {});
  stream.on("close", () => {
    lost = true;
    gone.resolve(lastError ? `connection closed (${lastError})` : "connection closed");
  });

  const timer = Promise.withResolvers<never>();
  const id = setTimeout(
    () => timer.reject(new Error(`no answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    await Promise.race([
      new Promise<void>((resolve) => bus.once("connect", () => resolve())),
      gone.promise.then((reason) => Promise.reject(new Error(reason))),
      failed.promise,
      timer.promise,
    ]);
  } catch (error) {
    stream.destroy();
    throw new Error(`Cannot connect to the D-Bus system bus at ${address}: ${message(error)}`);
  } finally {
    clearTimeout(id);
  }

  const call = async (spec: CallSpec, callTimeoutMs = timeoutMs): Promise<Message> => {
    if (lost) throw new DBusError("org.freedesktop.DBus.Error.Disconnected", "not connected");
    const msg = new Message({ ...spec, body: spec.body ?? [] });
    let tid: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        bus.call(msg) as Promise<Message>,
        new Promise<never>((_, reject) => {
          tid = setTimeout(() => {
            delete internals._methodReturnHandlers[msg.serial ?? -1];
            reject(
              new DBusError(
                "org.freedesktop.DBus.Error.NoReply",
                `no reply within ${callTimeoutMs} ms`,
              ),
            );
          }, callTimeoutMs);
        }),
        gone.promise.then((reason) =>
          Promise.reject(new DBusError("org.freedesktop.DBus.Error.Disconnected", reason))
        ),
      ]);
    } finally {
      clearTimeout(tid);
    }
  };

  const close = async () => {
    if (!lost) {
      // Ending (not destroying) lets queued replies go out first; the bus then closes its side.
      stream.end();
      const fallback = setTimeout(() => stream.destroy(), 1000);
      await gone.promise;
      clearTimeout(fallback);
    }
  };

  return {
    bus,
    uniqueName: (bus as unknown as { name: string }).name,
    closed: gone.promise,
    call,
    close,
  };
}

function message(error: unknown): string {
  if (error instanceof DBusError) return `${error.type}: ${error.text}`;
  return error instanceof Error ? error.message : String(error);
}
