/**
 * Discovery log pages for the finder's host benchmarks, as a storage array's
 * discovery controller lists its subsystems: each subsystem once per port
 * (4 tcp ports), a vendor-style NQN of about 60 characters, dynamic
 * controller IDs. Deterministic, so that the measured process can make a
 * page again on every read instead of holding it.
 */
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import type { DiscoveryLogEntry } from "../../lib/core/discovery_log.ts";

/** Ports of one array: each subsystem is listed once per port. */
export const PORTS = 4;

/** The address of the i-th benchmark discovery controller (port 8009). */
export function dcAddress(dc: number): string {
  return `10.9.${dc >> 8}.${(dc & 255) + 1}`;
}

/** The stafd.conf `controller =` line of the i-th benchmark discovery controller. */
export function dcLine(dc: number): string {
  return `controller = transport=tcp;traddr=${dcAddress(dc)};trsvcid=8009;nqn=${DISCOVERY_NQN}`;
}

/**
 * The `count` entries of discovery controller `dc`'s page. `generation`
 * changes one subsystem's NQN (the last), as a page changes when a volume is
 * mapped: a finder reading it must save and publish it again.
 */
export function discoveryEntries(dc: number, count: number, generation = 0): DiscoveryLogEntry[] {
  const subsystems = Math.ceil(count / PORTS);
  return Array.from({ length: count }, (_, i) => {
    const subsystem = i % subsystems;
    const port = Math.floor(i / subsystems);
    const serial = (dc * 65_536 + subsystem).toString(16).padStart(8, "0");
    const last = subsystem === subsystems - 1 ? `-g${generation}` : "";
    return {
      trtype: "tcp",
      adrfam: "ipv4",
      subtype: "nvme",
      treq: "not required",
      portid: String(port + 1),
      cntlid: "65535",
      asqsz: "32",
      eflags: "0",
      trsvcid: "4420",
      subnqn: `nqn.1988-11.com.example:array-${dc}:00:3f8a1c2e${serial}${last}`,
      traddr: `172.${16 + port}.${dc >> 8}.${(dc & 255) + 1}`,
      sectype: "none",
    };
  });
}
