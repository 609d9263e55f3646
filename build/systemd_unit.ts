/**
 * A reader for systemd unit files, just enough for the checks that read
 * systemd/stacd.service and systemd/stafd.service: the unit test (every
 * option has a comment), the exposure check (build/systemd_check.ts), the
 * man pages ({{UNIT_OPTIONS}}) and the guest test that applies the unit's
 * capabilities and system call filter to a real stacd.
 */

/** One `Key=value` line with the comment lines right above it. */
export interface UnitEntry {
  section: string;
  key: string;
  value: string;
  /** 1-based line number. */
  line: number;
  /** The `#` comment lines directly above (no blank line between). */
  comment: string[];
}

/** Parses `text`; throws SyntaxError for a line that is none of section, entry, comment, blank. */
export function parseUnit(text: string): UnitEntry[] {
  const entries: UnitEntry[] = [];
  let section = "";
  // A comment block belongs to every entry right below it (a group of
  // options explained together), until a blank line or the next comment.
  let comment: string[] = [];
  let afterEntry = false;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") {
      comment = [];
    } else if (line.startsWith("#") || line.startsWith(";")) {
      if (afterEntry) comment = [];
      comment = [...comment, line.replace(/^[#;]\s?/, "")];
    } else if (/^\[[^\]]+\]$/.test(line)) {
      section = line.slice(1, -1);
      comment = [];
    } else {
      const eq = line.indexOf("=");
      if (eq <= 0 || section === "") {
        throw new SyntaxError(`Not a unit file line at line ${i + 1}: ${raw}`);
      }
      entries.push({
        section,
        key: line.slice(0, eq).trim(),
        value: line.slice(eq + 1).trim(),
        line: i + 1,
        comment,
      });
    }
    afterEntry = line !== "" && !line.startsWith("#") && !line.startsWith(";") &&
      !line.startsWith("[");
  });
  return entries;
}

/** Every value of `key` (in [Service] unless `section` says otherwise), in file order. */
export function valuesOf(
  entries: readonly UnitEntry[],
  key: string,
  section = "Service",
): string[] {
  return entries.filter((e) => e.section === section && e.key === key).map((e) => e.value);
}

/** Renders entries back into unit file text, one section after another. */
export function renderUnit(
  entries: readonly Pick<UnitEntry, "section" | "key" | "value">[],
): string {
  const sections = [...new Set(entries.map((e) => e.section))];
  return sections.map((s) =>
    `[${s}]\n` +
    entries.filter((e) => e.section === s).map((e) => `${e.key}=${e.value}\n`).join("")
  ).join("\n");
}
