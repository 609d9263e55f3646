/**
 * The kernel's view of one NVMe controller, as /sys/class/nvme/nvmeX shows it.
 * Pure: the sysfs side reads the attribute files and hands their text here,
 * so the matching code can be tested without a kernel.
 */

import { DISCOVERY_NQN } from "./connect_request.ts";

/** The transports stacd manages; a PCIe controller is never adopted or disconnected. */
export const FABRICS_TRANSPORTS = ["tcp", "rdma", "fc", "loop"] as const;

/** One of {@link FABRICS_TRANSPORTS}. */
export type FabricsTransport = typeof FABRICS_TRANSPORTS[number];

/** One controller as sysfs describes it; an attribute the kernel lacks reads as "". */
export interface KernelController {
  /** `nvme3` */
  device: string;
  transport: string;
  traddr: string;
  /** "" for fc and loop, which have no service id. */
  trsvcid: string;
  hostTraddr?: string;
  /** Source address of the connection (tcp, kernel >= 6.1). */
  srcAddr?: string;
  hostIface?: string;
  subsysnqn: string;
  hostnqn: string;
  hostid: string;
  /** `io` or `discovery`; "" before kernel 5.18. */
  cntrltype: string;
  /** Shown as the kernel prints it: an I/O controller's reads "none", as in upstream's stacctl. */
  dctype: string;
  /** `live`, `connecting`, `resetting`, `deleting`, ... */
  state: string;
  model: string;
  serial: string;
  /** Whether namespaces hang below it: tells an I/O controller apart where cntrltype is "". */
  hasNamespaces?: boolean;
}

/** The fields of the `address` attribute. */
export interface SysfsAddress {
  traddr: string;
  trsvcid: string;
  hostTraddr?: string;
  hostIface?: string;
  srcAddr?: string;
}

/** True for tcp, rdma, fc and loop. */
export function isFabricsTransport(transport: string): transport is FabricsTransport {
  return (FABRICS_TRANSPORTS as readonly string[]).includes(transport);
}

/**
 * Parses `traddr=...,trsvcid=...[,host_traddr=...][,host_iface=...][,src_addr=...]`
 * (the kernel's nvmf_get_address() plus nvme-tcp's src_addr). Splitting on
 * `,` first matters: a plain search for `traddr=` would find it inside
 * `host_traddr=`. Unknown fields and a PCIe address (no `=`) are ignored.
 */
export function parseSysfsAddress(text: string): SysfsAddress {
  const address: SysfsAddress = { traddr: "", trsvcid: "" };
  for (const field of text.trim().split(",")) {
    const eq = field.indexOf("=");
    if (eq < 0) continue;
    const value = field.slice(eq + 1).trim();
    switch (field.slice(0, eq).trim()) {
      case "traddr":
        address.traddr = value;
        break;
      case "trsvcid":
        address.trsvcid = value;
        break;
      case "host_traddr":
        address.hostTraddr = value;
        break;
      case "host_iface":
        address.hostIface = value;
        break;
      case "src_addr":
        address.srcAddr = value;
        break;
    }
  }
  return address;
}

/**
 * Builds a {@link KernelController} from attribute texts; `read(name)` returns
 * the content of `/sys/class/nvme/<device>/<name>` or undefined when absent.
 */
export function kernelControllerFromAttributes(
  device: string,
  read: (attribute: string) => string | undefined,
  options: { hasNamespaces?: boolean } = {},
): KernelController {
  const attr = (name: string) => cleanAttribute(read(name));
  return {
    device,
    transport: attr("transport"),
    ...parseSysfsAddress(attr("address")),
    subsysnqn: attr("subsysnqn"),
    hostnqn: attr("hostnqn"),
    hostid: attr("hostid"),
    cntrltype: attr("cntrltype"),
    dctype: shownAttribute(read("dctype")),
    state: attr("state"),
    model: attr("model"),
    serial: attr("serial"),
    hasNamespaces: options.hasNamespaces,
  };
}

/**
 * Whether stacd may adopt this controller: a fabrics I/O controller. Before
 * kernel 5.18 there is no cntrltype, and only namespaces (which discovery
 * controllers never have) tell an I/O controller apart.
 */
export function isIoController(kernel: KernelController): boolean {
  if (!isFabricsTransport(kernel.transport)) return false;
  if (kernel.cntrltype === "io") return true;
  if (kernel.cntrltype === "discovery") return false;
  return kernel.subsysnqn !== DISCOVERY_NQN &&
    kernel.hasNamespaces === true;
}

/** The two kinds of fabrics controllers: I/O (stacd's) and discovery (stafd's). */
export type ControllerKind = "io" | "discovery";

/**
 * Whether a kernel controller is a fabrics discovery controller: the
 * kernel says so (5.18+), or it answers to the well-known discovery NQN,
 * or (before 5.18, with a unique TP8013 NQN) it has no namespaces.
 */
export function isDiscoveryController(kernel: KernelController): boolean {
  if (!isFabricsTransport(kernel.transport)) return false;
  if (kernel.cntrltype !== "") return kernel.cntrltype === "discovery";
  return kernel.subsysnqn === DISCOVERY_NQN || kernel.hasNamespaces === false;
}

/** sysfs prints "(efault)" or "none" for attributes a transport lacks; both mean unknown. */
function cleanAttribute(text: string | undefined): string {
  const value = shownAttribute(text);
  return value.toLowerCase() === "none" ? "" : value;
}

/** An attribute's text with only "(efault)" (the kernel's "not for this transport") blanked. */
function shownAttribute(text: string | undefined): string {
  const value = (text ?? "").trim();
  return value === "(efault)" ? "" : value;
}
