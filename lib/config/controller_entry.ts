/**
 * `controller =` and `exclude =` values of [Controllers]:
 * `key=value;key=value;...`. Each entry is checked on its own, so one bad
 * controller costs only itself, and every message names the controller.
 */

import {
  type ExcludeMatch,
  makeTid,
  parseIpAddress,
  printableTid,
  type TidFields,
} from "../core/transport_id.ts";
import { DISCOVERY_NQN, optionValueProblem } from "../core/connect_request.ts";
import type { ControllerKind } from "../core/kernel_controller.ts";
import { CONNECTION_OPTIONS, type ConnectionOptions, setConnectionOption } from "./conn_options.ts";
import { dhchapKeyProblem } from "./dhchap_key.ts";
import { type ConfigDiagnostic, quoteValue, safeName } from "./diagnostics.ts";

/** One configured controller. */
export interface ControllerEntry {
  /** Line of its `controller =` in the file. */
  line: number;
  /** Identity as configured; makeTid() applies the defaults. */
  fields: TidFields;
  dhchapSecret?: string;
  dhchapCtrlSecret?: string;
  /** Overrides of [Global]'s connection options. */
  options: ConnectionOptions;
  /** Why it must not be attempted; undefined when it may be. */
  invalid?: string;
}

/** One `exclude =` (or `blacklist =`) entry. */
export interface ExcludeEntry {
  line: number;
  match: ExcludeMatch;
  /** Why it excludes nothing; undefined when it is in force. */
  invalid?: string;
}

/** Where an entry comes from, for its messages. */
export interface EntryOrigin {
  file: string;
  line: number;
  /** `controller`, `exclude` or `blacklist`. */
  option: string;
}

// Maps, not object literals, wherever a key comes from the file: a key
// named "constructor" must not find Object.prototype's.
const IDENTITY_KEYS = new Map<string, keyof TidFields>([
  ["transport", "transport"],
  ["traddr", "traddr"],
  ["trsvcid", "trsvcid"],
  ["nqn", "subsysnqn"],
  ["subsysnqn", "subsysnqn"], // what upstream turns nqn= into, so it reads that spelling too
  ["host-traddr", "hostTraddr"],
  ["host-iface", "hostIface"],
  ["host-nqn", "hostNqn"],
]);

const TRANSPORTS = ["tcp", "rdma", "fc", "loop"];

/** Splits `key=value;...` (keys lowercased); `malformed` lists tokens that are not `key=value`. */
function splitPairs(text: string): { pairs: [string, string][]; malformed: string[] } {
  const pairs: [string, string][] = [];
  const malformed: string[] = [];
  for (const token of text.split(";").map((t) => t.trim()).filter((t) => t !== "")) {
    const eq = token.indexOf("=");
    const key = eq < 0 ? "" : token.slice(0, eq).trim().toLowerCase();
    if (key === "") malformed.push(token);
    else pairs.push([key, token.slice(eq + 1).trim()]);
  }
  return { pairs, malformed };
}

/** Reads one `controller =` value. Problems are warnings; `entry.invalid` says whether it is usable. */
export function parseControllerEntry(
  text: string,
  origin: EntryOrigin,
  kind: ControllerKind = "io",
): { entry: ControllerEntry; diagnostics: ConfigDiagnostic[] } {
  const entry: ControllerEntry = { line: origin.line, fields: {}, options: {} };
  const { pairs, malformed } = splitPairs(text);
  const notes = malformed.map((t) => `token ${quoteValue(t)} is not key=value; skipped`);
  const invalid: string[] = [];
  const seen = new Set<string>();
  for (const [key, value] of pairs) {
    if (seen.has(key)) {
      notes.push(`${quoteValue(key)} is given more than once; the last one is used`);
    }
    seen.add(key);
    const field = IDENTITY_KEYS.get(key);
    const option = CONNECTION_OPTIONS.get(key);
    if (field !== undefined) {
      if (value === "") delete entry.fields[field];
      else entry.fields[field] = field === "transport" ? value.toLowerCase() : value;
    } else if (key === "dhchap-secret" || key === "dhchap-ctrl-secret") {
      const problem = dhchapKeyProblem(value);
      if (problem !== undefined) invalid.push(`${key} ${problem}`);
      if (key === "dhchap-secret") entry.dhchapSecret = value;
      else entry.dhchapCtrlSecret = value;
    } else if (option !== undefined) {
      const parsed = value === "" ? undefined : option.parse(value);
      if (parsed !== undefined) setConnectionOption(entry.options, option, parsed);
      else if (value !== "") {
        notes.push(
          `${key} - invalid value ${quoteValue(value)} (expected ${option.expected}); ` +
            `[Global]'s value is used`,
        );
      }
    } else {
      notes.push(`unknown key ${quoteValue(key)} ignored`);
    }
  }
  // A discovery controller's NQN is the well-known one unless it has its own (TP8013).
  if (kind === "discovery") entry.fields.subsysnqn ??= DISCOVERY_NQN;
  checkIdentity(entry.fields, kind, notes, invalid);
  if (invalid.length > 0) entry.invalid = invalid.join("; ");

  const id = safeName(printableTid(makeTid(entry.fields, { hostNqn: "" })));
  const prefix = `[Controllers] ${origin.option} ${id}:`;
  const diagnostics = [
    ...notes.map((n) => warning(origin, `${prefix} ${n}`)),
    ...invalid.map((n) => warning(origin, `${prefix} ${n}; this controller is not connected`)),
  ];
  return { entry, diagnostics };
}

/** How each identity field is spelled in the file, for messages. */
const FIELD_KEYS = new Map<keyof TidFields, string>([
  ["transport", "transport"],
  ["traddr", "traddr"],
  ["trsvcid", "trsvcid"],
  ["subsysnqn", "nqn"],
  ["hostTraddr", "host-traddr"],
  ["hostIface", "host-iface"],
  ["hostNqn", "host-nqn"],
]);

/** The mandatory fields and the ones the kernel would refuse at connect time. */
function checkIdentity(
  fields: TidFields,
  kind: ControllerKind,
  notes: string[],
  invalid: string[],
): void {
  const { transport, traddr, trsvcid, subsysnqn, hostTraddr, hostNqn } = fields;
  for (const [field, key] of FIELD_KEYS) {
    const value = fields[field];
    const problem = value === undefined ? undefined : optionValueProblem(value);
    if (problem !== undefined) invalid.push(`${key} ${quoteValue(value!)} ${problem}`);
  }
  if (transport === undefined) invalid.push("transport is missing");
  else if (!TRANSPORTS.includes(transport)) {
    invalid.push(`transport ${quoteValue(transport)} is not tcp, rdma, fc or loop`);
  }
  if (traddr === undefined) invalid.push("traddr is missing");
  if (subsysnqn === undefined) invalid.push("nqn is missing");
  else if (subsysnqn === DISCOVERY_NQN && kind === "io") {
    notes.push("nqn is the discovery NQN; discovery controllers belong in stafd.conf");
  }
  const ip = transport === "tcp" || transport === "rdma";
  if (ip && trsvcid !== undefined && !isPort(trsvcid)) {
    invalid.push(`trsvcid ${quoteValue(trsvcid)} is not a port number`);
  }
  if (transport === "tcp" && trsvcid === undefined && kind === "io") {
    notes.push("trsvcid is missing; 8009 (the discovery port) is used");
  }
  if (ip && hostTraddr !== undefined && parseIpAddress(hostTraddr) === undefined) {
    invalid.push(`host-traddr ${quoteValue(hostTraddr)} is not an IP address`);
  }
  if (hostNqn !== undefined && !hostNqn.startsWith("nqn.")) {
    invalid.push(`host-nqn ${quoteValue(hostNqn)} does not start with "nqn."`);
  }
}

/** Reads one `exclude =` / `blacklist =` value. */
export function parseExcludeEntry(
  text: string,
  origin: EntryOrigin,
): { entry: ExcludeEntry; diagnostics: ConfigDiagnostic[] } {
  const entry: ExcludeEntry = { line: origin.line, match: {} };
  const { pairs, malformed } = splitPairs(text);
  const notes = malformed.map((t) => `token ${quoteValue(t)} is not key=value; skipped`);
  for (const [key, value] of pairs) {
    const field = IDENTITY_KEYS.get(key);
    if (key === "host-traddr") {
      notes.push("host-traddr is ignored in exclusions (as upstream does)");
    } else if (field !== undefined && field !== "hostTraddr") {
      entry.match[field] = value;
    } else {
      // Upstream compares an unknown key with a field no controller has, so
      // the entry never matches: keep that, rather than exclude more than asked.
      entry.invalid = `unknown key ${quoteValue(key)}`;
    }
  }
  if (entry.invalid === undefined && Object.keys(entry.match).length === 0) {
    // Upstream reads an empty entry as "exclude everything": almost surely a typo.
    entry.invalid = "names no field";
  }
  const prefix = `[Controllers] ${origin.option} ${quoteValue(text)}:`;
  const diagnostics = notes.map((n) => warning(origin, `${prefix} ${n}`));
  if (entry.invalid !== undefined) {
    diagnostics.push(warning(origin, `${prefix} ${entry.invalid}; this entry excludes nothing`));
  }
  return { entry, diagnostics };
}

function warning(origin: EntryOrigin, message: string): ConfigDiagnostic {
  const { file, line, option } = origin;
  return { level: "warning", file, line, section: "Controllers", option, message };
}

function isPort(text: string): boolean {
  return /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535;
}
