/**
 * A D-Bus service of ours (docs/design.md#d-bus-api): connects to the
 * system bus, serves one object over its handlers (lib/dbus/object_dispatch.ts
 * checks every call against the object's spec) and owns a well-known name.
 * stacd's org.nvmexpress.stac and stafd's org.nvmexpress.staf are two of these.
 *
 * The bus is not essential to either daemon: when it goes away the service
 * logs once that the D-Bus API is off and resolves `closed`; the daemon
 * keeps running and may start a new service later.
 */
import type { Logger } from "../logger.ts";
import {
  type BusConnection,
  connectSystemBus,
  DBUS_DAEMON,
  DBusError,
  Message,
} from "./bus_connection.ts";
import type { ObjectSpec } from "./introspection.ts";
import {
  type Caller,
  DBusMethodError,
  ERROR,
  objectDispatcher,
  type ObjectHandlers,
  onlyReads,
} from "./object_dispatch.ts";

export interface BusServiceOptions {
  log: Logger;
  /** Bus address; default DBUS_SYSTEM_BUS_ADDRESS, else the standard system bus socket. */
  busAddress?: string;
  /** Limit for connecting and owning the name, and for bus queries the service makes. */
  timeoutMs?: number;
}

/** What the service serves. */
export interface BusServiceDef {
  /** The well-known name, e.g. org.nvmexpress.stac. */
  name: string;
  path: string;
  spec: ObjectSpec;
  /** The daemon's name, for messages ("stacd"). */
  daemon: string;
  /** The handlers, given a check that the caller is root (for setting tron). */
  handlers(requireRoot: (caller: Caller) => Promise<void>): ObjectHandlers;
}

export interface BusService {
  /** Releases the name and disconnects; idempotent. */
  close(): Promise<void>;
  /** Sends a signal from the object; false (logged) once closed or when sending fails. */
  emit(iface: string, member: string, signature: string, body: unknown[]): boolean;
  /** Resolves with the reason when the connection ends, whether by close() or by losing the bus. */
  readonly closed: Promise<string>;
  /** The service's unique connection name. */
  readonly uniqueName: string;
}

/** DBUS_NAME_FLAG_DO_NOT_QUEUE: fail at once rather than wait behind another owner. */
const DO_NOT_QUEUE = 4;
const PRIMARY_OWNER = 1;

/**
 * Connects, serves `def.path` and owns `def.name`; rejects with a one-line
 * reason if the bus cannot be reached or the name cannot be owned (taken,
 * or denied by policy).
 */
export async function startBusService(
  def: BusServiceDef,
  options: BusServiceOptions,
): Promise<BusService> {
  const { log } = options;
  let closing = false;
  const connection = await connectSystemBus({
    address: options.busAddress,
    timeoutMs: options.timeoutMs,
    onLost: (reason) => {
      closing = true;
      log.warning(`D-Bus API off: lost the system bus (${reason}); ${def.daemon} keeps running`);
    },
    onBadMessage: (why) => log.warning(`D-Bus: ${why}`),
  });
  const handlers = def.handlers((caller) => requireRoot(connection, caller));
  connection.bus.serveCalls(
    objectDispatcher(connection.bus, { path: def.path, spec: def.spec, handlers }, log),
    { dropOneWay: onlyReads },
  );
  try {
    const reply = await connection.call({
      ...DBUS_DAEMON,
      member: "RequestName",
      signature: "su",
      body: [def.name, DO_NOT_QUEUE],
    });
    if (reply.body[0] !== PRIMARY_OWNER) {
      throw new Error(`another process owns it (is another ${def.daemon} running?)`);
    }
  } catch (error) {
    closing = true;
    await connection.close();
    const reason = !(error instanceof DBusError)
      ? (error as Error).message
      : error.type === "org.freedesktop.DBus.Error.AccessDenied"
      ? `${error.text} (is ${def.name}.conf installed in /etc/dbus-1/system.d, ` +
        `and is ${def.daemon} root?)`
      : `${error.type}: ${error.text}`;
    throw new Error(`Cannot own the D-Bus name ${def.name}: ${reason}`);
  }
  log.info(`D-Bus API on: ${def.name} at ${def.path} (${connection.uniqueName})`);

  return {
    uniqueName: connection.uniqueName,
    closed: connection.closed,
    emit(iface, member, signature, body) {
      if (closing) return false;
      try {
        connection.bus.send(Message.newSignal(def.path, iface, member, signature, body));
        return true;
      } catch (error) {
        log.warning(`D-Bus: cannot emit ${member}: ${(error as Error).message}`);
        return false;
      }
    },
    async close() {
      closing = true;
      await connection.close();
    },
  };
}

/** Setting tron is root's: the bus policy says so, and this holds even under a laxer policy. */
async function requireRoot(connection: BusConnection, caller: Caller): Promise<void> {
  let uid: unknown;
  try {
    const reply = await connection.call({
      ...DBUS_DAEMON,
      member: "GetConnectionUnixUser",
      signature: "s",
      body: [caller.sender],
    });
    uid = reply.body[0];
  } catch {
    // Not knowing who asks is a refusal.
  }
  if (uid !== 0) throw new DBusMethodError(ERROR.accessDenied, "Only root may set tron");
}

/** The log_level property's value. */
export function logLevel(tron: boolean): string {
  return tron ? "DEBUG" : "INFO";
}
