/**
 * stafd's D-Bus service (docs/design.md#stafd-on-d-bus): owns org.nvmexpress.staf and serves
 * /org/nvmexpress/staf over a {@linkcode StafModel}, with upstream's
 * signals: log_pages_changed after every page read, dc_removed when DCs
 * leave the set. The bus part is lib/dbus/bus_service.ts.
 */
import type { Logger } from "../logger.ts";
import { type BusServiceOptions, startBusService } from "./bus_service.ts";
import {
  STAF_BUS_NAME,
  STAF_DEBUG_INTERFACE,
  STAF_INTERFACE,
  STAF_OBJECT_PATH,
  STAF_OBJECT_SPEC,
} from "./idl.ts";
import { controllerQuery } from "./model.ts";
import type { Caller, ObjectHandlers } from "./object_dispatch.ts";
import { commonHandlers } from "./common_handlers.ts";
import type { StafModel } from "./staf_model.ts";
import type { DcSnapshot } from "../finder/finder.ts";

export interface StafService {
  close(): Promise<void>;
  /** log_pages_changed(transport, traddr, trsvcid, subsysnqn, host_traddr, host_iface, host_nqn, device). */
  emitLogPagesChanged(dc: DcSnapshot): void;
  emitDcRemoved(): void;
  readonly closed: Promise<string>;
  readonly uniqueName: string;
}

export async function startStafService(
  model: StafModel,
  options: BusServiceOptions,
): Promise<StafService> {
  const { log } = options;
  const service = await startBusService({
    name: STAF_BUS_NAME,
    path: STAF_OBJECT_PATH,
    spec: STAF_OBJECT_SPEC,
    daemon: "stafd",
    handlers: (requireRoot) => stafHandlers(model, { log, requireRoot }),
  }, options);
  return {
    uniqueName: service.uniqueName,
    closed: service.closed,
    close: () => service.close(),
    emitLogPagesChanged(dc) {
      const t = dc.tid;
      service.emit(STAF_INTERFACE, "log_pages_changed", "ssssssss", [
        t.transport,
        t.traddr,
        t.trsvcid,
        t.subsysnqn,
        t.hostTraddr,
        t.hostIface,
        t.hostNqn,
        dc.device ?? "",
      ]);
    },
    emitDcRemoved() {
      service.emit(STAF_INTERFACE, "dc_removed", "", []);
    },
  };
}

/** The handlers of stafd's two interfaces over `model`. */
export function stafHandlers(
  model: StafModel,
  deps: { log: Logger; requireRoot(caller: Caller): Promise<void> },
): ObjectHandlers {
  const common = commonHandlers(model, deps);
  return {
    [STAF_DEBUG_INTERFACE]: common.debug,
    [STAF_INTERFACE]: {
      methods: {
        list_controllers: common.listControllers,
        get_log_pages: (args) => model.logPages(controllerQuery(args)),
        get_all_log_pages: (args) => model.allLogPages(args[0] === true),
      },
    },
  };
}
