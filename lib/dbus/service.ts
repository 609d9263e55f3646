/**
 * stacd's D-Bus service (docs/design.md#d-bus-api): owns org.nvmexpress.stac on the
 * system bus and serves /org/nvmexpress/stac over a {@linkcode StacModel}.
 * It only validates, filters and formats; the model is the daemon's state.
 *
 * The bus is not essential to stacd: when it goes away the service logs
 * once that the D-Bus API is off and resolves `closed`; the daemon keeps
 * running and may start a new service later (close() then start again).
 */
import type { Logger } from "../logger.ts";
import {
  type BusConnection,
  connectSystemBus,
  DBUS_DAEMON,
  DBusError,
  Message,
  Variant,
} from "./bus_connection.ts";
import {
  STAC_BUS_NAME,
  STAC_DEBUG_INTERFACE,
  STAC_INTERFACE,
  STAC_OBJECT_PATH,
  STAC_OBJECT_SPEC,
} from "./idl.ts";
import type { ControllerQuery, StacModel } from "./model.ts";
import {
  type Caller,
  DBusMethodError,
  ERROR,
  objectDispatcher,
  type ObjectHandlers,
  onlyReads,
} from "./object_dispatch.ts";
import { stringValues, withoutSecrets } from "./secrets_filter.ts";
import { PROPERTIES_INTERFACE } from "./introspection.ts";

export interface StacServiceOptions {
  log: Logger;
  /** Bus address; default DBUS_SYSTEM_BUS_ADDRESS, else the standard system bus socket. */
  busAddress?: string;
  /** Limit for connecting and owning the name, and for bus queries the service makes. */
  timeoutMs?: number;
}

export interface StacService {
  /** Releases the name and disconnects; idempotent. */
  close(): Promise<void>;
  /**
   * Emits PropertiesChanged for tron and log_level if tron differs from what
   * was last announced: what changes tron other than over D-Bus (a reload)
   * calls it; a no-op once closed.
   */
  emitTron(tron: boolean): void;
  /** Resolves with the reason when the connection ends, whether by close() or by losing the bus. */
  readonly closed: Promise<string>;
  /** The service's unique connection name. */
  readonly uniqueName: string;
}

/** DBUS_NAME_FLAG_DO_NOT_QUEUE: fail at once rather than wait behind another owner. */
const DO_NOT_QUEUE = 4;
const PRIMARY_OWNER = 1;

/**
 * Connects to the system bus, serves /org/nvmexpress/stac and owns
 * org.nvmexpress.stac; rejects with a one-line reason if the bus cannot be
 * reached or the name cannot be owned (taken, or denied by policy).
 */
export async function startStacService(
  model: StacModel,
  options: StacServiceOptions,
): Promise<StacService> {
  const { log } = options;
  let closing = false;
  const connection = await connectSystemBus({
    address: options.busAddress,
    timeoutMs: options.timeoutMs,
    onLost: (reason) => {
      closing = true;
      log.warning(`D-Bus API off: lost the system bus (${reason}); stacd keeps running`);
    },
    onBadMessage: (why) => log.warning(`D-Bus: ${why}`),
  });
  let announced = model.tron;

  const emitTron = (tron: boolean) => {
    if (closing || tron === announced) return;
    announced = tron;
    try {
      connection.bus.send(
        Message.newSignal(STAC_OBJECT_PATH, PROPERTIES_INTERFACE, "PropertiesChanged", "sa{sv}as", [
          STAC_DEBUG_INTERFACE,
          { tron: new Variant("b", tron), log_level: new Variant("s", logLevel(tron)) },
          [],
        ]),
      );
    } catch (error) {
      log.warning(`D-Bus: cannot emit PropertiesChanged: ${(error as Error).message}`);
    }
  };

  const handlers = stacHandlers(model, {
    log,
    emitTron,
    requireRoot: (caller) => requireRoot(connection, caller),
  });
  connection.bus.serveCalls(
    objectDispatcher(
      connection.bus,
      { path: STAC_OBJECT_PATH, spec: STAC_OBJECT_SPEC, handlers },
      log,
    ),
    { dropOneWay: onlyReads },
  );
  try {
    const reply = await connection.call({
      ...DBUS_DAEMON,
      member: "RequestName",
      signature: "su",
      body: [STAC_BUS_NAME, DO_NOT_QUEUE],
    });
    if (reply.body[0] !== PRIMARY_OWNER) {
      throw new Error("another process owns it (is another stacd running?)");
    }
  } catch (error) {
    closing = true;
    await connection.close();
    const reason = !(error instanceof DBusError)
      ? (error as Error).message
      : error.type === "org.freedesktop.DBus.Error.AccessDenied"
      ? `${error.text} (is org.nvmexpress.stac.conf installed in /etc/dbus-1/system.d, and is stacd root?)`
      : `${error.type}: ${error.text}`;
    throw new Error(`Cannot own the D-Bus name ${STAC_BUS_NAME}: ${reason}`);
  }
  log.info(`D-Bus API on: ${STAC_BUS_NAME} at ${STAC_OBJECT_PATH} (${connection.uniqueName})`);

  return {
    uniqueName: connection.uniqueName,
    closed: connection.closed,
    emitTron,
    async close() {
      closing = true;
      await connection.close();
    },
  };
}

function logLevel(tron: boolean): string {
  return tron ? "DEBUG" : "INFO";
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

/** The handlers of our two interfaces over `model`. */
export function stacHandlers(
  model: StacModel,
  deps: { log: Logger; emitTron(tron: boolean): void; requireRoot(caller: Caller): Promise<void> },
): ObjectHandlers {
  const { log } = deps;
  const reported = new Set<string>();
  // Drops secret-looking entries; a drop is a model bug, reported once per key (never the value).
  const safe = <T>(dict: Readonly<Record<string, T>>, what: string): Record<string, T> => {
    const { clean, dropped } = withoutSecrets(dict);
    for (const key of dropped) {
      if (reported.has(`${what}/${key}`)) continue;
      reported.add(`${what}/${key}`);
      log.error(`D-Bus: dropped secret-looking field "${key}" from ${what} (a bug: please report)`);
    }
    return clean;
  };
  return {
    [STAC_DEBUG_INTERFACE]: {
      properties: {
        tron: {
          get: () => model.tron,
          set: async (value, caller) => {
            await deps.requireRoot(caller);
            model.tron = value as boolean;
            log.info(`tron ${model.tron ? "on" : "off"} (set over D-Bus by ${caller.sender})`);
            deps.emitTron(model.tron);
          },
        },
        log_level: { get: () => logLevel(model.tron) },
      },
      methods: {
        process_info: () => JSON.stringify(safe(model.processInfo(), "process_info")),
        controller_info: (args) => {
          const [transport, traddr, trsvcid, subsysnqn, hostTraddr, hostIface, hostNqn] =
            args as string[];
          const query: ControllerQuery = {
            transport: transport!,
            traddr: traddr!,
            trsvcid: trsvcid!,
            subsysnqn: subsysnqn!,
            hostTraddr: hostTraddr!,
            hostIface: hostIface!,
            hostNqn: hostNqn!,
          };
          const info = model.controllerInfo(query);
          return JSON.stringify(info ? safe(stringValues(info), "controller_info") : {});
        },
      },
    },
    [STAC_INTERFACE]: {
      methods: {
        list_controllers: (args) =>
          model.listControllers(args[0] === true).map((c) =>
            safe(stringValues(c), "list_controllers")
          ),
      },
    },
  };
}
