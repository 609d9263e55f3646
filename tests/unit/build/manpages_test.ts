/**
 * The man pages (man/*.md through build/man.ts): they render without
 * warnings, and they document what the code has: every option of stacd's
 * and stafd's --help, every stacctl and stafctl command and option, every
 * configuration option shipped in etc/stas, every option of each unit and
 * every member of the D-Bus interfaces.
 */
import assert from "node:assert/strict";
import { buildManPages, inline, renderManPage } from "../../../build/man.ts";
import { usage } from "../../../lib/cli/daemon_args.ts";
import type { ObjectSpec } from "../../../lib/dbus/introspection.ts";
import { STAC_INTERFACES, STAF_INTERFACES } from "../../../lib/dbus/idl.ts";
import { STACCTL_USAGE, STAFCTL_USAGE } from "../../../lib/cli/stacctl.ts";
import { parseUnit } from "../../../build/systemd_unit.ts";

const root = new URL("../../../", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, root));
const PAGES = [
  "org.nvmexpress.stac.5",
  "stacctl.1",
  "stacd.8",
  "stacd.conf.5",
  "stacd.service.8",
  "stafctl.1",
  "stafd.8",
  "stafd.conf.5",
  "stafd.service.8",
];

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
  assert.equal(inline("[-q _HOST_NQN_]"), "[-q \\fIHOST_NQN\\fR]");
  assert.equal(inline("_a_ and _b_, host_nqn"), "\\fIa\\fR and \\fIb\\fR, host_nqn");
  assert.throws(() => renderManPage("no title"), SyntaxError);
});

Deno.test("the man pages of stacd and stafd are built from man/*.md", () => {
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

/** The long options (`--name`) of a usage text. */
const longOptions = (text: string) => [...text.matchAll(/--[a-z-]+/g)].map((m) => m[0]);

/** The defined terms of a page (the line after .TP), each alone or in a list: "-h, --help". */
function terms(name: string): string[] {
  const lines = plain(name).split("\n");
  return lines.flatMap((l, i) => lines[i - 1] === ".TP" ? l.split(/,\s*/) : []);
}

Deno.test("stacd(8) documents every option of stacd --help", () => {
  const options = longOptions(usage("stacd"));
  assert.ok(options.length >= 8);
  for (const option of options) assert.ok(plain("stacd.8").includes(option), option);
});

Deno.test("stafd(8) documents every option of stafd --help, each as a defined term", () => {
  const options = longOptions(usage("stafd"));
  assert.ok(options.length >= 8);
  const defined = terms("stafd.8").map((t) => t.replace(/[= ].*$/, ""));
  for (const option of options) assert.ok(defined.includes(option), option);
  // stacd's one-process options are not stafd's.
  assert.ok(!defined.includes("--stafd-conf"));
});

Deno.test("stacctl(1) documents every command and option of stacctl --help", () => {
  const words = [...STACCTL_USAGE.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!.replace(/,$/, ""));
  for (const w of [...words, "--json", "--detailed"]) assert.ok(plain("stacctl.1").includes(w), w);
});

Deno.test("stafctl(1) documents every command and option of stafctl --help", () => {
  // Commands and options: the first word of each line of the help's lists.
  const words = [...STAFCTL_USAGE.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!.replace(/,$/, ""));
  assert.ok(words.includes("dlp") && words.includes("adlp"), words.join(" "));
  const defined = terms("stafctl.1").map((t) => t.split(/\s+/)[0]!);
  for (const w of [...words, "--json"]) assert.ok(defined.includes(w), w);
  // ls and adlp take it: "ls [-d|--detailed]".
  const withDetailed = terms("stafctl.1").filter((t) => t.includes("[-d|--detailed]"));
  assert.deepEqual(withDetailed.map((t) => t.split(/\s+/)[0]), ["ls", "adlp"]);
  // dlp's options: the short ones of its usage line, each with its long name.
  const dlp = STAFCTL_USAGE.slice(STAFCTL_USAGE.indexOf("dlp -a"), STAFCTL_USAGE.indexOf("adlp"));
  const shorts = [...dlp.matchAll(/(-[a-z]) [A-Z_]+/g)].map((m) => m[1]!);
  assert.deepEqual(shorts.sort(), ["-a", "-f", "-n", "-q", "-s", "-t", "-w"]);
  const long = ["--traddr", "--trsvcid", "--transport", "--host-traddr", "--host-iface"];
  for (const option of [...shorts, ...long, "--host-nqn", "--nqn"]) {
    assert.ok(defined.includes(option), option);
  }
});

/** The options a shipped configuration file shows (commented out, with their defaults). */
const shippedOptions = (...files: string[]) =>
  files.flatMap((f) => [...read(f).matchAll(/^#([a-z][a-z-]*) =/gm)].map((m) => m[1]!));

Deno.test("stacd.conf(5) documents every option of the shipped stacd.conf and sys.conf", () => {
  const options = shippedOptions("etc/stas/stacd.conf", "etc/stas/sys.conf");
  assert.ok(options.length > 20);
  const defined = terms("stacd.conf.5");
  for (const option of new Set(options)) assert.ok(defined.includes(option), option);
});

Deno.test("stafd.conf(5) documents every option of the shipped stafd.conf", () => {
  const options = shippedOptions("etc/stas/stafd.conf");
  assert.ok(options.length > 15);
  const defined = terms("stafd.conf.5");
  for (const option of new Set(options)) assert.ok(defined.includes(option), option);
});

for (const daemon of ["stacd", "stafd"]) {
  Deno.test(`${daemon}.service(8) explains every [Service] option of the unit`, () => {
    const unit = read(`systemd/${daemon}.service`);
    const page = plain(`${daemon}.service.8`);
    for (const e of parseUnit(unit).filter((e) => e.section === "Service")) {
      assert.ok(page.includes(`${e.key}=${e.value}`), `${e.key}=${e.value}`);
    }
  });
}

function assertMembersListed(page: string, interfaces: ObjectSpec): void {
  for (const [iface, spec] of Object.entries(interfaces)) {
    assert.ok(plain(page).includes(`interface ${iface}`), iface);
    const members = [
      ...Object.keys(spec.properties ?? {}),
      ...Object.keys(spec.methods ?? {}),
      ...Object.keys(spec.signals ?? {}),
    ];
    for (const m of members) assert.ok(plain(page).includes(m), m);
  }
}

Deno.test("org.nvmexpress.stac(5) lists every member of the D-Bus interfaces", () => {
  assertMembersListed("org.nvmexpress.stac.5", STAC_INTERFACES);
});

Deno.test("stafd(8) lists every member of org.nvmexpress.staf's interfaces", () => {
  assertMembersListed("stafd.8", STAF_INTERFACES);
});
