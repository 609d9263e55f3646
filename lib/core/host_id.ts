/**
 * Which host ID goes with a host NQN in a connect. The kernel keeps one
 * host per NQN (drivers/nvme/host/fabrics.c, nvmf_host_add). Since 6.5 it
 * refuses with EINVAL a connect whose NQN it already pairs with another
 * ID, or whose ID it already pairs with another NQN; before, it took the
 * NQN's existing host and wrote the new ID over it, so every controller of
 * that NQN changed ID. A pair lasts while a controller uses it, so the
 * pairs in force are the hostnqn/hostid of the controllers in sysfs
 * (discovery controllers included: stafd's may use another host NQN and
 * ID than stacd's sys.conf, and stafd reports that NQN with its pages).
 *
 * The rule, so that stacd never sends a pair the kernel refuses and never
 * takes sys.conf's ID away from sys.conf's NQN:
 * 1. an NQN the kernel already pairs: the kernel's ID (any other is refused);
 * 2. sys.conf's NQN: sys.conf's ID;
 * 3. another NQN of the form `nqn.2014-08.org.nvmexpress:uuid:<uuid>`: that
 *    UUID, as nvme-cli and libnvme derive it (nvmf_hostid_from_hostnqn),
 *    unless it is sys.conf's ID;
 * 4. any other NQN: a UUID derived from sys.conf's NQN and that NQN (a
 *    hash, RFC 9562 version 8 layout): the same on every connect and
 *    restart, and another for another host;
 * and where the kernel refuses it (6.5+), an ID the kernel pairs with
 * another NQN is not sent: the connect fails with a
 * {@link HostIdConflictError} instead. An older kernel takes it and harms
 * nothing (the NQN's own host keeps that ID): there it is sent.
 */
import type { SysConfig } from "../config/sys_conf.ts";
import type { HostIdentity } from "./connect_request.ts";
import type { KernelController } from "./kernel_controller.ts";

const UUID_NQN =
  /^nqn\.2014-08\.org\.nvmexpress:uuid:([0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12})$/i;

/** The UUID of a uuid-form NQN, lowercased; undefined for any other NQN. */
export function uuidOfNqn(nqn: string): string | undefined {
  return UUID_NQN.exec(nqn)?.[1]?.toLowerCase();
}

/** The host ID to connect `hostNqn` with, before the kernel's pairs are known (rules 2-4). */
export function preferredHostId(hostNqn: string, sys: SysConfig): string {
  if (hostNqn === sys.hostNqn) return sys.hostId ?? "";
  const fromNqn = uuidOfNqn(hostNqn);
  if (fromNqn !== undefined && fromNqn !== sys.hostId) return fromNqn;
  return derivedHostId(sys.hostNqn, hostNqn);
}

/**
 * A version 8 (custom) UUID from sys.conf's NQN and another host NQN: four
 * FNV-1a hashes with different starting values, each finalised. Only
 * stability and telling a few names apart matter here, not strength:
 * node:crypto would cost the daemon ~6 MB of resident memory for one rarely
 * used ID.
 */
function derivedHostId(sysNqn: string, hostNqn: string): string {
  const text = new TextEncoder().encode(`stacd host id\n${sysNqn}\n${hostNqn}`);
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  for (let lane = 0; lane < 4; lane++) {
    let hash = (0x811c9dc5 ^ Math.imul(lane, 0x9e3779b9)) >>> 0;
    for (const byte of text) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    // MurmurHash3's finaliser: similar names give unlike IDs.
    hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
    hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
    view.setUint32(lane * 4, (hash ^ (hash >>> 16)) >>> 0);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x80; // version 8
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
    .join("-");
}

/** A host ID the kernel already pairs with another host NQN: connecting would fail with EINVAL. */
export class HostIdConflictError extends Error {
  constructor(hostNqn: string, hostId: string, holder: KernelController) {
    super(
      `Host ID ${hostId} is paired with host NQN ${holder.hostnqn} (${holder.device}) in the ` +
        `kernel, which refuses it for host NQN ${hostNqn}; not connecting`,
    );
    this.name = "HostIdConflictError";
  }
}

/**
 * `host` with the ID the kernel pairs with its NQN (rule 1), or as it is.
 * @throws {HostIdConflictError} when `strict` (the kernel refuses a shared
 * ID) and its ID is paired with another NQN.
 */
export function pairedHost(
  host: HostIdentity,
  kernel: readonly KernelController[],
  strict: boolean,
): HostIdentity {
  const sameNqn = kernel.find((k) => k.hostnqn === host.hostnqn && k.hostid !== "");
  if (sameNqn) {
    return sameNqn.hostid === host.hostid ? host : { ...host, hostid: sameNqn.hostid };
  }
  const holder = !strict || host.hostid === ""
    ? undefined
    : kernel.find((k) => k.hostid === host.hostid && k.hostnqn !== "");
  if (holder) throw new HostIdConflictError(host.hostnqn, host.hostid, holder);
  return host;
}

/**
 * Whether kernel `release` (uname -r) refuses a host ID paired with another
 * host NQN: mainline 6.5 and later. Measured: Debian's 6.12 refuses, its 6.1
 * does not. A distribution kernel with the change backported reads as lax:
 * its EINVAL then reaches the log as before.
 */
export function refusesSharedHostId(release: string): boolean {
  const [major = 0, minor = 0] = (/^(\d+)\.(\d+)/.exec(release) ?? []).slice(1).map(Number);
  return major > 6 || (major === 6 && minor >= 5);
}
