/**
 * The NVMe-oF discovery log page (NVMe Base specification, Get Log Page
 * 70h) from its bytes to the string form stafd publishes over D-Bus: the
 * names and values libnvme's Python binding, and so nvme-stas, produce.
 *
 * A page comes from a target, so it is untrusted input
 * (docs/design.md#untrusted-answers): the header must make sense or the
 * whole page is refused (BadDiscoveryPage: the caller keeps what it knew);
 * an entry that could never be connected to (unknown transport or subtype,
 * an address or NQN that is not printable ASCII, an empty one) is skipped
 * with one bounded line saying why. Nothing is read past the bytes present.
 */
import type { DiscoveryLogEntry } from "./discovery_log.ts";

export const DISCOVERY_LOG_HEADER_SIZE = 1024;
export const DISCOVERY_LOG_ENTRY_SIZE = 1024;
/**
 * Records a page may hold. A real discovery controller lists one entry per
 * subsystem and port; 4,096 is far above any array's, and bounds the page
 * to 4 MB.
 */
export const MAX_DISCOVERY_RECORDS = 4096;

const TRTYPES = new Map([[1, "rdma"], [2, "fc"], [3, "tcp"], [254, "loop"]]);
const ADRFAMS = new Map([[1, "ipv4"], [2, "ipv6"], [3, "infiniband"], [4, "fc"]]);
const SUBTYPES = new Map([[1, "referral"], [2, "nvme"], [3, "discovery"]]);
const TREQS = new Map([
  [0, "not specified"],
  [1, "required"],
  [2, "not required"],
  [4, "disable sqflow"],
]);
const SECTYPES = new Map([[0, "none"], [1, "tls"], [2, "tls1.3"]]);

/** Entry field offsets (struct nvmf_disc_log_entry) and string field sizes. */
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
const SIZE = { trsvcid: 32, subnqn: 256, traddr: 256 } as const;
/** NVMe Base 4.5: an NQN is at most 223 bytes (the field has room for a NUL). */
const NQN_MAX = 223;
/** Problem lines kept per page; the rest are counted. */
const MAX_PROBLEMS = 10;

/** The page's header cannot be trusted: the page is refused as a whole. */
export class BadDiscoveryPage extends Error {
  override name = "BadDiscoveryPage";
}

/** A decoded page: the entries kept and why the others were skipped. */
export interface DecodedPage {
  /** Generation counter: changes whenever the target's page does. */
  genctr: bigint;
  /** The record count the header claims. */
  numrec: number;
  entries: DiscoveryLogEntry[];
  problems: string[];
}

/**
 * Reads the header's record count, so the caller knows how many bytes the
 * page has before copying them out of libnvme's buffer.
 * @throws {BadDiscoveryPage} when the count is over the limit.
 */
export function recordCount(header: Uint8Array, max = MAX_DISCOVERY_RECORDS): number {
  if (header.length < 16) throw new BadDiscoveryPage(`header of ${header.length} bytes`);
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const numrec = view.getBigUint64(8, true);
  if (numrec > BigInt(max)) {
    throw new BadDiscoveryPage(`${numrec} records exceed the limit of ${max}`);
  }
  return Number(numrec);
}

/**
 * Decodes a whole page (header + entries).
 * @throws {BadDiscoveryPage} when the header is short, of an unknown record
 * format, or claims more records than the limit or than the bytes hold.
 */
export function decodeDiscoveryPage(
  page: Uint8Array,
  max = MAX_DISCOVERY_RECORDS,
): DecodedPage {
  if (page.length < DISCOVERY_LOG_HEADER_SIZE) {
    throw new BadDiscoveryPage(`page of ${page.length} bytes is shorter than its header`);
  }
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const numrec = recordCount(page, max);
  const recfmt = view.getUint16(16, true);
  if (recfmt !== 0) throw new BadDiscoveryPage(`record format ${recfmt} is unknown`);
  const present = Math.floor((page.length - DISCOVERY_LOG_HEADER_SIZE) / DISCOVERY_LOG_ENTRY_SIZE);
  if (numrec > present) {
    throw new BadDiscoveryPage(`header claims ${numrec} records, the page holds ${present}`);
  }
  const entries: DiscoveryLogEntry[] = [];
  const problems: string[] = [];
  let unreported = 0;
  for (let i = 0; i < numrec; i++) {
    const base = DISCOVERY_LOG_HEADER_SIZE + i * DISCOVERY_LOG_ENTRY_SIZE;
    const decoded = decodeEntry(page.subarray(base, base + DISCOVERY_LOG_ENTRY_SIZE));
    if (typeof decoded !== "string") entries.push(decoded);
    else if (problems.length < MAX_PROBLEMS) problems.push(`entry ${i}: ${decoded}; skipped`);
    else unreported++;
  }
  if (unreported > 0) problems.push(`... and ${unreported} more entries skipped`);
  return { genctr: view.getBigUint64(0, true), numrec, entries, problems };
}

/** One entry, or why it cannot be used. */
function decodeEntry(e: Uint8Array): DiscoveryLogEntry | string {
  const view = new DataView(e.buffer, e.byteOffset, e.byteLength);
  const code = (field: "trtype" | "adrfam" | "subtype" | "treq") => view.getUint8(OFFSET[field]);
  const trtype = TRTYPES.get(code("trtype"));
  if (trtype === undefined) return `transport type ${code("trtype")} is unknown`;
  const subtype = SUBTYPES.get(code("subtype"));
  if (subtype === undefined) return `subsystem type ${code("subtype")} is unknown`;
  // The loop transport has no address family (0).
  const adrfam = ADRFAMS.get(code("adrfam")) ?? (trtype === "loop" ? "" : undefined);
  if (adrfam === undefined) return `address family ${code("adrfam")} is unknown`;
  const strings: Record<keyof typeof SIZE, string> = { trsvcid: "", subnqn: "", traddr: "" };
  for (const key of ["trsvcid", "subnqn", "traddr"] as const) {
    const read = printable(e.subarray(OFFSET[key], OFFSET[key] + SIZE[key]));
    if (typeof read !== "string") return `${key} holds byte 0x${hex(read.byte)}`;
    strings[key] = read;
  }
  if (strings.subnqn === "") return "subnqn is empty";
  if (strings.subnqn.length > NQN_MAX) {
    return `subnqn of ${strings.subnqn.length} characters exceeds ${NQN_MAX}`;
  }
  if (strings.traddr === "" && trtype !== "loop") return "traddr is empty";
  const treqCode = code("treq");
  const entry: DiscoveryLogEntry = {
    trtype,
    adrfam,
    subtype,
    treq: TREQS.get(treqCode) ?? String(treqCode),
    portid: String(view.getUint16(OFFSET.portid, true)),
    cntlid: String(view.getUint16(OFFSET.cntlid, true)),
    asqsz: String(view.getUint16(OFFSET.asqsz, true)),
    eflags: String(view.getUint16(OFFSET.eflags, true)),
    ...strings,
  };
  if (trtype === "tcp") {
    const sectype = view.getUint8(OFFSET.tsas);
    entry.sectype = SECTYPES.get(sectype) ?? String(sectype);
  }
  return entry;
}

/**
 * A fixed-size ASCII field, NUL- or space-padded: the text before the first
 * NUL, trailing spaces removed. Any other byte outside printable ASCII makes
 * the field unusable (it would forge log lines or split connect options).
 */
function printable(field: Uint8Array): string | { byte: number } {
  const nul = field.indexOf(0);
  const used = nul < 0 ? field : field.subarray(0, nul);
  for (const byte of used) if (byte < 0x20 || byte > 0x7e) return { byte };
  return ascii.decode(used).trimEnd();
}

/** Printable ASCII only reaches it (checked first), for which latin1 is exact. */
const ascii = new TextDecoder("latin1");

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
