/**
 * What stacd's and stafd's objects share (docs/design.md#d-bus-api): the debug interface (tron,
 * root only to set; log_level; process_info; controller_info) and
 * list_controllers, each dict through the secret guard; and the keys of
 * process_info both daemons show as upstream does.
 */
import type { Logger } from "../logger.ts";
import { logLevel } from "./bus_service.ts";
import { type ControllerQuery, controllerQuery } from "./model.ts";
import type { Caller, ObjectHandlers } from "./object_dispatch.ts";
import { secretGuard, stringValues } from "./secrets_filter.ts";

/** What both daemons' models have. */
export interface CommonModel {
  tron: boolean;
  processInfo(): Record<string, string | boolean | null>;
  listControllers(detailed: boolean): Record<string, string>[];
  controllerInfo(query: ControllerQuery): Record<string, string> | undefined;
}

export interface CommonDeps {
  log: Logger;
  requireRoot(caller: Caller): Promise<void>;
  /** Called after tron was set over D-Bus (stacd announces it). */
  afterTron?(tron: boolean): void;
}

type InterfaceHandlers = ObjectHandlers[string];
type MethodHandler = NonNullable<InterfaceHandlers["methods"]>[string];

/** The debug interface's handlers, and list_controllers, over `model`. */
export function commonHandlers(
  model: CommonModel,
  deps: CommonDeps,
): { debug: InterfaceHandlers; listControllers: MethodHandler } {
  const { log } = deps;
  const safe = secretGuard(log);
  return {
    debug: {
      properties: {
        tron: {
          get: () => model.tron,
          set: async (value, caller) => {
            await deps.requireRoot(caller);
            model.tron = value as boolean;
            log.info(`tron ${model.tron ? "on" : "off"} (set over D-Bus by ${caller.sender})`);
            deps.afterTron?.(model.tron);
          },
        },
        log_level: { get: () => logLevel(model.tron) },
      },
      methods: {
        process_info: () => JSON.stringify(safe(model.processInfo(), "process_info")),
        controller_info: (args) => {
          const info = model.controllerInfo(controllerQuery(args));
          return JSON.stringify(info ? safe(stringValues(info), "controller_info") : {});
        },
      },
    },
    listControllers: (args) =>
      model.listControllers(args[0] === true).map((c) => safe(stringValues(c), "list_controllers")),
  };
}

/** Python's str() of a bool, as upstream shows them. */
export const pyBool = (b: boolean) => (b ? "True" : "False");

/** The kernel's attributes a detailed controller dict shows, as upstream reads them through udev. */
export const SHOWN_ATTRIBUTES = [
  "hostid",
  "hostnqn",
  "model",
  "serial",
  "dctype",
  "cntrltype",
] as const;

/** What process_info shows of the host and the kernel, in upstream's keys and order. */
export function hostProcessInfo(
  s: {
    tron: boolean;
    host: { hostNqn: string; hostId?: string; hasHostKey: boolean; symname?: string };
  },
  lastKnownFile: string,
): Record<string, string | boolean | null> {
  return {
    tron: s.tron,
    "log-level": s.tron ? "DEBUG" : "INFO",
    hostnqn: s.host.hostNqn,
    hostid: s.host.hostId ?? null,
    // Upstream shows the key itself here; presence is all a caller needs.
    hostkey: s.host.hasHostKey ? "<redacted>" : null,
    symname: s.host.symname ?? null,
    "last known config file": lastKnownFile,
  };
}

/** process_info's kernel support keys, from the options /dev/nvme-fabrics takes. */
export function kernelSupportInfo(
  kernel: ReadonlySet<string> | undefined,
): Record<string, string> {
  return {
    "kernel support.TP8013": kernel ? pyBool(kernel.has("discovery")) : "Unknown",
    "kernel support.host_iface": kernel ? pyBool(kernel.has("host_iface")) : "Unknown",
  };
}
