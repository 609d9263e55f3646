/**
 * Man pages from the readable sources in man/*.md: a small markdown subset
 * turned into man(7) roff, so that the pages stay easy to edit and review.
 * Placeholders pull facts from the code, so the pages cannot drift from it:
 * {{VERSION}}, {{DBUS_MEMBERS}} and {{STAF_DBUS_MEMBERS}} (stacd's and
 * stafd's interfaces, lib/dbus/idl.ts) and {{UNIT_OPTIONS}} (in
 * NAME.service.N.md: systemd/NAME.service with its comments).
 *
 * The subset, chosen to survive `deno fmt` unchanged: `# name(N) -- summary`
 * first, `##`/`###` headings, paragraphs, `- ` bullets, definitions (a term
 * line ending with a backslash, markdown's hard line break, then the text),
 * fenced code, and inline `code` (bold), _emphasis_ (italic), **strong**.
 *
 * Usage: deno run -A build/man.ts [OUT_DIR]   (default out/man)
 */
import { STAC_INTERFACES, STAF_INTERFACES } from "../lib/dbus/idl.ts";
import { VERSION } from "../lib/version.ts";
import { parseUnit } from "./systemd_unit.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

const MANUALS: Record<string, string> = {
  "1": "User Commands",
  "5": "File Formats",
  "8": "System Administration",
};

/** Escapes text for roff: backslashes, and a leading dot or quote (a request otherwise). */
function escape(text: string): string {
  return text.replaceAll("\\", "\\e");
}

function protectLine(line: string): string {
  return /^[.']/.test(line) ? `\\&${line}` : line;
}

/** Inline markup: `code` in bold (with real minus signs), **strong**, *emphasis*. */
export function inline(text: string): string {
  const parts = text.split(/(`[^`]+`)/);
  return parts.map((part) => {
    if (part.startsWith("`") && part.endsWith("`") && part.length > 1) {
      return `\\fB${escape(part.slice(1, -1)).replaceAll("-", "\\-")}\\fR`;
    }
    return escape(part)
      .replace(/\*\*([^*]+)\*\*/g, "\\fB$1\\fR")
      // An underscore followed by a letter or digit is part of the word: _HOST_NQN_.
      .replace(/(^|[\s([])_([^_\s](?:[^_]|_(?=[A-Za-z0-9]))*)_(?=$|[\s.,;:)\]])/g, "$1\\fI$2\\fR");
  }).join("");
}

/** Converts one page's markdown to roff. */
export function renderManPage(markdown: string): string {
  const lines = markdown.replace(/\n+$/, "").split("\n");
  const title = lines.shift()?.match(/^# ([\w.@-]+)\((\d)\) -- (.+)$/);
  if (!title) throw new SyntaxError("A man page source must start with `# name(N) -- summary`");
  const [, name, section, summary] = title as unknown as [string, string, string, string];
  const out = [
    `.TH ${name.toUpperCase()} ${section} "" "stacd ${VERSION}" "${MANUALS[section] ?? ""}"`,
    ".SH NAME",
    `${escape(name)} \\- ${inline(summary)}`,
  ];
  let i = 0;
  const isBlank = (l: string | undefined) => l === undefined || l.trim() === "";
  while (i < lines.length) {
    const line = lines[i]!;
    if (isBlank(line)) {
      i++;
    } else if (line.startsWith("### ")) {
      out.push(`.SS ${inline(line.slice(4))}`);
      i++;
    } else if (line.startsWith("## ")) {
      out.push(`.SH ${inline(line.slice(3).toUpperCase())}`);
      i++;
    } else if (line.startsWith("```")) {
      const code: string[] = [];
      for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) code.push(lines[i]!);
      i++; // the closing fence
      out.push(".PP", ".RS 4", ".nf", ...code.map((l) => protectLine(escape(l))), ".fi", ".RE");
    } else if (line.startsWith("- ")) {
      const item = [line.slice(2)];
      for (i++; i < lines.length && /^ {2}\S/.test(lines[i]!); i++) item.push(lines[i]!.trim());
      out.push(".IP \\(bu 2", ...item.map((l) => protectLine(inline(l))));
    } else if (line.endsWith("\\")) {
      out.push(".TP", protectLine(inline(line.slice(0, -1))));
      for (i++; i < lines.length && !isBlank(lines[i]); i++) {
        out.push(protectLine(inline(lines[i]!)));
      }
    } else {
      const para: string[] = [];
      for (; i < lines.length && !isBlank(lines[i]) && !/^(#|```|- )/.test(lines[i]!); i++) {
        para.push(lines[i]!);
      }
      out.push(".PP", ...para.map((l) => protectLine(inline(l))));
    }
  }
  return out.join("\n") + "\n";
}

/**
 * {{DBUS_MEMBERS}}: stacd's interfaces as the code declares them
 * (lib/dbus/idl.ts); {{STAF_DBUS_MEMBERS}}: stafd's.
 */
export function dbusMembers(interfaces: typeof STAC_INTERFACES = STAC_INTERFACES): string {
  const args = (list: readonly { name: string; type: string }[]) =>
    list.map((a) => `${a.type} ${a.name}`).join(", ");
  const text: string[] = [];
  for (const [iface, spec] of Object.entries(interfaces)) {
    text.push(`interface ${iface}`);
    for (const [p, prop] of Object.entries(spec.properties ?? {})) {
      text.push(`  property ${p} ${prop.type} ${prop.access}`);
    }
    for (const [m, method] of Object.entries(spec.methods ?? {})) {
      const out = method.out.length ? ` -> ${args(method.out)}` : "";
      text.push(`  method ${m}(${args(method.in)})${out}`);
    }
    for (const [sig, a] of Object.entries(spec.signals ?? {})) {
      text.push(`  signal ${sig}(${args(a)})`);
    }
  }
  return ["```", ...text, "```"].join("\n");
}

/**
 * {{UNIT_OPTIONS}}: the unit's [Service] options as definitions, the
 * comment above each group of options its text.
 */
export function unitOptions(unitText: string): string {
  const groups: { terms: string[]; comment: string[] }[] = [];
  for (const e of parseUnit(unitText).filter((e) => e.section === "Service")) {
    const last = groups.at(-1);
    if (last && last.comment === e.comment && e.comment.length > 0) {
      last.terms.push(`\`${e.key}=${e.value}\``);
    } else groups.push({ terms: [`\`${e.key}=${e.value}\``], comment: e.comment });
  }
  return groups.map((g) => {
    const why = g.comment.filter((c) => !/^-+ .* -+$/.test(c)).join(" ").trim();
    return `${g.terms.join(", ")}\\\n${why || "See above."}`;
  }).join("\n\n");
}

/** The page sources in man/, e.g. "stacd.8.md". */
export function manSources(dir = `${root}/man`): string[] {
  return [...Deno.readDirSync(dir)]
    .map((e) => e.name)
    .filter((n) => /\.\d\.md$/.test(n))
    .sort();
}

/** The unit a page is about: `stafd.service.8.md` is systemd/stafd.service's. */
function unitOfPage(source: string): string {
  const unit = source.match(/^([\w@-]+\.service)\.\d\.md$/)?.[1];
  if (!unit) throw new Error(`man/${source}: {{UNIT_OPTIONS}} belongs in a NAME.service.N.md`);
  return `${root}/systemd/${unit}`;
}

/** Renders every page into `outDir` (as name.N); returns their paths. */
export async function buildManPages(outDir: string): Promise<string[]> {
  const vars: Record<string, (source: string) => string> = {
    VERSION: () => VERSION,
    DBUS_MEMBERS: () => dbusMembers(STAC_INTERFACES),
    STAF_DBUS_MEMBERS: () => dbusMembers(STAF_INTERFACES),
    UNIT_OPTIONS: (source) => unitOptions(Deno.readTextFileSync(unitOfPage(source))),
  };
  await Deno.mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const source of manSources()) {
    const md = (await Deno.readTextFile(`${root}/man/${source}`))
      .replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
        const value = vars[key];
        if (!value) throw new Error(`man/${source}: unknown placeholder {{${key}}}`);
        return value(source);
      });
    const path = `${outDir}/${source.replace(/\.md$/, "")}`;
    await Deno.writeTextFile(path, renderManPage(md));
    written.push(path);
  }
  return written;
}

if (import.meta.main) {
  const dir = Deno.args[0] ?? `${root}/out/man`;
  for (const path of await buildManPages(dir)) console.log(path);
}
