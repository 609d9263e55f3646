/**
 * The daemon's state as the D-Bus service shows it (StacModel): the
 * controllers stacd manages with the kernel's facts about each, and the
 * process info. Only public fields are copied: a controller's
 * DH-HMAC-CHAP keys are never part of any dict built here.
 */
import type { Daemon } from "./daemon.ts";
import type { ControllerQuery, StacModel } from "./dbus/model.ts";
import type { Logger } from "./logger.ts";
import type { Managed } from "./reconciler.ts";
import { makeTid, tidKey } from "./transport_id.ts";

export interface StacModelOptions {
  daemon: Daemon;
  log: Logger;
  lastKnownFile: string;
  /** Options the kernel's /dev/nvme-fabrics accepts (undefined: unknown). */
  kernelOptions: ReadonlySet<string> | undefined;
  /** Reads one attribute of /sys/class/nvme/<device>; tests inject a fake. */
  readAttribute?: (device: string, attribute: string) => string | undefined;
}

const pyBool = (b: boolean) => (b ? "True" : "False");

/** The sysfs attributes list_controllers(true) shows, as upstream reads them through udev. */
const SHOWN_ATTRIBUTES = ["hostid", "hostnqn", "model", "serial", "dctype", "cntrltype"] as const;
type Shown = Record<typeof SHOWN_ATTRIBUTES[number], string>;

/**
 * An attribute's text as upstream shows it: trimmed, with only "(efault)"
 * (the kernel's "not for this transport") blanked, so an I/O controller's
 * dctype reads "none" as in upstream's stacctl, not "".
 */
function shownAttribute(text: string | undefined): string {
  const value = (text ?? "").trim();
  return value === "(efault)" ? "" : value;
}

function sysfsAttribute(device: string, attribute: string): string | undefined {
  try {
    return Deno.readTextFileSync(`/sys/class/nvme/${device}/${attribute}`);
  } catch {
    return undefined;
  }
}

export function createStacModel(
  options: StacModelOptions,
): StacModel & { forget(device: string): void } {
  const { daemon, log } = options;
  const read = options.readAttribute ?? sysfsAttribute;
  // sysfs facts of a device do not change while it exists: read once, forget on uevents.
  const kernelFacts = new Map<string, Shown>();
  const facts = (device: string | undefined): Shown | undefined => {
    if (!device) return undefined;
    let k = kernelFacts.get(device);
    if (!k) {
      if (shownAttribute(read(device, "transport")) === "") return undefined; // gone
      const shown = SHOWN_ATTRIBUTES.map((a) => [a, shownAttribute(read(device, a))]);
      k = Object.fromEntries(shown) as Shown;
      kernelFacts.set(device, k);
    }
    return k;
  };

  const publicView = (m: Managed): Record<string, string> => ({
    transport: m.tid.transport,
    traddr: m.tid.traddr,
    trsvcid: m.tid.trsvcid,
    subsysnqn: m.tid.subsysnqn,
    "host-traddr": m.tid.hostTraddr,
    "host-iface": m.tid.hostIface,
    "host-nqn": m.tid.hostNqn,
    device: m.controller.device ?? "nvme?",
  });

  const detailedView = (m: Managed): Record<string, string> => {
    const k = facts(m.controller.device);
    return {
      ...publicView(m),
      hostid: k?.hostid ?? "",
      hostnqn: k?.hostnqn ?? "",
      model: k?.model ?? "",
      serial: k?.serial ?? "",
      dctype: k?.dctype ?? "",
      cntrltype: k?.cntrltype ?? "",
      connected: pyBool(m.controller.connected),
      "connect attempts": String(m.controller.attempts),
      "retry connect timer": m.controller.retryTimerText,
      dlpe: m.dlpe ? JSON.stringify(m.dlpe) : "None",
      "dlpe.eflags.ncc": pyBool(m.controller.spec.ncc),
    };
  };

  return {
    get tron() {
      return log.tron;
    },
    set tron(value: boolean) {
      if (log.tron === value) return;
      log.tron = value;
      log.info(`Trace ${value ? "on" : "off"} (set over D-Bus)`);
    },
    processInfo() {
      const { sys } = daemon.configuration;
      const kernel = options.kernelOptions;
      return {
        tron: log.tron,
        "log-level": log.tron ? "DEBUG" : "INFO",
        hostnqn: sys.hostNqn,
        hostid: sys.hostId ?? null,
        // Upstream shows the key itself here; presence is all a caller needs.
        hostkey: sys.hostKey ? "<redacted>" : null,
        symname: sys.hostSymname ?? null,
        "last known config file": options.lastKnownFile,
        "config soak timer": daemon.soakTimerText(),
        "kernel support.TP8013": kernel ? pyBool(kernel.has("discovery")) : "Unknown",
        "kernel support.host_iface": kernel ? pyBool(kernel.has("host_iface")) : "Unknown",
        "terminator.audit timer": daemon.reconciler.terminatorTimerText(),
      };
    },
    listControllers(detailed) {
      return daemon.reconciler.managed.map((m) => detailed ? detailedView(m) : publicView(m));
    },
    controllerInfo(query: ControllerQuery) {
      const { sys, config } = daemon.configuration;
      const key = tidKey(makeTid(query, { hostNqn: sys.hostNqn, ignoreIface: config.ignoreIface }));
      const m = daemon.reconciler.managed.find((c) => c.key === key);
      return m ? detailedView(m) : undefined;
    },
    forget(device: string) {
      kernelFacts.delete(device);
    },
  };
}
