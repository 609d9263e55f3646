/**
 * stacd's D-Bus service (docs/design.md#d-bus-api): owns org.nvmexpress.stac on the
 * system bus and serves /org/nvmexpress/stac over a {@linkcode StacModel}
 * (lib/dbus/bus_service.ts does the bus part). It only validates, filters
 * and formats; the model is the daemon's state.
 */
import type { Logger } from "../logger.ts";
import { Variant } from "./bus_connection.ts";
import { type BusServiceOptions, logLevel, startBusService } from "./bus_service.ts";
import {
  STAC_BUS_NAME,
  STAC_DEBUG_INTERFACE,
  STAC_INTERFACE,
  STAC_OBJECT_PATH,
  STAC_OBJECT_SPEC,
} from "./idl.ts";
import type { StacModel } from "./model.ts";
import { commonHandlers } from "./common_handlers.ts";
import type { Caller, ObjectHandlers } from "./object_dispatch.ts";
import { PROPERTIES_INTERFACE } from "./introspection.ts";

export type StacServiceOptions = BusServiceOptions;

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
  let announced = model.tron;
  let service: Awaited<ReturnType<typeof startBusService>> | undefined = undefined;
  const emitTron = (tron: boolean) => {
    if (!service || tron === announced) return;
    if (
      service.emit(PROPERTIES_INTERFACE, "PropertiesChanged", "sa{sv}as", [
        STAC_DEBUG_INTERFACE,
        { tron: new Variant("b", tron), log_level: new Variant("s", logLevel(tron)) },
        [],
      ])
    ) announced = tron;
  };
  service = await startBusService({
    name: STAC_BUS_NAME,
    path: STAC_OBJECT_PATH,
    spec: STAC_OBJECT_SPEC,
    daemon: "stacd",
    handlers: (requireRoot) => stacHandlers(model, { log, emitTron, requireRoot }),
  }, options);
  return {
    uniqueName: service.uniqueName,
    closed: service.closed,
    emitTron,
    close: () => service!.close(),
  };
}

/** The handlers of our two interfaces over `model`. */
export function stacHandlers(
  model: StacModel,
  deps: { log: Logger; emitTron(tron: boolean): void; requireRoot(caller: Caller): Promise<void> },
): ObjectHandlers {
  const common = commonHandlers(model, { ...deps, afterTron: deps.emitTron });
  return {
    [STAC_DEBUG_INTERFACE]: common.debug,
    [STAC_INTERFACE]: { methods: { list_controllers: common.listControllers } },
  };
}
