/**
 * Discovery log pages as a target lays them out (little-endian, padded
 * strings), from the string form: what the fake kernels hand the finder,
 * and what the page tests mutate.
 */
import type { DiscoveryLogEntry } from "../lib/core/discovery_log.ts";
import { DISCOVERY_LOG_ENTRY_SIZE, DISCOVERY_LOG_HEADER_SIZE } from "../lib/core/discovery_page.ts";

const CODES: Record<string, Record<string, number>> = {
  trtype: { rdma: 1, fc: 2, tcp: 3, loop: 254 },
  adrfam: { ipv4: 1, ipv6: 2, infiniband: 3, fc: 4 },
  subtype: { referral: 1, nvme: 2, discovery: 3 },
  treq: { "not specified": 0, required: 1, "not required": 2, "disable sqflow": 4 },
};

function code(field: keyof typeof CODES, value: string): number {
  return CODES[field]![value] ?? Number(value);
}

/** The bytes of a page holding `entries`; `genctr` as given. */
export function encodeDiscoveryPage(
  entries: readonly DiscoveryLogEntry[],
  genctr = 1n,
): Uint8Array {
  const bytes = new Uint8Array(
    DISCOVERY_LOG_HEADER_SIZE + entries.length * DISCOVERY_LOG_ENTRY_SIZE,
  );
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, genctr, true);
  view.setBigUint64(8, BigInt(entries.length), true);
  const enc = new TextEncoder();
  entries.forEach((e, i) => {
    const b = DISCOVERY_LOG_HEADER_SIZE + i * DISCOVERY_LOG_ENTRY_SIZE;
    view.setUint8(b, code("trtype", e.trtype));
    view.setUint8(b + 1, code("adrfam", e.adrfam));
    view.setUint8(b + 2, code("subtype", e.subtype));
    view.setUint8(b + 3, code("treq", e.treq));
    view.setUint16(b + 4, Number(e.portid), true);
    view.setUint16(b + 6, Number(e.cntlid), true);
    view.setUint16(b + 8, Number(e.asqsz), true);
    view.setUint16(b + 10, Number(e.eflags), true);
    bytes.fill(0x20, b + 32, b + 64);
    bytes.set(enc.encode(e.trsvcid), b + 32);
    bytes.set(enc.encode(e.subnqn), b + 256);
    bytes.fill(0x20, b + 512, b + 768);
    bytes.set(enc.encode(e.traddr), b + 512);
  });
  return bytes;
}
