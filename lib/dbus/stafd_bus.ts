/**
 * What the stafd follower needs of the bus: stafd's names, a connection that
 * reports its loss once, and calls that settle within a time limit.
 */
import { type Clock, deadline } from "../clock.ts";
import { BusSocket, systemBusAddress } from "./bus_socket.ts";
import { Message, type MessageLike } from "./message.ts";

export { DBUS_DAEMON } from "./bus_socket.ts";

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

const closing = new WeakSet<BusSocket>();

/**
 * Connects to `address` (default: DBUS_SYSTEM_BUS_ADDRESS, else the system
 * bus). `onLost` is called once if the connection fails or the bus closes
 * it; not after {@linkcode closeBus}. `onBadMessage` hears of a message that
 * could not be decoded (and was dropped).
 */
export function openBus(
  address: string | undefined,
  onLost: (why: string) => void,
  onBadMessage?: (why: string) => void,
): BusSocket {
  const bus = BusSocket.open(address ?? systemBusAddress(), { onBadMessage });
  void bus.closed.then((why) => {
    if (!closing.has(bus)) onLost(why);
  });
  return bus;
}

/** Closes a connection made by {@linkcode openBus} at once; resolves once it is closed. */
export async function closeBus(bus: BusSocket): Promise<void> {
  closing.add(bus);
  await bus.close(0);
}

/**
 * A method call that settles within `timeoutMs`, or as soon as `abort`
 * rejects. A reply arriving later is dropped. The timer lives only while the
 * call is in flight.
 */
export function callWithin(
  bus: BusSocket,
  spec: MessageLike,
  clock: Clock,
  timeoutMs: number,
  abort: Promise<never>,
): Promise<Message> {
  const limit = deadline(
    clock,
    timeoutMs,
    () => new Error(`${spec.member} got no reply within ${timeoutMs} ms`),
  );
  return bus.call(new Message(spec), Promise.race([limit.expired, abort]))
    .finally(() => limit.cancel());
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
