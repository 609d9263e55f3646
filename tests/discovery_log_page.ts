/**
 * Decoding of the NVMe-oF discovery log page (NVMe Base specification,
 * Get Log Page 70h) into the string form stafd publishes over D-Bus, for
 * the stafd stand-in that reads real discovery controllers: the same names
 * and values that libnvme's Python binding, and so nvme-stas, produce.
 */
import type { DiscoveryLogEntry } from "../lib/core/discovery_log.ts";

export const DISCOVERY_LOG_HEADER_SIZE = 1024;
export const DISCOVERY_LOG_ENTRY_SIZE = 1024;

const TRTYPES: Record<number, string> = { 1: "rdma", 2: "fc", 3: "tcp", 254: "loop" };
const ADRFAMS: Record<number, string> = { 1: "ipv4", 2: "ipv6", 3: "infiniband", 4: "fc" };
const SUBTYPES: Record<number, string> = { 1: "referral", 2: "nvme", 3: "discovery" };
const TREQS: Record<number, string> = {
  0: "not specified",
  1: "required",
  2: "not required",
  4: "disable sqflow",
};
const SECTYPES: Record<number, string> = { 0: "none", 1: "tls", 2: "tls1.3" };

/** Entry field offsets (struct nvmf_disc_log_entry). */
const OFFSET = {
  trtype: 0,
  adrfam: 1,
  subtype: 2,
  treq: 3,
  portid: 4,
  cntlid: 6,
  asqsz: 8,
  eflags: 10,
  trsvcid: 32,
  subnqn: 256,
  traddr: 512,
  tsas: 768,
} as const;
const TRSVCID_SIZE = 32;
const NQN_SIZE = 256;
const TRADDR_SIZE = 256;

const decoder = new TextDecoder();

/** A fixed-size, space- or NUL-padded ASCII field. */
function text(bytes: Uint8Array, offset: number, size: number): string {
  const field = bytes.subarray(offset, offset + size);
  const nul = field.indexOf(0);
  return decoder.decode(nul < 0 ? field : field.subarray(0, nul)).trimEnd();
}

function named(names: Record<number, string>, value: number): string {
  return names[value] ?? String(value);
}

/**
 * Decodes a whole log page (header + entries). The record count is bounded
 * by the bytes actually present, so a short or lying page cannot overrun.
 */
export function decodeDiscoveryLog(page: Uint8Array): DiscoveryLogEntry[] {
  if (page.length < DISCOVERY_LOG_HEADER_SIZE) {
    throw new RangeError(`Discovery log page too short: ${page.length} bytes`);
  }
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const numrec = Number(view.getBigUint64(8, true));
  const present = Math.floor((page.length - DISCOVERY_LOG_HEADER_SIZE) / DISCOVERY_LOG_ENTRY_SIZE);
  const entries: DiscoveryLogEntry[] = [];
  for (let i = 0; i < Math.min(numrec, present); i++) {
    const base = DISCOVERY_LOG_HEADER_SIZE + i * DISCOVERY_LOG_ENTRY_SIZE;
    entries.push(decodeEntry(page.subarray(base, base + DISCOVERY_LOG_ENTRY_SIZE)));
  }
  return entries;
}

function decodeEntry(e: Uint8Array): DiscoveryLogEntry {
  const view = new DataView(e.buffer, e.byteOffset, e.byteLength);
  const trtype = view.getUint8(OFFSET.trtype);
  const entry: DiscoveryLogEntry = {
    trtype: named(TRTYPES, trtype),
    adrfam: named(ADRFAMS, view.getUint8(OFFSET.adrfam)),
    subtype: named(SUBTYPES, view.getUint8(OFFSET.subtype)),
    treq: named(TREQS, view.getUint8(OFFSET.treq)),
    portid: String(view.getUint16(OFFSET.portid, true)),
    cntlid: String(view.getUint16(OFFSET.cntlid, true)),
    asqsz: String(view.getUint16(OFFSET.asqsz, true)),
    eflags: String(view.getUint16(OFFSET.eflags, true)),
    trsvcid: text(e, OFFSET.trsvcid, TRSVCID_SIZE),
    subnqn: text(e, OFFSET.subnqn, NQN_SIZE),
    traddr: text(e, OFFSET.traddr, TRADDR_SIZE),
  };
  if (entry.trtype === "tcp") entry.sectype = named(SECTYPES, view.getUint8(OFFSET.tsas));
  return entry;
}
