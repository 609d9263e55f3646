/**
 * The man pages (man/*.md through build/man.ts): they render without
 * warnings, and they document what the code has: every option of --help,
 * every stacctl command, every configuration option shipped in etc/stas,
 * every option of the unit and every member of the D-Bus interface.
 */
import assert from "node:assert/strict";
import { buildManPages, inline, renderManPage } from "../../../build/man.ts";
import { usage } from "../../../lib/cli/daemon_args.ts";
import { STAC_INTERFACES } from "../../../lib/dbus/idl.ts";
import { STACCTL_USAGE } from "../../../lib/cli/stacctl.ts";
import { parseUnit } from "../../../build/systemd_unit.ts";

const root = new URL("../../../", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, root));
const PAGES = ["org.nvmexpress.stac.5", "stacctl.1", "stacd.8", "stacd.conf.5", "stacd.service.8"];

/** Builds the pages once into a temporary folder: name -> roff text. */
async function pages(): Promise<Map<string, string>> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-man-test-" });
  try {
    const paths = await buildManPages(dir);
    return new Map(paths.map((p) => [p.slice(p.lastIndexOf("/") + 1), Deno.readTextFileSync(p)]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
const built = await pages();
/** A page's text as roff shows it, without font changes, with plain hyphens. */
const plain = (name: string) => built.get(name)!.replace(/\\f[BIR]/g, "").replaceAll("\\-", "-");

const hasGroff = await new Deno.Command("groff", { args: ["--version"] }).output()
  .then((r) => r.code === 0, () => false);

Deno.test("renderManPage() turns the markdown subset into man(7) roff", () => {
  const roff = renderManPage(
    "# tool(8) -- does `x`\n\n## Options\n\n`-f` _FILE_\\\nReads _FILE_.\nMore.\n\n" +
      "- one\n- two\n\n```\n.dot \\ back\n```\n\nText **bold**.\n",
  );
  assert.equal(
    roff,
    [
      '.TH TOOL 8 "" "stacd 0.1.0" "System Administration"',
      ".SH NAME",
      "tool \\- does \\fBx\\fR",
      ".SH OPTIONS",
      ".TP",
      "\\fB\\-f\\fR \\fIFILE\\fR",
      "Reads \\fIFILE\\fR.",
      "More.",
      ".IP \\(bu 2",
      "one",
      ".IP \\(bu 2",
      "two",
      ".PP",
      ".RS 4",
      ".nf",
      "\\&.dot \\e back",
      ".fi",
      ".RE",
      ".PP",
      "Text \\fBbold\\fR.",
      "",
    ].join("\n"),
  );
  assert.equal(inline("a `--x-y` b"), "a \\fB\\-\\-x\\-y\\fR b");
  assert.throws(() => renderManPage("no title"), SyntaxError);
});

Deno.test("the five man pages are built from man/*.md", () => {
  assert.deepEqual([...built.keys()].sort(), PAGES);
});

Deno.test({
  name: "every man page renders without a groff warning",
  ignore: !hasGroff,
  async fn() {
    for (const [name, roff] of built) {
      const child = new Deno.Command("groff", {
        args: ["-man", "-Tutf8", "-ww", "-z"],
        stdin: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(roff));
      await writer.close();
      const r = await child.output();
      assert.equal(new TextDecoder().decode(r.stderr), "", name);
      assert.equal(r.code, 0, name);
    }
  },
});

Deno.test("stacd(8) documents every option of stacd --help", () => {
  const options = [...usage("stacd").matchAll(/--[a-z-]+/g)].map((m) => m[0]);
  assert.ok(options.length >= 8);
  for (const option of options) assert.ok(plain("stacd.8").includes(option), option);
});

Deno.test("stacctl(1) documents every command and option of stacctl --help", () => {
  const words = [...STACCTL_USAGE.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!.replace(/,$/, ""));
  for (const w of [...words, "--json", "--detailed"]) assert.ok(plain("stacctl.1").includes(w), w);
});

Deno.test("stacd.conf(5) documents every option of the shipped stacd.conf and sys.conf", () => {
  const options = ["etc/stas/stacd.conf", "etc/stas/sys.conf"].flatMap((f) =>
    [...read(f).matchAll(/^#([a-z][a-z-]*) =/gm)].map((m) => m[1]!)
  );
  assert.ok(options.length > 20);
  // Each is a defined term (the line after .TP), alone or in a list: "hdr-digest, data-digest".
  const lines = plain("stacd.conf.5").split("\n");
  const terms = lines.flatMap((l, i) => lines[i - 1] === ".TP" ? l.split(/,\s*/) : []);
  for (const option of new Set(options)) assert.ok(terms.includes(option), option);
});

Deno.test("stacd.service(8) explains every [Service] option of the unit", () => {
  const entries = parseUnit(read("systemd/stacd.service")).filter((e) => e.section === "Service");
  for (const e of entries) assert.ok(plain("stacd.service.8").includes(`${e.key}=`), e.key);
});

Deno.test("org.nvmexpress.stac(5) lists every member of the D-Bus interfaces", () => {
  for (const [iface, spec] of Object.entries(STAC_INTERFACES)) {
    assert.ok(plain("org.nvmexpress.stac.5").includes(`interface ${iface}`), iface);
    const members = [...Object.keys(spec.properties ?? {}), ...Object.keys(spec.methods ?? {})];
    for (const m of members) assert.ok(plain("org.nvmexpress.stac.5").includes(m), m);
  }
});
