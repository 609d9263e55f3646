/**
 * Validation of stafd's get_all_log_pages reply (docs/design.md#untrusted-answers), which stacd
 * treats as untrusted input. Pure: every problem becomes one bounded line,
 * nothing is thrown.
 *
 * What matters is the difference between a problem that loses an entry that
 * may name an NVMe subsystem (the answer is then `complete: false`, and the
 * caller must treat stafd's answer as unknown, never as "that entry is gone":
 * dropping it would disconnect its controller) and one that only skips what
 * stacd could not connect to anyway (an NQN with a comma, a 1 MB address).
 */
import type { DiscoveredPage } from "../core/desired_set.ts";
import type { DiscoveryLogEntry } from "../core/discovery_log.ts";

/** Bounds on what is accepted, so a hostile or buggy stafd cannot exhaust memory or the log. */
export interface PageLimits {
  /** Characters of the JSON text. */
  maxChars: number;
  maxPages: number;
  maxEntriesPerPage: number;
  /** Characters of one string value (NQNs are at most 223 bytes, addresses 256). */
  maxStringLength: number;
  /** Problem lines returned; the rest are counted in one last line. */
  maxProblems: number;
}

/** The limits used unless the caller overrides some. */
export const DEFAULT_PAGE_LIMITS: Readonly<PageLimits> = {
  maxChars: 16 * 1024 * 1024,
  maxPages: 1024,
  maxEntriesPerPage: 4096,
  maxStringLength: 1024,
  maxProblems: 20,
};

/** What {@linkcode parseLogPages} makes of a reply. */
export interface ParsedLogPages {
  /** The pages and entries that could be read; invalid entries are left out. */
  pages: DiscoveredPage[];
  /** One line per problem, each short whatever the input. */
  problems: string[];
  /** False when something that may name an NVMe subsystem was lost: treat the answer as unknown. */
  complete: boolean;
}

/** Fields that make an entry's identity; unreadable ones lose the entry. */
const IDENTITY = ["subtype", "trtype", "traddr", "trsvcid", "subnqn"] as const;
/** Informational fields; absent ones read as "". libnvme's binding sends the numeric ones as ints. */
const OTHER = ["adrfam", "treq", "portid", "cntlid", "asqsz", "eflags"] as const;
const HOST = [["host-traddr", "hostTraddr"], ["host-iface", "hostIface"], [
  "host-nqn",
  "hostNqn",
]] as const;
// C0 controls and DEL: never part of an address or an NQN, and they would forge log lines.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

type Read = { value: string; fixed?: string } | { lost: string } | { skip: string };

/**
 * Parses and validates the JSON text of get_all_log_pages(true): a list of
 * `{"discovery-controller": {...}, "log-pages": [...]}`. Numbers are accepted
 * where strings are expected (libnvme's binding sends portid, cntlid, asqsz
 * and eflags as ints); objects, arrays and booleans are not.
 */
export function parseLogPages(json: string, limits: Partial<PageLimits> = {}): ParsedLogPages {
  const lim = { ...DEFAULT_PAGE_LIMITS, ...limits };
  const problems: string[] = [];
  let dropped = 0;
  const report = (line: string) =>
    problems.length < lim.maxProblems ? problems.push(line) : dropped++;
  const result = (pages: DiscoveredPage[], complete: boolean): ParsedLogPages => {
    if (dropped > 0) problems.push(`... and ${dropped} more problems`);
    return { pages, problems, complete };
  };
  const unknown = (line: string) => (report(line), result([], false));

  if (json.length > lim.maxChars) {
    return unknown(`reply of ${json.length} characters exceeds ${lim.maxChars}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (error) {
    return unknown(`invalid JSON (${preview((error as Error).message, 80)}): ${preview(json)}`);
  }
  if (!Array.isArray(doc)) return unknown(`expected a list of pages, got ${describe(doc)}`);
  if (doc.length > lim.maxPages) {
    return unknown(`${doc.length} pages exceed the limit of ${lim.maxPages}`);
  }

  const pages: DiscoveredPage[] = [];
  let complete = true;
  doc.forEach((raw: unknown, i) => {
    const dc = field(raw, "discovery-controller");
    const list = field(raw, "log-pages");
    const where = `page ${i}${dcLabel(dc)}`;
    const shape = !isObject(raw)
      ? `expected an object, got ${describe(raw)}`
      : !isObject(dc)
      ? `"discovery-controller": expected an object, got ${describe(dc)}`
      : !Array.isArray(list)
      ? `"log-pages": expected a list, got ${describe(list)}`
      : undefined;
    if (shape !== undefined || !Array.isArray(list)) {
      complete = false;
      return report(`${where}: ${shape}`);
    }
    if (list.length > lim.maxEntriesPerPage) {
      complete = false;
      return report(
        `${where}: ${list.length} entries exceed the limit of ${lim.maxEntriesPerPage}`,
      );
    }
    const host: Record<string, string> = {};
    for (const [key, prop] of HOST) {
      // Older stafds omit host-nqn: absent host fields are the defaults.
      const read = readText(field(dc, key), true, lim.maxStringLength, true);
      if ("lost" in read || "skip" in read) {
        complete &&= "skip" in read;
        return report(
          `${where}: discovery-controller ${key}: ${"lost" in read ? read.lost : read.skip}`,
        );
      }
      if (read.fixed) report(`${where}: discovery-controller ${key}: ${read.fixed}`);
      host[prop] = read.value;
    }
    const entries: DiscoveryLogEntry[] = [];
    list.forEach((rawEntry: unknown, j) => {
      const parsed = parseEntry(rawEntry, lim.maxStringLength);
      const at = `${where}, entry ${j}`;
      for (const fix of parsed.fixed) report(`${at}: ${fix}`);
      if ("entry" in parsed) return entries.push(parsed.entry);
      complete &&= !parsed.lost;
      report(`${at}: ${parsed.why}; skipped`);
    });
    pages.push({
      hostTraddr: host.hostTraddr ?? "",
      hostIface: host.hostIface ?? "",
      hostNqn: host.hostNqn ?? "",
      entries,
    });
  });
  return result(pages, complete);
}

/**
 * {@linkcode parseLogPages} of a method reply as dbus-next gives it: its
 * signature must be "s" (a peer may answer anything).
 */
export function readLogPagesReply(
  signature: string | undefined,
  body: readonly unknown[],
  limits: Partial<PageLimits> = {},
): ParsedLogPages {
  const [text] = body;
  if (signature === "s" && typeof text === "string") return parseLogPages(text, limits);
  const problem = `the reply's signature is ${preview(signature ?? "")}, not "s"`;
  return { pages: [], problems: [problem], complete: false };
}

type ParsedEntry =
  | { entry: DiscoveryLogEntry; fixed: string[] }
  | { why: string; lost: boolean; fixed: string[] };

function parseEntry(raw: unknown, maxLength: number): ParsedEntry {
  const fixed: string[] = [];
  if (!isObject(raw)) return { why: `expected an object, got ${describe(raw)}`, lost: true, fixed };
  const subtype = readText(field(raw, "subtype"), false, maxLength, false);
  // A readable subtype other than "nvme" (referral, discovery) never becomes an
  // I/O controller: losing such an entry cannot disconnect anything.
  const mayBeNvme = !("value" in subtype) || subtype.value === "nvme";
  const values: Record<string, string> = {};
  for (const key of [...IDENTITY, ...OTHER]) {
    const identity = (IDENTITY as readonly string[]).includes(key);
    const read = readText(field(raw, key), !identity, maxLength, identity && key !== "subtype");
    if ("lost" in read) return { why: `${key}: ${read.lost}`, lost: mayBeNvme, fixed };
    if ("skip" in read) return { why: `${key}: ${read.skip}`, lost: false, fixed };
    if (read.fixed) fixed.push(`${key}: ${read.fixed}`);
    values[key] = read.value;
  }
  const entry = values as unknown as DiscoveryLogEntry;
  // libnvme's binding nests it as tsas.sectype; a flat sectype is accepted too.
  const sectype = readText(
    field(field(raw, "tsas"), "sectype") ?? field(raw, "sectype"),
    true,
    64,
    false,
  );
  if ("value" in sectype && sectype.value) entry.sectype = sectype.value;
  return { entry, fixed };
}

/**
 * One string value. `optional`: absent or null reads as "". `kernel`: the
 * value goes into the kernel's comma-separated connect options, where a
 * comma would split it (and could smuggle in an option of its own), and
 * where an over-long value is refused: such a value is skipped, not lost,
 * since no connection can ever have been made with it.
 */
function readText(value: unknown, optional: boolean, maxLength: number, kernel: boolean): Read {
  if (value === undefined || value === null) return optional ? { value: "" } : { lost: "missing" };
  if (typeof value === "number") return { value: String(value) };
  if (typeof value !== "string") return { lost: `expected a string, got ${describe(value)}` };
  if (value.length > maxLength) {
    const why = `${value.length} characters exceed ${maxLength}`;
    return kernel ? { skip: why } : { lost: why };
  }
  const clean = value.replace(CONTROL, "");
  if (kernel && clean.includes(",")) {
    return { skip: `${preview(clean)} contains ",", which a connect cannot carry` };
  }
  return clean === value
    ? { value }
    : { value: clean, fixed: `control characters removed from ${preview(value)}` };
}

/** " (tcp 192.168.1.10 8009)": which discovery controller a page came from, when it says. */
function dcLabel(dc: unknown): string {
  const parts = ["transport", "traddr", "trsvcid"].map((k) => field(dc, k))
    .filter((v): v is string => typeof v === "string" && v !== "")
    .map((v) => v.slice(0, 64).replace(CONTROL, "?"));
  return parts.length > 0 ? ` (${parts.join(" ")})` : "";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An own property only: "constructor" or "__proto__" in the input must not reach the prototype. */
function field(value: unknown, key: string): unknown {
  return isObject(value) && Object.hasOwn(value, key) ? value[key] : undefined;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === "string") return `the string ${preview(value)}`;
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}

/** A value quoted for a log line, cut short: a 1 MB string must not reach the log. */
export function preview(text: string, max = 40): string {
  const quoted = JSON.stringify(text.length > max ? text.slice(0, max) : text);
  return text.length > max ? `${quoted}... (${text.length} characters)` : quoted;
}
