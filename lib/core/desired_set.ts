/**
 * The desired set (docs/design.md#desired-set): configured controllers plus the NVMe
 * subsystems of stafd's discovery log pages, minus excluded and invalid
 * ones. Pure: host names are resolved beforehand (see daemon/host_resolver.ts) and
 * handed in; every dropped entry is reported once through `report`.
 * As upstream does, exclusions apply to a configured controller both as
 * written (so `exclude = traddr=<host name>` matches) and once its host
 * name is resolved (so an exclusion by address matches too).
 */
import type { ListConfig } from "../config/conf_file.ts";
import type { GlobalConfig } from "../config/global_options.ts";
import type { SysConfig } from "../config/sys_conf.ts";
import type { ControllerKind } from "./kernel_controller.ts";
import { ConnectRefusedError } from "./kernel_api.ts";
import { type DiscoveryLogEntry, eflagsNcc, treqRequiresSecureChannel } from "./discovery_log.ts";
import type { ConnectRequest, FabricsOptions } from "./connect_request.ts";
import { preferredHostId } from "./host_id.ts";
import {
  isCompleteTid,
  makeTid,
  matchesExclude,
  parseIpAddress,
  printableTid,
  type TidFields,
  tidKey,
  type TransportId,
} from "./transport_id.ts";

/**
 * Where a member comes from: the configuration file, or a log page: an NVMe
 * subsystem entry (stacd), a referral to another discovery controller (stafd).
 */
export type Origin = "configured" | "discovered" | "referral";

/** What the desired set reads of stacd.conf or stafd.conf. */
export type DesiredConfig = GlobalConfig & ListConfig;

/** One controller stacd should be connected to. */
export interface DesiredController {
  key: string;
  tid: TransportId;
  id: string;
  origin: Origin;
  request: ConnectRequest;
  /** The log page entry it came from (discovered controllers). */
  dlpe?: DiscoveryLogEntry;
  ncc: boolean;
  /** Why it must not be connected (fail closed); see {@linkcode hostKeyRefusal}. */
  refused?: ConnectRefusedError;
}

/** One discovery controller's log page, as stafd reports it (already validated). */
export interface DiscoveredPage {
  /** The discovery controller's host side: host-traddr, host-iface, host-nqn. */
  hostTraddr: string;
  hostIface: string;
  hostNqn: string;
  entries: readonly DiscoveryLogEntry[];
}

export interface DesiredInput {
  config: DesiredConfig;
  sys: SysConfig;
  /** Host name -> address, from the system resolver; absent names did not resolve. */
  resolved: ReadonlyMap<string, string>;
  /** stafd's pages; undefined when stafd's answer is unknown (not on the bus, failing). */
  discovered: readonly DiscoveredPage[] | undefined;
}

/** Tells why an entry was left out; "warning" when the entry is probably a mistake. */
export type Report = (message: string, level?: "info" | "warning") => void;

const UNSPECIFIED = new Set(["", "0.0.0.0", "::"]);

/**
 * Computes the desired set, keyed by tidKey(). Configured entries win over
 * discovered ones, and take the log page entry of the same controller, so
 * that its NCC bit (connect-attempts-on-ncc) applies to it, as upstream's
 * update_dlpe() does. `kind` says what is wanted of the pages: their NVMe
 * subsystems (I/O controllers, stacd), or their referrals to other
 * discovery controllers (stafd).
 */
export function desiredControllers(
  input: DesiredInput,
  report: Report,
  kind: ControllerKind = "io",
): Map<string, DesiredController> {
  const wanted = kind === "io" ? "nvme" : "referral";
  const { config, sys } = input;
  const desired = new Map<string, DesiredController>();
  const defaults = { hostNqn: sys.hostNqn, ignoreIface: config.ignoreIface };
  const excluded = (tid: TransportId) => isExcluded(config, tid);

  // `make` gets the key and printable id computed here: each costs a string per entry.
  // Returns the member already under the same key, if any.
  const admit = (
    tid: TransportId,
    make: (tid: TransportId, key: string, id: string) => DesiredController,
  ): DesiredController | undefined => {
    const id = printableTid(tid);
    const problem = !isCompleteTid(tid)
      ? { text: "Incomplete identity", level: "warning" as const }
      : addressProblem(tid, config.ipFamily);
    if (problem) return void report(`${id} - ${problem.text}; skipped`, problem.level);
    if (excluded(tid)) return void report(`${id} - Excluded by configuration`);
    const key = tidKey(tid);
    const member = desired.get(key);
    if (member) return member;
    desired.set(key, make(tid, key, id));
  };

  for (const entry of config.controllers) {
    if (entry.invalid !== undefined) continue; // reported when the config was loaded
    const written = makeTid(entry.fields, defaults);
    if (excluded(written)) {
      report(`${printableTid(written)} - Excluded by configuration`);
      continue;
    }
    const fields = withResolvedAddress(entry.fields, input.resolved);
    if (!fields) {
      report(`${printableTid(written)} - Cannot resolve host name; skipped`, "warning");
      continue;
    }
    admit(makeTid(fields, defaults), (tid, key, id) => ({
      key,
      tid,
      id,
      origin: "configured",
      ncc: false,
      request: connectRequest(tid, sys, { ...config.connection, ...entry.options }, {
        hostKey: entry.dhchapSecret,
        ctrlKey: entry.dhchapCtrlSecret,
      }),
      refused: hostKeyRefusal(sys, entry.dhchapSecret),
    }));
  }

  for (const page of input.discovered ?? []) {
    for (const dlpe of page.entries) {
      if (dlpe.subtype !== wanted || UNSPECIFIED.has(dlpe.traddr.trim())) continue;
      const tid = makeTid({
        transport: dlpe.trtype,
        traddr: dlpe.traddr.trim(),
        trsvcid: dlpe.trsvcid.trim(),
        subsysnqn: dlpe.subnqn.trim(),
        hostTraddr: page.hostTraddr,
        hostIface: page.hostIface,
        hostNqn: page.hostNqn,
      }, defaults);
      if (kind === "io" && treqRequiresSecureChannel(dlpe.treq)) {
        report(
          `${printableTid(tid)} - Requires a secure channel (TLS), which is not supported; skipped`,
          "warning",
        );
        continue;
      }
      const configured = admit(tid, (tid, key, id) => ({
        key,
        tid,
        id,
        origin: kind === "io" ? "discovered" : "referral",
        dlpe,
        ncc: kind === "io" && eflagsNcc(dlpe.eflags),
        request: connectRequest(tid, sys, config.connection, {}),
        refused: hostKeyRefusal(sys, undefined),
      }));
      if (kind === "io" && configured?.origin === "configured" && configured.dlpe === undefined) {
        configured.dlpe = dlpe;
        configured.ncc = eflagsNcc(dlpe.eflags);
      }
    }
  }
  return desired;
}

/** Whether an exclude entry in force matches `tid`. */
function isExcluded(config: DesiredConfig, tid: TransportId): boolean {
  return config.excluded.some((e) => e.invalid === undefined && matchesExclude(tid, e.match));
}

/** For tcp and rdma: an IP address of an enabled family. fc and loop pass. */
function addressProblem(
  tid: TransportId,
  families: readonly (4 | 6)[],
): { text: string; level: "info" | "warning" } | undefined {
  switch (tid.transport) {
    case "fc":
    case "loop":
      return undefined;
    case "tcp":
    case "rdma": {
      const ip = parseIpAddress(tid.traddr);
      if (!ip) return { text: `Invalid address ${JSON.stringify(tid.traddr)}`, level: "warning" };
      if (!families.includes(ip.family)) {
        // A filter the operator chose, not a mistake.
        return { text: `IPv${ip.family} is not enabled (ip-family)`, level: "info" };
      }
      return undefined;
    }
    default:
      return { text: `Unsupported transport ${JSON.stringify(tid.transport)}`, level: "warning" };
  }
}

/** The fields with a host-name traddr replaced by its address; undefined if it did not resolve. */
function withResolvedAddress(
  fields: TidFields,
  resolved: ReadonlyMap<string, string>,
): TidFields | undefined {
  const { transport, traddr } = fields;
  if ((transport !== "tcp" && transport !== "rdma") || !traddr || parseIpAddress(traddr)) {
    return fields;
  }
  const address = resolved.get(traddr);
  return address === undefined ? undefined : { ...fields, traddr: address };
}

/** What connecting `tid` takes: its target, the host (with its key), the options. */
export function connectRequest(
  tid: TransportId,
  sys: SysConfig,
  options: FabricsOptions,
  keys: { hostKey?: string; ctrlKey?: string },
): ConnectRequest {
  return {
    target: {
      transport: tid.transport,
      traddr: tid.traddr,
      trsvcid: tid.trsvcid,
      subsysnqn: tid.subsysnqn,
      hostTraddr: tid.hostTraddr || undefined,
      hostIface: tid.hostIface || undefined,
    },
    host: {
      hostnqn: tid.hostNqn,
      hostid: preferredHostId(tid.hostNqn, sys),
      dhchapKey: keys.hostKey ?? sys.hostKey,
      symname: sys.hostSymname,
    },
    options: { ...options, dhchapCtrlKey: keys.ctrlKey },
  };
}

/**
 * Why a controller must not connect because it would use the sys.conf host
 * key (it has no `dhchap-secret` of its own) and that key is malformed:
 * connecting without it would silently drop authentication.
 */
export function hostKeyRefusal(
  sys: SysConfig,
  ownKey: string | undefined,
): ConnectRefusedError | undefined {
  if (ownKey !== undefined || sys.hostKeyProblem === undefined) return undefined;
  return new ConnectRefusedError(
    "key",
    `${sys.hostKeyProblem} (sys.conf [Host] key), and it has no dhchap-secret of its own`,
  );
}

/**
 * Host names among the configured tcp/rdma traddrs: what host_resolver.ts must
 * look up. A controller excluded as written is not looked up (upstream
 * neither): its name may not even resolve.
 */
export function hostNamesToResolve(config: DesiredConfig, sys: SysConfig): string[] {
  const names = new Set<string>();
  const defaults = { hostNqn: sys.hostNqn, ignoreIface: config.ignoreIface };
  for (const entry of config.controllers) {
    const { transport, traddr } = entry.fields;
    if (
      (transport === "tcp" || transport === "rdma") && traddr && !parseIpAddress(traddr) &&
      entry.invalid === undefined && !isExcluded(config, makeTid(entry.fields, defaults))
    ) {
      names.add(traddr);
    }
  }
  return [...names];
}
