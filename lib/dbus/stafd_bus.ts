/**
 * The bits of dbus-next that both ends of stafd's interface use: stafd's
 * names, opening a connection that reports its loss, and closing it
 * promptly. dbus-next neither rejects pending calls nor says anything when
 * the socket closes, so the socket is watched here.
 */
import dbus, { type Message, type MessageBus, type MessageLike } from "dbus-next";
import type { Clock, Timer } from "../clock.ts";

/** stafd's well-known name, object and interface (contract 8.1). */
export const STAF = {
  name: "org.nvmexpress.staf",
  path: "/org/nvmexpress/staf",
  iface: "org.nvmexpress.staf",
} as const;

/** What a follower of stafd subscribes to: changes of the name's owner, and stafd's signals. */
export const STAF_MATCH_RULES = [
  `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',` +
  `member='NameOwnerChanged',arg0='${STAF.name}'`,
  `type='signal',sender='${STAF.name}',path='${STAF.path}',interface='${STAF.iface}'`,
] as const;

/** The bus daemon itself, as a call destination. */
export const DBUS_DAEMON = {
  destination: "org.freedesktop.DBus",
  path: "/org/freedesktop/DBus",
  interface: "org.freedesktop.DBus",
} as const;

/** Message type of a signal at run time (dbus-next's typings number their enum from 0). */
export const SIGNAL = 4;

/** A message as dbus-next delivers it. */
export type BusMessage = Message;

/** Where the system bus listens when DBUS_SYSTEM_BUS_ADDRESS does not say otherwise. */
export const SYSTEM_BUS_ADDRESS = "unix:path=/run/dbus/system_bus_socket";

/** The node:net socket under a dbus-next connection (not in its typings). */
interface BusSocket {
  once(event: "close", listener: () => void): void;
  destroy(): void;
}

const sockets = new WeakMap<MessageBus, { socket: BusSocket; closed: Promise<void> }>();
const closing = new WeakSet<MessageBus>();

/**
 * Connects to `address` (default: DBUS_SYSTEM_BUS_ADDRESS, else the system
 * bus). `onLost` is called once if the connection fails or the bus closes
 * it; not after {@linkcode closeBus}.
 */
export function openBus(address: string | undefined, onLost: (why: string) => void): MessageBus {
  const busAddress = address ?? Deno.env.get("DBUS_SYSTEM_BUS_ADDRESS") ?? SYSTEM_BUS_ADDRESS;
  const bus = dbus.sessionBus({ busAddress });
  const socket = (bus as unknown as { _connection: { stream: BusSocket } })._connection.stream;
  let lost = false;
  const report = (why: string) => {
    if (lost || closing.has(bus)) return;
    lost = true;
    onLost(why);
  };
  // Without an "error" listener, an EventEmitter error would be thrown at the daemon.
  bus.on(
    "error",
    (error: unknown) => report(error instanceof Error ? error.message : String(error)),
  );
  const closed = new Promise<void>((resolve) => socket.once("close", resolve));
  void closed.then(() => report("the bus closed the connection"));
  sockets.set(bus, { socket, closed });
  return bus;
}

/** Closes a connection made by {@linkcode openBus}; resolves once the socket is closed. */
export async function closeBus(bus: MessageBus): Promise<void> {
  const entry = sockets.get(bus);
  if (!entry) return;
  closing.add(bus);
  bus.disconnect();
  // end() alone waits for the peer; destroy() closes at once.
  entry.socket.destroy();
  await entry.closed;
}

/**
 * A method call that settles within `timeoutMs`, or as soon as `abort`
 * rejects (dbus-next alone would wait forever). A reply arriving later is
 * dropped. The timer lives only while the call is in flight.
 */
export function callWithin(
  bus: MessageBus,
  spec: MessageLike,
  clock: Clock,
  timeoutMs: number,
  abort: Promise<never>,
): Promise<Message> {
  const reply = bus.call(new dbus.Message(spec)) as Promise<Message>;
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.after(timeoutMs, () => {
      reject(new Error(`${spec.member} got no reply within ${timeoutMs} ms`));
    });
  });
  return Promise.race([reply, timeout, abort]).finally(() => timer?.cancel());
}

/** An error for a log line: a D-Bus error's name and text, the text cut short (a peer chose it). */
export function errorText(error: unknown): string {
  const { type, text, message } = error as { type?: unknown; text?: unknown; message?: unknown };
  // deno-lint-ignore no-control-regex
  const detail = String(text ?? message ?? error).replace(/[\u0000-\u001f\u007f]/g, " ");
  const short = detail.length > 200
    ? `${detail.slice(0, 200)}... (${detail.length} characters)`
    : detail;
  return typeof type === "string" ? `${type.slice(0, 255)}: ${short}` : short;
}
