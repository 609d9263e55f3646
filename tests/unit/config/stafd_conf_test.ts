import assert from "node:assert/strict";
import { DISCOVERY_NQN } from "../../../lib/core/connect_request.ts";
import { parseDuration } from "../../../lib/config/duration.ts";
import { defaultStafdConfig, parseStafdConfig } from "../../../lib/config/stafd_conf.ts";

const FILE = "/etc/stas/stafd.conf";
const parse = (text: string) => parseStafdConfig(text, FILE);
const root = new URL("../../../", import.meta.url).pathname;
const problems = (text: string) =>
  parse(text).diagnostics.filter((d) => d.level !== "info").map((d) => d.message);

Deno.test("parseStafdConfig() of a missing file gives upstream's defaults", () => {
  const { config } = parseStafdConfig(undefined, FILE);
  assert.deepEqual(config, defaultStafdConfig());
  assert.equal(config.connection.kato, 30);
  assert.equal(config.persistentConnections, true);
  assert.equal(config.pleo, true);
  assert.equal(config.zeroconf, true);
  assert.equal(config.zeroconfPersistenceSec, 259200);
});

Deno.test("parseStafdConfig() reads every section stafd has", () => {
  const { config, diagnostics } = parse(`
[Global]
tron=true
kato=10
queue-size=64
pleo=disabled
ip-family=ipv6
[Service Discovery]
zeroconf=disabled
[Discovery controller connection management]
persistent-connections=false
zeroconf-connections-persistence=3 days 5 hours
[Controllers]
controller=transport=tcp;traddr=10.0.0.1
controller=transport=tcp;traddr=10.0.0.2;trsvcid=4420;nqn=nqn.2014-08.com.example:unique-dc
exclude=traddr=10.0.0.3
`);
  assert.deepEqual(diagnostics, []);
  assert.equal(config.tron, true);
  assert.equal(config.connection.kato, 10);
  assert.equal(config.connection.queueSize, 64);
  assert.equal(config.pleo, false);
  assert.deepEqual(config.ipFamily, [6]);
  assert.equal(config.zeroconf, false);
  assert.equal(config.persistentConnections, false);
  assert.equal(config.zeroconfPersistenceSec, 277200);
  assert.deepEqual(config.controllers.map((c) => c.fields.subsysnqn), [
    DISCOVERY_NQN,
    "nqn.2014-08.com.example:unique-dc",
  ]);
  assert.equal(config.controllers[0]?.invalid, undefined);
  assert.equal(config.excluded.length, 1);
});

Deno.test("parseStafdConfig() reads [Global] persistent-connections as upstream does", () => {
  const persistent = (text: string) => parse(text).config.persistentConnections;
  assert.equal(persistent("[Global]\npersistent-connections=false\n"), false);
  assert.equal(persistent("[Global]\npersistent-connections=true\n"), true);
  // Either place true wins (upstream: `value or legacy`).
  const both = "[Global]\npersistent-connections=true\n" +
    "[Discovery controller connection management]\npersistent-connections=false\n";
  assert.equal(persistent(both), true);
  assert.match(problems(both).join("\n"), /^$/);
  assert.match(
    parse("[Global]\npersistent-connections=false\n").diagnostics[0]?.message ?? "",
    /deprecated here/,
  );
});

Deno.test("parseStafdConfig() says what is wrong, as stacd.conf's reader does", () => {
  assert.deepEqual(
    problems("[Global]\npleo=maybe\n[Service Discovery]\nzeroconf=yes\n"),
    [
      `[Global] pleo: invalid value "maybe" (expected enabled, disabled); the default is used`,
      `[Service Discovery] zeroconf: invalid value "yes" (expected enabled, disabled); ` +
      "the default is used",
    ],
  );
  assert.match(
    problems("[Discovery controller connection management]\nzeroconf-connections-persistence=-5\n")
      .join(),
    /expected -1, 0, seconds or a time span/,
  );
  assert.match(
    problems("[Controllers]\ncontroller=traddr=10.0.0.1\n").join(),
    /transport is missing/,
  );
  assert.match(problems("[I/O controller connection management]\n").join(), /unknown section/);
});

Deno.test("a discovery controller entry names no problem stacd.conf would warn about", () => {
  // stacd.conf warns when a controller has the discovery NQN or no trsvcid;
  // in stafd.conf both are the normal case.
  assert.deepEqual(
    problems(`[Controllers]\ncontroller=transport=tcp;traddr=10.0.0.1;nqn=${DISCOVERY_NQN}\n`),
    [],
  );
});

Deno.test("parseDuration() reads upstream's time spans", () => {
  const cases: [string, number | undefined][] = [
    ["72hours", 259200],
    ["3 days 5 hours", 277200],
    ["1h, 30m", 5400],
    ["90 secs", 90],
    ["2d", 172800],
    ["-1", -1],
    ["0", 0],
    ["1.5h", 5400],
    ["soon", undefined],
    ["", undefined],
    ["5 hours 3 days", undefined],
  ];
  for (const [text, seconds] of cases) assert.equal(parseDuration(text), seconds, text);
});

Deno.test("the shipped stafd.conf shows every option valid, with stafd's defaults", async () => {
  const text = await Deno.readTextFile(`${root}etc/stas/stafd.conf`);
  const live = text.split("\n").filter((l) => !/^#(controller|exclude)\s*=/.test(l))
    .map((l) => l.replace(/^#([a-z][a-z-]*\s*=\s*\S.*)$/, "$1")).join("\n");
  const { config, diagnostics } = parse(live);
  assert.deepEqual(diagnostics.filter((d) => d.level !== "info"), []);
  assert.deepEqual(config, defaultStafdConfig());
  const all = text.replace(/^#((controller|exclude)\s*=.*)$/gm, "$1");
  const parsed = parse(all);
  assert.equal(parsed.config.controllers.length, 2);
  assert.equal(parsed.config.excluded.length, 2);
});

Deno.test("upstream's own stafd.conf, every option uncommented, is read without a problem", () => {
  // nvme-stas 2.4.1's shipped file, options only (its comments are long).
  const upstream = `[Global]
tron=false
hdr-digest=false
data-digest=false
kato=30
queue-size=128
reconnect-delay=10
ctrl-loss-tmo=600
disable-sqflow=false
ignore-iface=false
ip-family=ipv4+ipv6
pleo=enabled
[Service Discovery]
zeroconf=enabled
[Discovery controller connection management]
persistent-connections=true
zeroconf-connections-persistence=72hours
[Controllers]
controller=
exclude=transport=tcp;traddr=fe80::2c6e:dee7:857:26bb
`;
  assert.deepEqual(problems(upstream), []);
});
