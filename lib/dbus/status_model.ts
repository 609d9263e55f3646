/**
 * What the D-Bus service shows of stacd (StacModel), formatted from the
 * status the daemon published (status.ts): the controllers stacd manages
 * with the kernel's facts about each, as the last pass read them, and the
 * process info. Only public fields are copied: a controller's
 * DH-HMAC-CHAP keys are never part of any dict built here.
 */
import type { Clock } from "../clock.ts";
import type { ControllerQuery, StacModel } from "./model.ts";
import type { ControllerSnapshot } from "../daemon/reconciler.ts";
import type { StacdStatus } from "../daemon/status.ts";
import { runningTimerText, terminatorTimerText } from "../core/timer_text.ts";
import { makeTid, tidKey } from "../core/transport_id.ts";
import { hostProcessInfo, kernelSupportInfo, pyBool, SHOWN_ATTRIBUTES } from "./common_handlers.ts";

export interface StacModelOptions {
  /** The latest status the daemon published. */
  status: () => StacdStatus;
  /** Turns tracing on or off (the daemon owns the setting). */
  setTron: (on: boolean) => void;
  clock: Clock;
  lastKnownFile: string;
  /** Options the kernel's /dev/nvme-fabrics accepts (undefined: unknown). */
  kernelOptions: ReadonlySet<string> | undefined;
}

export function createStacModel(options: StacModelOptions): StacModel {
  const { status, clock } = options;

  const publicView = (c: ControllerSnapshot): Record<string, string> => ({
    transport: c.tid.transport,
    traddr: c.tid.traddr,
    trsvcid: c.tid.trsvcid,
    subsysnqn: c.tid.subsysnqn,
    "host-traddr": c.tid.hostTraddr,
    "host-iface": c.tid.hostIface,
    "host-nqn": c.tid.hostNqn,
    device: c.device ?? "nvme?",
  });

  const detailedView = (c: ControllerSnapshot): Record<string, string> => ({
    ...publicView(c),
    ...Object.fromEntries(SHOWN_ATTRIBUTES.map((a) => [a, c.kernel?.[a] ?? ""])),
    connected: pyBool(c.connected),
    "connect attempts": String(c.attempts),
    "retry connect timer": runningTimerText(c.retry, c.lastDelayMs, clock.now()),
    dlpe: c.dlpe ? JSON.stringify(c.dlpe) : "None",
    "dlpe.eflags.ncc": pyBool(c.ncc),
  });

  return {
    get tron() {
      return status().tron;
    },
    set tron(value: boolean) {
      options.setTron(value);
    },
    processInfo() {
      const s = status();
      const kernel = options.kernelOptions;
      return {
        ...hostProcessInfo(s, options.lastKnownFile),
        "config soak timer": runningTimerText(s.soak, s.soakIdleMs, clock.now()),
        ...kernelSupportInfo(kernel),
        "terminator.audit timer": terminatorTimerText(s.pass.terminator, clock.now()),
      };
    },
    listControllers(detailed) {
      return status().pass.controllers.map((c) => detailed ? detailedView(c) : publicView(c));
    },
    controllerInfo(query: ControllerQuery) {
      const s = status();
      const key = tidKey(
        makeTid(query, { hostNqn: s.host.hostNqn, ignoreIface: s.ignoreIface }),
      );
      const c = s.pass.controllers.find((m) => m.key === key);
      return c ? detailedView(c) : undefined;
    },
  };
}
