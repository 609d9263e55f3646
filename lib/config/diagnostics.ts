/**
 * The one shape in which every configuration problem is reported, so that a
 * validator can return all of them at once and the daemon logs them alike.
 */

/** One problem (or note) found while reading a configuration file. */
export interface ConfigDiagnostic {
  level: "error" | "warning" | "info";
  /** The file the problem is in (as given to the loader). */
  file: string;
  /** 1-based line, when the problem belongs to one line. */
  line?: number;
  section?: string;
  /** The option concerned; when set, `message` names it too. */
  option?: string;
  /** Self-contained text; never holds a DH-HMAC-CHAP key. */
  message: string;
}

/** Replaces a value that holds (or may hold) a DH-HMAC-CHAP key. */
export const REDACTED = "<redacted>";

/** Longest value quoted in a message: a 1 MiB line must not become a 1 MiB log line. */
const MAX_QUOTED = 120;

/**
 * True when `text` may contain a DH-HMAC-CHAP key: its `DHHC-` prefix, or a
 * base64 run as long as the shortest key's (48 characters; 44 leaves room
 * for a few lost to a typo). Checked on everything a message quotes,
 * because a key pasted into the wrong option, or a mangled one, is still a
 * key. NQNs, addresses and host names never hold such a run.
 */
export function mayHoldSecret(text: string): boolean {
  return /dhhc-|[A-Za-z0-9+/]{44}/i.test(text);
}

/**
 * `text` as a message quotes it: JSON-escaped (control characters stay
 * visible), shortened when long, and redacted when it may hold a key.
 */
export function quoteValue(text: string): string {
  if (mayHoldSecret(text)) return REDACTED;
  const short = text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}...` : text;
  return JSON.stringify(short);
}

/**
 * A section or option name as messages and diagnostics show it: as is,
 * unless it may hold a key (a key pasted on a line of its own) or is huge.
 */
export function safeName(name: string): string {
  if (mayHoldSecret(name)) return REDACTED;
  return name.length > MAX_QUOTED ? `${name.slice(0, MAX_QUOTED)}...` : name;
}

/** `text` with every word that may hold a key replaced by "<redacted>". */
export function scrub(text: string): string {
  if (!mayHoldSecret(text)) return text;
  return text.replace(/[^\s"]*(?:dhhc-|[A-Za-z0-9+/]{44})[^\s"]*/gi, REDACTED);
}

/**
 * `diagnostics` with anything that may be a key cut out of every text field:
 * the last line of defence, for texts no one thought of quoting carefully
 * (an OS error message that repeats a path, say).
 */
export function scrubSecrets(diagnostics: ConfigDiagnostic[]): ConfigDiagnostic[] {
  return diagnostics.map((d) => {
    const clean = { ...d, file: scrub(d.file), message: scrub(d.message) };
    if (d.section !== undefined) clean.section = scrub(d.section);
    if (d.option !== undefined) clean.option = scrub(d.option);
    return clean;
  });
}

/** `file:line: message`, the form a log line or stderr shows. */
export function formatDiagnostic(d: ConfigDiagnostic): string {
  const where = d.line === undefined ? d.file : `${d.file}:${d.line}`;
  return `${where}: ${d.message}`;
}
