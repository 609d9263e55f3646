/**
 * What stacd.conf and stafd.conf have in common (docs/design.md#configuration-files):
 * the same INI dialect, single-valued options read section by section
 * (the last occurrence wins, an invalid one keeps its default), and
 * [Controllers] with `controller =` and `exclude =` lists. Every problem of
 * the file is reported at once; nothing in the file can make loading fail.
 */

import type { ControllerKind } from "../core/kernel_controller.ts";
import {
  type ControllerEntry,
  type ExcludeEntry,
  parseControllerEntry,
  parseExcludeEntry,
} from "./controller_entry.ts";
import { type ConfigDiagnostic, quoteValue, safeName, scrubSecrets } from "./diagnostics.ts";
import { type IniValue, parseIni } from "./ini.ts";
import type { OptionSpec } from "./conn_options.ts";

/** The [Controllers] lists both files have. */
export interface ListConfig {
  /** `controller =` entries in file order, including invalid ones (see `invalid`). */
  controllers: ControllerEntry[];
  /** `exclude =` and `blacklist =` entries in file order. */
  excluded: ExcludeEntry[];
}

/** Reports a note about the option being read; the caller adds file, section and option. */
export type Note = (level: ConfigDiagnostic["level"], message: string) => void;

/** One single-valued option of a section. */
export interface ScalarOption<C> {
  /** What a valid value looks like, for the warning about an invalid one. */
  expected: string;
  /** Sets the option from `text`; false when `text` is invalid (the default then stays). */
  apply(config: C, text: string, note: Note): boolean;
}

/** Section name -> option name -> option (Maps: a name from the file must not find Object.prototype's). */
export type ScalarOptions<C> = ReadonlyMap<string, ReadonlyMap<string, ScalarOption<C>>>;

/** One configuration file's shape. */
export interface ConfSchema<C extends ListConfig> {
  defaults(): C;
  scalars: ScalarOptions<C>;
  /** What `controller =` names: I/O controllers (stacd) or discovery controllers (stafd). */
  controllers: ControllerKind;
}

/** A config and everything worth telling about the file it came from. */
export interface ConfResult<C> {
  config: C;
  diagnostics: ConfigDiagnostic[];
}

/** An option read with `spec` and stored with `set`. */
export function scalar<C, T>(spec: OptionSpec<T>, set: (c: C, v: T) => void): ScalarOption<C> {
  return {
    expected: spec.expected,
    apply(config, text) {
      const value = spec.parse(text);
      if (value !== undefined) set(config, value);
      return value !== undefined;
    },
  };
}

/** A value out of a fixed set. A Map: a value "constructor" must not find Object.prototype's. */
export function oneOf<T>(values: Map<string, T>): OptionSpec<T> {
  return { parse: (text) => values.get(text), expected: [...values.keys()].join(", ") };
}

const LIST_OPTIONS = ["controller", "exclude", "blacklist"];

/** Validates a file's text; `undefined` text means the file does not exist. */
export function parseConf<C extends ListConfig>(
  schema: ConfSchema<C>,
  text: string | undefined,
  file: string,
): ConfResult<C> {
  const config = schema.defaults();
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
    const scalars = schema.scalars.get(rawSection);
    const section = safeName(rawSection);
    if (scalars === undefined && rawSection !== "Controllers") {
      const known = [...schema.scalars.keys(), "Controllers"];
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
        readList(config, schema.controllers, rawOption, occurrences, file, diagnostics);
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
function readScalar<C>(
  config: C,
  scalar: ScalarOption<C>,
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
  config: ListConfig,
  kind: ControllerKind,
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
      const { entry, diagnostics: found } = parseControllerEntry(value, origin, kind);
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
