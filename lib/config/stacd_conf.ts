/**
 * stacd.conf (docs/design.md#configuration-files): from what the INI reader found to a typed,
 * validated StacdConfig, with every problem of the file reported at once.
 * A bad value costs only that value (its default is used); nothing in the
 * file can make loading fail.
 */

import type { ConnectionOptions } from "./conn_options.ts";
import {
  type ControllerEntry,
  type ExcludeEntry,
  parseControllerEntry,
  parseExcludeEntry,
} from "./controller_entry.ts";
import { type ConfigDiagnostic, quoteValue, safeName, scrubSecrets } from "./diagnostics.ts";
import { type IniValue, parseIni } from "./ini.ts";
import { type Note, SCALAR_OPTIONS, type ScalarOption } from "./stacd_options.ts";
import { CONFIG_FILE_MAX_BYTES, type TextFileReader } from "./text_file.ts";

export type { ControllerEntry, ExcludeEntry } from "./controller_entry.ts";
export type { ConnectionOptions } from "./conn_options.ts";
export { holdsSecrets, redactedConfig } from "./redacted_config.ts";

/** Where stacd looks when no `--conf-file` is given. */
export const DEFAULT_STACD_CONF = "/etc/stas/stacd.conf";

/** What happens to a controller that leaves the desired set. */
export type DisconnectScope =
  | "only-stas-connections"
  | "all-connections-matching-disconnect-trtypes"
  | "no-disconnect";

/** Transports `disconnect-trtypes` may name. */
export type DisconnectTrtype = "tcp" | "rdma" | "fc";

/** The effective stacd configuration. */
export interface StacdConfig {
  tron: boolean;
  ignoreIface: boolean;
  /** Enabled IP families in the order given (`ipv6+ipv4` prefers IPv6). */
  ipFamily: readonly (4 | 6)[];
  /** [Global] connection options; an undefined field is the kernel default. */
  connection: ConnectionOptions;
  disconnectScope: DisconnectScope;
  disconnectTrtypes: readonly DisconnectTrtype[];
  /** 0 = never stop retrying a controller whose log page entry has NCC set. */
  connectAttemptsOnNcc: number;
  /** `controller =` entries in file order, including invalid ones (see `invalid`). */
  controllers: ControllerEntry[];
  /** `exclude =` and `blacklist =` entries in file order. */
  excluded: ExcludeEntry[];
}

/** A config and everything worth telling about the file it came from. */
export interface StacdConfigResult {
  config: StacdConfig;
  diagnostics: ConfigDiagnostic[];
}

/** The configuration of a host without stacd.conf. */
export function defaultStacdConfig(): StacdConfig {
  return {
    tron: false,
    ignoreIface: false,
    ipFamily: [4, 6],
    connection: { hdrDigest: false, dataDigest: false },
    disconnectScope: "only-stas-connections",
    disconnectTrtypes: ["tcp"],
    connectAttemptsOnNcc: 0,
    controllers: [],
    excluded: [],
  };
}

const LIST_OPTIONS = ["controller", "exclude", "blacklist"];

/**
 * Reads `file` through `reader`; a missing file gives the defaults. Throws
 * FileReadError when the file exists but cannot be read: defaults in its
 * place would disconnect every configured controller.
 */
export function loadStacdConfig(
  reader: TextFileReader,
  file: string = DEFAULT_STACD_CONF,
): StacdConfigResult {
  return parseStacdConfig(reader.readTextFile(file, CONFIG_FILE_MAX_BYTES), file);
}

/** Validates stacd.conf's text; `undefined` text means the file does not exist. */
export function parseStacdConfig(text: string | undefined, file: string): StacdConfigResult {
  const config = defaultStacdConfig();
  const diagnostics: ConfigDiagnostic[] = [];
  if (text === undefined) {
    diagnostics.push({ level: "info", file, message: `${file} not found; defaults are used` });
    return { config, diagnostics };
  }
  const ini = parseIni(text);
  for (const { line, message } of ini.problems) {
    diagnostics.push({ level: "error", file, line, message: `${message}; line ignored` });
  }
  for (const [rawSection, options] of ini.sections) {
    const scalars = SCALAR_OPTIONS.get(rawSection);
    const section = safeName(rawSection);
    if (scalars === undefined && rawSection !== "Controllers") {
      const known = [...SCALAR_OPTIONS.keys(), "Controllers"];
      const hint = known.find((k) => k.toLowerCase() === rawSection.trim().toLowerCase());
      const message = `unknown section [${section}] ignored` +
        (hint ? ` (did you mean [${hint}]?)` : "");
      const line = ini.sectionLines.get(rawSection);
      diagnostics.push({ level: "error", file, line, section, message });
      continue;
    }
    for (const [rawOption, values] of options) {
      const option = safeName(rawOption);
      const occurrences = values.flatMap(splitLines);
      const scalar = scalars?.get(rawOption);
      const at = (line: number | undefined): Note => (level, message) =>
        diagnostics.push({
          level,
          file,
          line,
          section,
          option,
          message: `[${section}] ${option}: ${message}`,
        });
      if (scalar !== undefined) {
        readScalar(config, scalar, occurrences, at);
      } else if (rawSection === "Controllers" && LIST_OPTIONS.includes(rawOption)) {
        readList(config, rawOption, occurrences, file, diagnostics);
      } else {
        at(values[0]?.line)("error", "unknown option ignored");
      }
    }
  }
  // In file order, as a reader of the file would go through them.
  diagnostics.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { config, diagnostics: scrubSecrets(diagnostics) };
}

/** The last occurrence wins, as in upstream; an invalid one leaves the default. */
function readScalar(
  config: StacdConfig,
  scalar: ScalarOption,
  occurrences: IniValue[],
  at: (line: number | undefined) => Note,
): void {
  const last = occurrences[occurrences.length - 1];
  if (last === undefined) return;
  const note = at(last.line);
  if (occurrences.length > 1) {
    note("warning", `given ${occurrences.length} times; the last one (line ${last.line}) is used`);
  }
  if (!scalar.apply(config, last.value, note)) {
    note(
      "warning",
      `invalid value ${quoteValue(last.value)} (expected ${scalar.expected}); the default is used`,
    );
  }
}

function readList(
  config: StacdConfig,
  option: string,
  occurrences: IniValue[],
  file: string,
  diagnostics: ConfigDiagnostic[],
): void {
  let warnedBlacklist = false;
  for (const { value, line } of occurrences) {
    const origin = { file, line, option };
    if (option === "controller") {
      if (value === "") continue; // an empty `controller =` is a template's placeholder
      const { entry, diagnostics: found } = parseControllerEntry(value, origin);
      config.controllers.push(entry);
      diagnostics.push(...found);
      continue;
    }
    if (option === "blacklist" && !warnedBlacklist) {
      warnedBlacklist = true;
      const message = `[Controllers] blacklist: deprecated; read as exclude (rename it exclude)`;
      diagnostics.push({ level: "warning", file, line, section: "Controllers", option, message });
    }
    const { entry, diagnostics: found } = parseExcludeEntry(value, origin);
    config.excluded.push(entry);
    diagnostics.push(...found);
  }
  config.excluded.sort((a, b) => a.line - b.line); // exclude= and blacklist= interleave
}

/**
 * Each line of a continued value counts as one more value, as upstream's
 * OrderedMultisetDict splits them: a continued `controller =` is two entries.
 */
function splitLines({ value, line }: IniValue): IniValue[] {
  return value.split("\n").map((part) => ({ value: part, line }));
}
