/**
 * stacd's D-Bus service on a real dbus-daemon (private bus, shipped
 * policy), called by clients other than dbus-next: every member and
 * property with upstream's exact names and signatures, and --idl.
 */
import assert from "node:assert/strict";
import { stacIntrospectionXml } from "../../../lib/dbus/idl.ts";
import { fakeStacModel, HOST_NQN } from "../../dbus/fake_stac_model.ts";
import {
  busctl,
  dbusSend,
  hasCommand,
  introspectedMembers,
  run,
  stacCall,
  startStacFixture,
  watchPropertiesChanged,
} from "../../dbus/stac_fixture.ts";

const root = new URL("../../../", import.meta.url).pathname;
const noBusctl = !hasCommand("busctl");
const DEBUG = "org.nvmexpress.stac.debug";

/** Upstream 2.4's staslib/stacd.idl, written out: the members a compatible stacd must have. */
const UPSTREAM_MEMBERS = [
  "org.nvmexpress.stac.debug property tron b readwrite",
  "org.nvmexpress.stac.debug property log_level s read",
  "org.nvmexpress.stac.debug method process_info(out s info_json)",
  "org.nvmexpress.stac.debug method controller_info(in s transport, in s traddr, in s trsvcid, " +
  "in s subsysnqn, in s host_traddr, in s host_iface, in s host_nqn, out s info_json)",
  "org.nvmexpress.stac method list_controllers(in b detailed, out aa{ss} controller_list)",
];

Deno.test({
  name:
    "busctl introspect shows exactly upstream 2.4.1's table: members, signatures, values, flags",
  ignore: noBusctl,
  async fn() {
    await using f = await startStacFixture();
    const ran = await busctl(f.bus, ["introspect", "org.nvmexpress.stac", "/org/nvmexpress/stac"]);
    assert.equal(ran.code, 0, ran.stderr);
    const sample = await Deno.readTextFile(`${root}tests/dbus/testdata/upstream-introspect.txt`);
    const lines = (text: string) =>
      text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.trimEnd());
    assert.deepEqual(lines(ran.stdout), lines(sample));
  },
});

Deno.test("Introspect (via dbus-send) declares upstream's members with their argument names", async () => {
  await using f = await startStacFixture();
  const ran = await dbusSend(f.bus, ["org.freedesktop.DBus.Introspectable.Introspect"], {
    literal: true,
  });
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(introspectedMembers(ran.stdout).sort(), [...UPSTREAM_MEMBERS].sort());
  for (const std of ["Properties", "Introspectable", "Peer"]) {
    assert.match(ran.stdout, new RegExp(`<interface name="org.freedesktop.DBus.${std}">`));
  }
});

Deno.test("--idl=FILE writes byte for byte the XML that Introspect returns", async () => {
  await using f = await startStacFixture();
  const file = await Deno.makeTempFile({ suffix: ".xml" });
  try {
    const idl = await run(Deno.execPath(), ["run", "-A", `${root}main.ts`, `--idl=${file}`]);
    assert.equal(idl.code, 0, idl.stderr);
    const live = await dbusSend(f.bus, ["org.freedesktop.DBus.Introspectable.Introspect"], {
      literal: true,
    });
    // dbus-send --print-reply=literal prints the string as it is, after a three-space indent.
    const liveXml = live.stdout.replace(/^ {3}/, "");
    assert.equal(await Deno.readTextFile(file), liveXml);
    assert.equal(liveXml, stacIntrospectionXml());
  } finally {
    await Deno.remove(file);
  }
});

Deno.test({
  name: "list_controllers(b) -> aa{ss}: the model's dicts, summary or detailed",
  ignore: noBusctl,
  async fn() {
    await using f = await startStacFixture();
    const call = (detailed: string) => busctl(f.bus, stacCall("list_controllers", ["b", detailed]));
    const brief = JSON.parse((await call("false")).stdout);
    assert.equal(brief.type, "aa{ss}");
    assert.equal(brief.data[0].length, 2);
    assert.deepEqual(Object.keys(brief.data[0][0]).sort(), [
      "device",
      "host-iface",
      "host-nqn",
      "host-traddr",
      "subsysnqn",
      "traddr",
      "transport",
      "trsvcid",
    ]);
    assert.equal(brief.data[0][1].device, "nvme2");
    const detailed = JSON.parse((await call("true")).stdout);
    assert.equal(detailed.data[0][0]["retry connect timer"], "60.0s [off]");
    assert.equal(detailed.data[0][0]["dlpe.eflags.ncc"], "False");
  },
});

Deno.test({
  name: "process_info() -> s: the model's dict as JSON",
  ignore: noBusctl,
  async fn() {
    await using f = await startStacFixture();
    const ran = await busctl(f.bus, stacCall("process_info", [], DEBUG));
    const reply = JSON.parse(ran.stdout);
    assert.equal(reply.type, "s");
    const info = JSON.parse(reply.data[0]);
    assert.equal(info["kernel support.TP8013"], "True");
    assert.equal(info.hostkey, null);
    assert.equal(info.tron, false);
  },
});

Deno.test("controller_info(sssssss) -> s: the controller's JSON, {} when unknown", async () => {
  await using f = await startStacFixture();
  const id = ["tcp", "127.0.0.1", "4420", "nqn.2026-11.io.test:s9", "", "", HOST_NQN];
  const known = await dbusSend(
    f.bus,
    [`${DEBUG}.controller_info`, ...id.map((s) => `string:${s}`)],
    { literal: true },
  );
  assert.equal(known.code, 0, known.stderr);
  const info = JSON.parse(known.stdout.trim());
  assert.equal(info.device, "nvme0");
  assert.equal(info.cntrltype, "io");
  const other = ["tcp", "10.9.9.9", "4420", "nqn.x", "", "", HOST_NQN];
  const unknown = await dbusSend(f.bus, [
    `${DEBUG}.controller_info`,
    ...other.map((s) => `string:${s}`),
  ], { literal: true });
  assert.equal(unknown.stdout.trim(), "{}");
});

Deno.test("tron and log_level: read by Get and GetAll; root's Set changes both and emits PropertiesChanged", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  await using watcher = await watchPropertiesChanged(f.bus);
  const get = (prop: string) =>
    dbusSend(f.bus, ["org.freedesktop.DBus.Properties.Get", `string:${DEBUG}`, `string:${prop}`]);
  assert.match((await get("tron")).stdout, /variant\s+boolean false/);
  assert.match((await get("log_level")).stdout, /variant\s+string "INFO"/);
  const set = await dbusSend(f.bus, [
    "org.freedesktop.DBus.Properties.Set",
    `string:${DEBUG}`,
    "string:tron",
    "variant:boolean:true",
  ]);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(model.tron, true);
  const all = await dbusSend(f.bus, ["org.freedesktop.DBus.Properties.GetAll", `string:${DEBUG}`]);
  assert.match(all.stdout, /"tron"\s+variant\s+boolean true/);
  assert.match(all.stdout, /"log_level"\s+variant\s+string "DEBUG"/);
  await watcher.waitFor(1);
  assert.deepEqual(watcher.seen, [[DEBUG, { tron: true, log_level: "DEBUG" }]]);
});

Deno.test("a tron change from elsewhere (reload) is announced once by emitTron()", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  await using watcher = await watchPropertiesChanged(f.bus);
  model.tron = true; // as a reload changes it; app.ts then calls emitTron()
  f.service.emitTron(model.tron);
  f.service.emitTron(true); // already announced: no second signal
  f.service.emitTron(false);
  await watcher.waitFor(2);
  assert.deepEqual(watcher.seen.map(([, c]) => c.tron), [true, false]);
});

/** The calls upstream's stacctl makes, through dasbus as it makes them (Debian: python3-dasbus). */
const DASBUS_CLIENT = `
import json
from dasbus.connection import SystemMessageBus
iface = SystemMessageBus().get_proxy("org.nvmexpress.stac", "/org/nvmexpress/stac")
c = iface.list_controllers(True)[0]
info = iface.controller_info(c["transport"], c["traddr"], c["trsvcid"], c["subsysnqn"],
                             c["host-traddr"], c["host-iface"], c["host-nqn"])
iface.tron = True
print(json.dumps({"ls": iface.list_controllers(False), "info": json.loads(info),
                  "process": json.loads(iface.process_info()), "tron": iface.tron,
                  "log_level": iface.log_level}))
`;
const noDasbus = (await run("/usr/bin/python3", ["-c", "import dasbus"]).catch(() => ({ code: 1 })))
  .code !== 0;

Deno.test({
  name: "a dasbus client making upstream stacctl's calls gets what it expects",
  ignore: noDasbus,
  async fn() {
    const model = fakeStacModel();
    await using f = await startStacFixture(model);
    const ran = await run("/usr/bin/python3", ["-c", DASBUS_CLIENT], {
      env: { DBUS_SYSTEM_BUS_ADDRESS: f.bus.address },
    });
    assert.equal(ran.code, 0, ran.stderr);
    const got = JSON.parse(ran.stdout);
    assert.deepEqual(got.ls, model.listControllers(false));
    assert.equal(got.info.device, "nvme0");
    assert.equal(got.process.hostid, model.processInfo().hostid);
    assert.deepEqual([got.tron, got.log_level, model.tron], [true, "DEBUG", true]);
  },
});
