/**
 * A connection to the system bus for stacd's service and stacctl: it
 * connects or fails within a deadline, and every call has a timeout. The
 * connection is lib/dbus/bus_socket.ts; this adds the address default and
 * the deadlines.
 */
import { deadline, systemClock } from "../clock.ts";
import { BusSocket, systemBusAddress } from "./bus_socket.ts";
import { DBusError, Message } from "./message.ts";

export { DBusError, Message, newErrorReply, NO_REPLY_EXPECTED, Variant } from "./message.ts";

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
  readonly bus: BusSocket;
  /** Our unique name (`:1.42`). */
  readonly uniqueName: string;
  /** Resolves (never rejects) with the reason once the connection is gone. */
  readonly closed: Promise<string>;
  /**
   * Calls a method; rejects with a DBusError: the remote error,
   * `org.freedesktop.DBus.Error.NoReply` after `timeoutMs`, or
   * `org.freedesktop.DBus.Error.Disconnected` when the bus goes away.
   */
  call(spec: CallSpec, timeoutMs?: number): Promise<Message>;
  /** Disconnects after sending what is queued; idempotent. */
  close(): Promise<void>;
}

/**
 * Connects to the system bus at `address` (default: DBUS_SYSTEM_BUS_ADDRESS,
 * else /run/dbus/system_bus_socket); rejects with an Error naming the
 * address if that fails or takes longer than `timeoutMs`.
 */
export async function connectSystemBus(
  options: { address?: string; timeoutMs?: number; onBadMessage?: (why: string) => void } = {},
): Promise<BusConnection> {
  const address = options.address ?? systemBusAddress();
  const timeoutMs = options.timeoutMs ?? 5000;
  const bus = BusSocket.open(address, { onBadMessage: options.onBadMessage });
  const connecting = deadline(
    systemClock,
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

  const call = async (spec: CallSpec, callTimeoutMs = timeoutMs): Promise<Message> => {
    const limit = deadline(
      systemClock,
      callTimeoutMs,
      () =>
        new DBusError("org.freedesktop.DBus.Error.NoReply", `no reply within ${callTimeoutMs} ms`),
    );
    try {
      return await bus.call(new Message({ ...spec, body: spec.body ?? [] }), limit.expired);
    } finally {
      limit.cancel();
    }
  };

  return { bus, uniqueName: bus.uniqueName, closed: bus.closed, call, close: () => bus.close() };
}
