/**
 * Discovery log page entries in the string form stafd publishes over D-Bus
 * and stacd consumes (docs/design.md#what-stacd-reads-from-stafd): the same names and values that
 * libnvme's Python binding, and so nvme-stas, produce; and the two fields
 * stacd reads meaning from. (The binary page is decoded in
 * lib/core/discovery_page.ts.)
 */

/** One discovery log page entry; every value a string, as stafd sends them. */
export interface DiscoveryLogEntry {
  trtype: string;
  adrfam: string;
  subtype: string;
  treq: string;
  portid: string;
  cntlid: string;
  asqsz: string;
  eflags: string;
  trsvcid: string;
  subnqn: string;
  traddr: string;
  sectype?: string;
}

/** An entry's keys in the order libnvme's Python binding, and so upstream's stafd, gives them. */
export const DISCOVERY_ENTRY_KEYS = [
  "trtype",
  "adrfam",
  "traddr",
  "trsvcid",
  "subnqn",
  "subtype",
  "treq",
  "portid",
  "cntlid",
  "asqsz",
  "eflags",
] as const;

/**
 * Whether TREQ says a secure channel (TLS) is required: bits 0-1 equal 1
 * (0 not specified, 1 required, 2 not required; bit 2 is "SQ flow control
 * disable"). stafd sends the names libnvme's Python binding gives 0, 1, 2
 * and 4, and any other value as its number, so a Linux target's TLS port
 * arrives as 5; libnvme's nvmf_treq_str() adds ", sq flow control disable
 * supported" to a name, which is accepted too.
 */
export function treqRequiresSecureChannel(treq: string): boolean {
  const text = treq.trim().toLowerCase();
  if (/^(\d+|0x[\da-f]+)$/.test(text)) return (Number(text) & 0x3) === 1;
  return text.split(",")[0]?.trim() === "required";
}

/** eflags bit 2: the subsystem is Not Connected to the CDC (NCC). */
export function eflagsNcc(eflags: string): boolean {
  const value = Number(eflags);
  return Number.isInteger(value) && (value & 0x4) !== 0;
}
