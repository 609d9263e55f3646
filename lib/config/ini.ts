/**
 * INI reader that reads nvme-stas files the way Python's configparser does
 * with the settings nvme-stas uses (`delimiters=('=')`, no interpolation,
 * `strict=False`, repeated keys accumulated in file order), but keeps the line
 * number of every value and reports bad lines instead of raising.
 *
 * Where configparser would raise (a line without `=`, an option before any
 * section header) the line is reported and skipped, and reading goes on: one
 * bad line must not cost the daemon the rest of its configuration.
 */

import { quoteValue } from "./diagnostics.ts";

/** One occurrence of an option: its text and the line of its `key =` line. */
export interface IniValue {
  /** Trimmed value; continuation lines are appended after a "\n". */
  value: string;
  line: number;
}

/** A line that could not be read; it was skipped. */
export interface IniProblem {
  line: number;
  message: string;
}

/** What a file holds, section by section. */
export interface IniDocument {
  /** Section name (case kept) -> option name (lowercased) -> every value in file order. */
  sections: Map<string, Map<string, IniValue[]>>;
  /** Section name -> line of its first header, for messages about a whole section. */
  sectionLines: Map<string, number>;
  problems: IniProblem[];
}

/**
 * Reads INI text. Never throws: any string (binary garbage included) gives a
 * document, with the lines it could not use listed in `problems`.
 *
 * Rules, as configparser applies them:
 * - `=` is the only delimiter; the first `=` splits name and value, so
 *   `controller = transport=tcp;traddr=1.2.3.4` keeps its whole value.
 * - A line whose first non-blank character is `#` or `;` is a comment; there
 *   are no inline comments.
 * - Option names are lowercased; section names keep their case; a repeated
 *   section header continues the same section.
 * - A line indented deeper than the line of the option before it continues
 *   that option's value; comment lines in between are skipped.
 *
 * One deliberate difference: an empty line ends a value. configparser would
 * keep collecting indented lines after it (`empty_lines_in_values`), which
 * silently glues a stray indented line onto an option far above it.
 */
export function parseIni(text: string): IniDocument {
  const doc: IniDocument = { sections: new Map(), sectionLines: new Map(), problems: [] };
  // A UTF-8 BOM (Windows editors) would otherwise hide the first section header.
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);

  let section: Map<string, IniValue[]> | undefined;
  let open: IniValue | undefined; // the value a continuation line would extend
  let indentLevel = 0;

  lines.forEach((raw, index) => {
    const line = index + 1;
    const stripped = raw.trim();
    if (stripped === "") {
      open = undefined;
      return;
    }
    if (stripped.startsWith("#") || stripped.startsWith(";")) return;

    const indent = raw.length - raw.trimStart().length;
    if (open !== undefined && indent > indentLevel) {
      open.value += `\n${stripped}`;
      return;
    }
    indentLevel = indent;
    open = undefined;

    const header = sectionHeader(stripped);
    if (header !== undefined) {
      section = doc.sections.get(header);
      if (section === undefined) {
        section = new Map();
        doc.sections.set(header, section);
        doc.sectionLines.set(header, line);
      }
      return;
    }
    if (section === undefined) {
      doc.problems.push({
        line,
        message: `option line before any [section]: ${quoteValue(stripped)}`,
      });
      return;
    }
    const eq = stripped.indexOf("=");
    if (eq < 0) {
      doc.problems.push({ line, message: `line without "=": ${quoteValue(stripped)}` });
      return;
    }
    const name = stripped.slice(0, eq).trim().toLowerCase();
    if (name === "") {
      doc.problems.push({ line, message: `option without a name: ${quoteValue(stripped)}` });
      return;
    }
    open = { value: stripped.slice(eq + 1).trim(), line };
    const values = section.get(name);
    if (values === undefined) section.set(name, [open]);
    else values.push(open);
  });
  return doc;
}

/**
 * The name in `[name]`, as configparser's `\[(?P<header>.+)\]` finds it: from
 * the first `[` to the last `]`, not trimmed, anything after `]` ignored.
 */
function sectionHeader(stripped: string): string | undefined {
  if (!stripped.startsWith("[")) return undefined;
  const close = stripped.lastIndexOf("]");
  return close > 1 ? stripped.slice(1, close) : undefined;
}
