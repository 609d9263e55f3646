/**
 * Controller identity (the TID) and the rules that say when two identities,
 * or an identity and an existing kernel connection, are the same controller.
 */

import ipaddr from "ipaddr.js";
import { DISCOVERY_NQN } from "./connect_request.ts";
import {
  type ControllerKind,
  isDiscoveryController,
  isIoController,
  type KernelController,
} from "./kernel_controller.ts";

/** The 7-tuple that identifies a controller; "" means not set. */
export interface TransportId {
  readonly transport: string;
  readonly traddr: string;
  readonly trsvcid: string;
  readonly subsysnqn: string;
  readonly hostTraddr: string;
  readonly hostIface: string;
  readonly hostNqn: string;
}

/** What a config entry, a log page entry or a D-Bus call gives: any field may be missing. */
export type TidFields = { -readonly [K in keyof TransportId]?: string };

/** What makeTid fills in. */
/** A TransportId's fields, in a fixed order (for files that store identities). */
export const TID_FIELDS = [
  "transport",
  "traddr",
  "trsvcid",
  "subsysnqn",
  "hostTraddr",
  "hostIface",
  "hostNqn",
] as const;

export interface TidDefaults {
  /** The host NQN from sys.conf. */
  hostNqn: string;
  /** [Global] ignore-iface: drop host-iface from every identity. */
  ignoreIface?: boolean;
}

/** The fields an exclude= entry may name; every one it names must equal. */
export type ExcludeMatch = Pick<
  TidFields,
  "transport" | "traddr" | "trsvcid" | "subsysnqn" | "hostIface" | "hostNqn"
>;

/**
 * The service id used when none is given: 4420 (the I/O port) for rdma, 8009
 * (the discovery port) for tcp, as upstream does. fc and loop get none: the
 * kernel neither takes nor reports a trsvcid for them, so a default would
 * keep them from ever matching their own kernel connection.
 */
export function defaultTrsvcid(transport: string): string {
  if (transport === "rdma") return "4420";
  return transport === "fc" || transport === "loop" ? "" : "8009";
}

/**
 * A TID with the defaults of docs/design.md#controller-identity applied (trsvcid, host-nqn,
 * ignore-iface).
 */
export function makeTid(fields: TidFields, defaults: TidDefaults): TransportId {
  const transport = (fields.transport ?? "").toLowerCase();
  return {
    transport,
    traddr: fields.traddr ?? "",
    trsvcid: fields.trsvcid || defaultTrsvcid(transport),
    subsysnqn: fields.subsysnqn ?? "",
    hostTraddr: fields.hostTraddr ?? "",
    hostIface: defaults.ignoreIface ? "" : fields.hostIface ?? "",
    hostNqn: fields.hostNqn || defaults.hostNqn,
  };
}

/**
 * Whether a TID names enough to connect: transport, traddr and subsysnqn, and
 * a trsvcid for the transports that have one (everything but fc and loop).
 */
export function isCompleteTid(tid: TransportId): boolean {
  const needsPort = tid.transport !== "fc" && tid.transport !== "loop";
  return tid.transport !== "" && tid.traddr !== "" && tid.subsysnqn !== "" &&
    (tid.trsvcid !== "" || !needsPort);
}

/**
 * An IP address in canonical text (IPv6 compressed and lowercase, an
 * IPv4-mapped IPv6 address as plain IPv4) with its family; undefined when
 * `text` is not one. IPv4 must be dotted-quad decimal: ipaddr.js alone
 * would take `127.1` or `0x7f.0.0.1`, which the kernel refuses.
 */
export function parseIpAddress(text: string): { family: 4 | 6; address: string } | undefined {
  // Every pass compares the same few addresses many times over (each
  // controller against each kernel connection): parse each text once. Only
  // addresses are kept: junk (a D-Bus caller's controller_info arguments)
  // would otherwise pin whatever it sends, up to the limit.
  const cached = ipCache.get(text);
  if (cached !== undefined) return cached;
  const parsed = parseIpAddressUncached(text);
  if (parsed === undefined || text.length > MAX_CACHED_TEXT) return parsed;
  if (ipCache.size >= IP_CACHE_LIMIT) ipCache.clear();
  ipCache.set(text, parsed);
  return parsed;
}

const IP_CACHE_LIMIT = 65_536;
/** The longest address text: IPv6 (45) with a zone that is an interface name (1 + 15). */
const MAX_CACHED_TEXT = 64;
const ipCache = new Map<string, { family: 4 | 6; address: string }>();

function parseIpAddressUncached(text: string): { family: 4 | 6; address: string } | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { family: 4, address: ipaddr.IPv4.parse(text).toString() };
  }
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  try {
    const v6 = ipaddr.IPv6.parse(text);
    if (v6.isIPv4MappedAddress() && v6.zoneId === undefined) {
      return { family: 4, address: v6.toIPv4Address().toString() };
    }
    return { family: 6, address: v6.toString() };
  } catch {
    return undefined;
  }
}

/**
 * `address` in the form identities compare: for tcp and rdma an IP address in
 * canonical text (a host name lowercased), for everything else lowercased
 * (fc WWNN/WWPN pairs, loop). Leaves "" as "".
 */
export function normalizeAddress(address: string, transport: string): string {
  if (address === "") return address; // host-traddr, mostly: no lookup needed
  if (transport === "tcp" || transport === "rdma") {
    return parseIpAddress(address)?.address ?? address.toLowerCase();
  }
  return address.toLowerCase();
}

/** Whether two addresses of `transport` are the same (`::1` = `0:0:0:0:0:0:0:1`). */
export function sameAddress(a: string, b: string, transport: string): boolean {
  return normalizeAddress(a, transport) === normalizeAddress(b, transport);
}

/** A string equal for equal TIDs (addresses normalised), to key Maps and Sets. */
export function tidKey(tid: TransportId): string {
  const transport = tid.transport.toLowerCase();
  return JSON.stringify([
    transport,
    normalizeAddress(tid.traddr, transport),
    tid.trsvcid,
    tid.subsysnqn,
    normalizeAddress(tid.hostTraddr, transport),
    tid.hostIface,
    tid.hostNqn,
  ]);
}

/** `(transport, traddr, trsvcid[, subsysnqn][, host-iface][, host-traddr])`, as upstream logs it. */
export function printableTid(tid: TransportId): string {
  const optional = [tid.subsysnqn, tid.hostIface, tid.hostTraddr].filter((f) => f !== "");
  return `(${[tid.transport, tid.traddr, tid.trsvcid, ...optional].join(", ")})`;
}

/** Whether `tid` is excluded by an exclude= entry: every field the entry names is equal. */
export function matchesExclude(tid: TransportId, exclude: ExcludeMatch): boolean {
  const { transport, traddr, ...exact } = exclude;
  if (transport !== undefined && transport.toLowerCase() !== tid.transport) return false;
  if (traddr !== undefined && !sameAddress(traddr, tid.traddr, tid.transport)) return false;
  return (Object.keys(exact) as (keyof typeof exact)[]).every((key) =>
    exact[key] === undefined || exact[key] === tid[key]
  );
}

/** Maps a local IP address (canonical text) to the interface that owns it. */
export type IfaceOfAddress = (address: string) => string | undefined;

/**
 * Whether an existing kernel connection is the controller `candidate`
 * names, so that it is adopted rather than connected a second time
 * (docs/design.md#matching-a-kernel-connection). Only fabrics controllers of the `kind` sought
 * (I/O for stacd, discovery for stafd) that are not being deleted can match. transport, trsvcid and host NQN must be equal, traddr equal as an
 * address, subsysnqn equal unless the candidate uses the well-known
 * discovery NQN. host-traddr and host-iface are compared per transport.
 */
export function matchesKernelController(
  candidate: TransportId,
  kernel: KernelController,
  ifaceOfAddress: IfaceOfAddress = () => undefined,
  kind: ControllerKind = "io",
): boolean {
  const isKind = kind === "io" ? isIoController : isDiscoveryController;
  // A controller on its way out would vanish right after being adopted.
  if (!isKind(kernel) || /^(deleting|dead)/.test(kernel.state)) return false;
  const transport = candidate.transport;
  if (
    kernel.transport !== transport || kernel.trsvcid !== candidate.trsvcid ||
    kernel.hostnqn !== candidate.hostNqn || !sameAddress(kernel.traddr, candidate.traddr, transport)
  ) return false;
  if (
    kernel.subsysnqn !== candidate.subsysnqn && candidate.subsysnqn !== DISCOVERY_NQN
  ) return false;

  switch (transport) {
    case "tcp":
      return tcpHostMatches(candidate, kernel, ifaceOfAddress);
    case "rdma":
      return candidate.hostTraddr === "" ||
        sameAddress(candidate.hostTraddr, kernel.hostTraddr ?? "", transport);
    case "fc": // host-traddr is mandatory for fc: always compared
      return candidate.hostTraddr.toLowerCase() === (kernel.hostTraddr ?? "").toLowerCase();
    default:
      return true;
  }
}

/**
 * tcp's host-traddr/host-iface rule. Since kernel 6.1 `src_addr` says where
 * the connection really is; before that, decide from host_traddr/host_iface
 * as upstream does, and assume a match when the kernel says nothing at all.
 */
function tcpHostMatches(c: TransportId, k: KernelController, ifaceOf: IfaceOfAddress): boolean {
  if (c.hostTraddr === "" && c.hostIface === "") return true;
  const src = k.srcAddr ? parseIpAddress(k.srcAddr)?.address : undefined;
  const kIface = k.hostIface ?? "";
  if (src !== undefined) {
    if (c.hostTraddr !== "" && !sameAddress(c.hostTraddr, src, "tcp")) return false;
    // The kernel binds the socket to host_iface when given: that beats a lookup.
    return c.hostIface === "" || c.hostIface === (kIface || ifaceOf(src));
  }
  const kTraddr = k.hostTraddr ? normalizeAddress(k.hostTraddr, "tcp") : "";
  if (kIface === "" && kTraddr === "") return true;
  if (c.hostTraddr !== "") {
    if (kTraddr !== "" && !sameAddress(c.hostTraddr, kTraddr, "tcp")) return false;
    // Only host_iface known: the source was one of that interface's addresses.
    if (kTraddr === "" && ifaceOf(normalizeAddress(c.hostTraddr, "tcp")) !== kIface) return false;
  }
  return c.hostIface === "" || c.hostIface === (kIface || ifaceOf(kTraddr));
}
