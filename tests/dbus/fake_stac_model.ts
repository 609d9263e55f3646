/**
 * A {@linkcode StacModel} made of plain objects, for tests of the D-Bus
 * service and stacctl. Its controllers carry configuration the way the
 * daemon's do, DH-HMAC-CHAP secret included, so tests can show that what
 * leaves over D-Bus is the public view only; `leaky: true` makes the model
 * itself return the secret, to exercise the service's last-line filter.
 */
import type { ControllerQuery, StacModel } from "../../lib/dbus/model.ts";

export const HOST_NQN = "nqn.2014-08.org.nvmexpress:uuid:4f9cfa8c-9eaa-4102-a265-a8f20f71a6c6";
export const HOST_ID = "5342a3e7-82a8-4d04-b5ea-71eb6e6f24d9";
/** The key configured for controller nvme2 (never to be seen on the bus). */
export const SECRET = "DHHC-1:00:ia6zGodOr2SdO3hSSEkwuvm6vmlGbwqTUvTSa2eBSVw5ZGto:";

interface FakeController {
  public: Record<string, string>;
  detail: Record<string, string>;
  /** What the daemon keeps but must not show. */
  config: Record<string, string>;
}

function controller(
  device: string,
  subsysnqn: string,
  config: Record<string, string> = {},
  over: Record<string, string> = {},
) {
  const id = {
    transport: "tcp",
    traddr: "127.0.0.1",
    trsvcid: "4420",
    subsysnqn,
    "host-traddr": "",
    "host-iface": "",
    "host-nqn": HOST_NQN,
    device,
  };
  const detail = {
    hostid: HOST_ID,
    hostnqn: HOST_NQN,
    model: "Linux",
    serial: `serial-${device}`,
    dctype: "none",
    cntrltype: "io",
    connected: "True",
    "connect attempts": "0",
    "retry connect timer": "60.0s [off]",
    dlpe: "None",
    "dlpe.eflags.ncc": "False",
    ...over,
  };
  return { public: id, detail, config };
}

export interface FakeStacModel extends StacModel {
  /** How many times each method was called. */
  calls: Record<string, number>;
}

/** The fake: two connected controllers, nvme0 and nvme2 (nvme2 with a DH-HMAC-CHAP key). */
export function fakeStacModel(
  options: {
    leaky?: boolean;
    throwing?: boolean;
    controllers?: number;
    /** Detail fields (model, serial, ...) nvme0 reports instead of the usual ones. */
    detail?: Record<string, string>;
  } = {},
): FakeStacModel {
  const controllers: FakeController[] = [
    controller("nvme0", "nqn.2026-11.io.test:s9", {}, options.detail),
    controller("nvme2", "nqn.2026-11.io.test:s13", { "dhchap-secret": SECRET }),
  ];
  for (let i = 2; i < (options.controllers ?? 2); i++) {
    controllers.push(controller(`nvme${i + 1}`, `nqn.2026-11.io.test:n${i}`));
  }
  const calls: Record<string, number> = {};
  const count = (name: string) => {
    calls[name] = (calls[name] ?? 0) + 1;
    if (options.throwing) throw new TypeError(`${name} broke`);
  };
  // A leaky model returns its config along with the public view: the bug the filter must catch.
  const view = (c: FakeController, detailed: boolean) => ({
    ...c.public,
    ...(detailed ? c.detail : {}),
    ...(options.leaky ? { ...c.config, note: c.config["dhchap-secret"] ?? "" } : {}),
  });
  const model: FakeStacModel = {
    tron: false,
    calls,
    processInfo() {
      count("processInfo");
      return {
        tron: model.tron,
        "log-level": model.tron ? "DEBUG" : "INFO",
        hostnqn: HOST_NQN,
        hostid: HOST_ID,
        hostkey: options.leaky ? SECRET : null,
        symname: null,
        "last known config file": "/run/stacd/last-known-config",
        "config soak timer": "1.5s [off]",
        "kernel support.TP8013": "True",
        "kernel support.host_iface": "True",
        "terminator.audit timer": "30.0s [off]",
      };
    },
    listControllers(detailed) {
      count("listControllers");
      return controllers.map((c) => view(c, detailed));
    },
    controllerInfo(q: ControllerQuery) {
      count("controllerInfo");
      const c = controllers.find((c) =>
        c.public.transport === q.transport && c.public.traddr === q.traddr &&
        c.public.trsvcid === q.trsvcid && c.public.subsysnqn === q.subsysnqn &&
        c.public["host-traddr"] === q.hostTraddr && c.public["host-iface"] === q.hostIface &&
        c.public["host-nqn"] === q.hostNqn
      );
      return c ? view(c, true) : undefined;
    },
  };
  return model;
}
