/**
 * Where the stafd stand-in (tests/stafd_standin.ts) takes its pages from: a
 * JSON file, or real discovery controllers read through libnvme (in the
 * guest). A persistent discovery controller stays connected, and the kernel
 * turns the target's "discovery log changed" asynchronous event into a udev
 * change event carrying NVME_AEN; the source reports those so that the
 * stand-in re-reads and signals log_pages_changed, as stafd does. (Seen on
 * 6.1: the event comes with or without keep-alive, and nvmet sends no other
 * one until the log page has been read again, which the re-read does.)
 */
import type { DiscoveryLogEntry } from "../../lib/core/discovery_log.ts";
import {
  type ConnectTarget,
  DISCOVERY_NQN,
  type HostIdentity,
} from "../../lib/core/connect_request.ts";
import { deleteController } from "../../lib/kernel/fabrics_device.ts";
import { Libnvme, type NvmeController } from "../../lib/kernel/libnvme.ts";
import { decodeDiscoveryPage } from "../../lib/core/discovery_page.ts";
import { readDiscoveryLog } from "../../lib/kernel/discovery_log_reader.ts";
import { UdevMonitor } from "../../lib/kernel/udev_monitor.ts";
import { discover } from "../libnvme_extra.ts";

/** AEN result of a Discovery Log Page Change notice: log page 70h, info F0h, type 2 (notice). */
export const DISCOVERY_LOG_CHANGED_AEN = 0x70f002;

/** Pages for the stand-in, as the JSON text get_all_log_pages returns. */
export interface PageSource {
  read(): Promise<string>;
  /** Called when the pages changed on their own (a discovery AEN); not every source knows. */
  onChange?(listener: () => void): void;
  close(): Promise<void> | void;
}

/** The file's text, served as it is (so a test can serve garbage from a file too). */
export function fileSource(path: string): PageSource {
  return { read: () => Deno.readTextFile(path), close() {} };
}

/** A discovery controller in stafd.conf's `controller =` syntax: `transport=tcp;traddr=...;trsvcid=...`. */
export function parseDcSpec(spec: string): ConnectTarget {
  const fields = new Map(
    spec.split(";").map((kv): [string, string] => {
      const eq = kv.indexOf("=");
      return eq < 0 ? [kv.trim(), ""] : [kv.slice(0, eq).trim(), kv.slice(eq + 1)];
    }),
  );
  const get = (key: string) => fields.get(key)?.trim() || undefined;
  const target = {
    transport: get("transport") ?? "tcp",
    traddr: get("traddr") ?? "",
    trsvcid: get("trsvcid") ?? "8009",
    subsysnqn: get("nqn") ?? DISCOVERY_NQN,
    hostTraddr: get("host-traddr"),
    hostIface: get("host-iface"),
  };
  if (!target.traddr) {
    throw new TypeError(`No traddr in discovery controller ${JSON.stringify(spec)}`);
  }
  return target;
}

/** Options of {@linkcode discoverySource}. */
export interface DiscoverySourceOptions {
  /** Discovery controllers, as specs for {@linkcode parseDcSpec} or targets. */
  dcs: (string | ConnectTarget)[];
  /** Keep each one connected (kato 30 s) and follow its AENs; else connect per read. */
  persistent?: boolean;
  /** Default: /etc/nvme/hostnqn and hostid. */
  host?: HostIdentity;
}

/** A source reading real discovery controllers; `aens` lists the NVME_AEN values seen. */
export interface DiscoverySource extends PageSource {
  readonly aens: readonly string[];
  /** The kernel devices of the persistent discovery controllers. */
  readonly devices: readonly string[];
}

/** Opens libnvme (and, when persistent, connects the controllers and opens a udev monitor). */
export async function discoverySource(options: DiscoverySourceOptions): Promise<DiscoverySource> {
  const targets = options.dcs.map((dc) => typeof dc === "string" ? parseDcSpec(dc) : dc);
  const host = options.host ?? {
    hostnqn: Deno.readTextFileSync("/etc/nvme/hostnqn").trim(),
    hostid: Deno.readTextFileSync("/etc/nvme/hostid").trim(),
  };
  const lib = Libnvme.open();
  const ctrls: { ctrl: NvmeController; device: string }[] = [];
  const aens: string[] = [];
  // Opened before connecting, so that no event is missed: they queue in the socket.
  const monitor = options.persistent ? UdevMonitor.open({ subsystem: "nvme" }) : undefined;
  let loop: Promise<void> | undefined;
  const close = async () => {
    await monitor?.close();
    await loop;
    for (const { ctrl, device } of ctrls) {
      ctrl.close();
      await deleteController(device).catch(() => {});
    }
    lib.close();
  };
  try {
    for (const target of options.persistent ? targets : []) {
      const ctrl = lib.controller(host, target);
      try {
        ctrls.push({ ctrl, device: await ctrl.connect({ kato: 30 }) });
      } catch (error) {
        ctrl.close();
        throw error;
      }
    }
  } catch (error) {
    await close();
    throw error;
  }
  const devices = ctrls.map((c) => c.device);
  const read = async () => {
    const pages = [];
    for (const [i, target] of targets.entries()) {
      const ctrl = ctrls[i];
      const entries = ctrl
        ? decodeDiscoveryPage(await readDiscoveryLog(ctrl.device)).entries
        : await discover(lib, host, target);
      pages.push({
        "discovery-controller": {
          transport: target.transport,
          traddr: target.traddr,
          trsvcid: target.trsvcid,
          subsysnqn: target.subsysnqn,
          "host-traddr": target.hostTraddr ?? "",
          "host-iface": target.hostIface ?? "",
          "host-nqn": host.hostnqn,
          device: ctrl?.device ?? "",
        },
        "log-pages": entries.map(asStafdSends),
      });
    }
    return JSON.stringify(pages);
  };
  const onChange = (listener: () => void) => {
    if (!monitor || loop) return;
    loop = (async () => {
      for await (const event of monitor) {
        if (event.action !== "change" || !devices.includes(event.sysname)) continue;
        const aen = event.properties.NVME_AEN;
        if (aen === undefined) continue;
        aens.push(aen);
        if (Number.parseInt(aen, 16) === DISCOVERY_LOG_CHANGED_AEN) listener();
      }
    })();
  };
  return { read, onChange, close, aens, devices };
}

/** The entry as stafd sends it: libnvme's binding gives ints for these fields and nests sectype. */
function asStafdSends(entry: DiscoveryLogEntry): Record<string, unknown> {
  const { portid, cntlid, asqsz, eflags, sectype, ...rest } = entry;
  return {
    ...rest,
    portid: Number(portid),
    cntlid: Number(cntlid),
    asqsz: Number(asqsz),
    eflags: Number(eflags),
    ...(sectype === undefined ? {} : { tsas: { sectype } }),
  };
}
