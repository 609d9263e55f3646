/**
 * stacctl's human-readable output: a table for `ls`, key/value blocks for
 * `ls -d` and `status`. Upstream printed Python reprs; these show the same
 * information in a form meant for people (scripts use --json). Values keep
 * upstream's spelling (True/False/None) so documentation reads the same.
 * Every string comes from stacd and, through it, from targets: control
 * characters are shown escaped, never sent to the terminal.
 */

/** A list_controllers dict, possibly merged with controller_info's. */
export type Controller = Readonly<Record<string, unknown>>;

/**
 * What a terminal acts on or uses to reorder text: C0 controls (ESC, CR,
 * ...), DEL, C1 controls (CSI is U+009B), the line and paragraph
 * separators, and the bidirectional marks, embeddings, overrides and
 * isolates. A target's model or serial number may hold any of them.
 */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** Those of {@linkcode UNSAFE} that JSON.stringify leaves raw (it escapes C0 itself). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, "0");

/** `text` with every character of {@linkcode UNSAFE} shown as an escape: `\x1b`, `\u202e`. */
export function visible(text: string): string {
  return text.replace(UNSAFE, (c) => c <= "\u00ff" ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`);
}

/** `value` as JSON (indented by `indent`), with every character of {@linkcode UNSAFE} escaped. */
export function jsonText(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`);
}

/** `v` as text: strings made {@linkcode visible}, booleans and null as upstream shows them. */
export function showValue(v: unknown): string {
  if (typeof v === "string") return visible(v);
  if (v === true) return "True";
  if (v === false) return "False";
  if (v === null || v === undefined) return "None";
  return typeof v === "object" ? jsonText(v, 0) : String(v);
}

function field(c: Controller, key: string): string {
  const v = c[key];
  return v === undefined || v === "" ? "-" : showValue(v);
}

/** Aligned columns, two spaces apart, no trailing blanks. */
function columns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd())
    .join("\n");
}

/**
 * `ls`: one row per controller, in stacd's order. HOST-NQN appears only when
 * the controllers do not all share one (the usual case is a single host NQN).
 */
export function controllersTable(
  controllers: readonly Controller[],
  noun = "I/O controllers",
): string {
  if (controllers.length === 0) return `No ${noun}.`;
  const keys = [
    "device",
    "transport",
    "traddr",
    "trsvcid",
    "host-traddr",
    "host-iface",
    "subsysnqn",
  ];
  if (new Set(controllers.map((c) => c["host-nqn"])).size > 1) keys.push("host-nqn");
  return columns([
    keys.map((k) => k.toUpperCase()),
    ...controllers.map((c) => keys.map((k) => field(c, k))),
  ]);
}

/** `key  value` lines, keys sorted (as upstream's pprint sorts them) and aligned, indented. */
export function keyValues(dict: Readonly<Record<string, unknown>>, indent = "  "): string {
  const keys = Object.keys(dict).sort();
  const width = Math.max(0, ...keys.map((k) => visible(k).length));
  return keys.map((k) =>
    `${indent}${`${visible(k)}:`.padEnd(width + 1)}  ${showValue(dict[k])}`.trimEnd()
  ).join("\n");
}

/** One controller's title: device, then what identifies it. */
function title(c: Controller): string {
  const id = ["transport", "traddr", "trsvcid", "subsysnqn"].map((k) => field(c, k)).join(" ");
  return `${field(c, "device")}  ${id}`;
}

/** `ls -d`: per controller a title line, then every key and value; blank lines between. */
export function controllerBlocks(
  controllers: readonly Controller[],
  noun = "I/O controllers",
): string {
  if (controllers.length === 0) return `No ${noun}.`;
  return controllers.map((c) => `${title(c)}\n${keyValues(c)}`).join("\n\n");
}

/** `status`: the daemon's process info, then the controllers as in `ls -d`. */
export function statusText(info: Readonly<Record<string, unknown>>, daemon = "stacd"): string {
  const { controllers, ...process } = info;
  const list = Array.isArray(controllers) ? controllers as Controller[] : [];
  return `${daemon}\n${keyValues(process)}\n\nControllers: ${list.length}` +
    (list.length > 0 ? `\n\n${controllerBlocks(list)}` : "");
}

const ENTRY_KEYS = ["subtype", "trtype", "traddr", "trsvcid", "subnqn", "treq", "eflags"];

/** `dlp`: one row per log page entry. */
export function entriesTable(entries: readonly Controller[]): string {
  if (entries.length === 0) return "No log page entries.";
  return columns([
    ENTRY_KEYS.map((k) => k.toUpperCase()),
    ...entries.map((e) => ENTRY_KEYS.map((k) => field(e, k))),
  ]);
}

/** `adlp`: per discovery controller a title line, then its entries. */
export function logPagesText(pages: unknown): string {
  const list = Array.isArray(pages) ? pages as Record<string, unknown>[] : [];
  if (list.length === 0) return "No discovery controllers.";
  return list.map((page) => {
    const dc = (page["discovery-controller"] ?? {}) as Controller;
    const entries = Array.isArray(page["log-pages"]) ? page["log-pages"] as Controller[] : [];
    return `${title(dc)}\n${entriesTable(entries)}`;
  }).join("\n\n");
}
