/**
 * A dbus-next MessageBus for the tests' stand-ins (stafd, rogue peers): a
 * second D-Bus implementation beside stacd's own lib/dbus/bus_socket.ts, with
 * dbus-next's name ownership and method handlers. Its socket is closed at
 * once by {@linkcode closeNextBus} (dbus-next's disconnect() waits for the peer).
 */
import dbus, { type MessageBus } from "dbus-next";

/** The node:net socket under a dbus-next connection (not in its typings). */
interface NetSocket {
  once(event: "close", listener: () => void): void;
  destroy(): void;
}

const sockets = new WeakMap<MessageBus, { socket: NetSocket; closed: Promise<void> }>();

/** Connects to the bus at `address`; an error of the connection is ignored (a test notices). */
export function openNextBus(address: string): MessageBus {
  const bus = dbus.sessionBus({ busAddress: address });
  const socket = (bus as unknown as { _connection: { stream: NetSocket } })._connection.stream;
  // Without an "error" listener, an EventEmitter error would be thrown at the test.
  bus.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", resolve));
  sockets.set(bus, { socket, closed });
  return bus;
}

/** Closes a connection made by {@linkcode openNextBus}; resolves once its socket is closed. */
export async function closeNextBus(bus: MessageBus): Promise<void> {
  const entry = sockets.get(bus);
  if (!entry) return;
  bus.disconnect();
  entry.socket.destroy();
  await entry.closed;
}
