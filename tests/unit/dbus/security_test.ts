/**
 * Who may do what on stacd's D-Bus API, and what never leaves it: the
 * shipped bus policy (only root owns the name and sets tron; anyone reads
 * and calls), the service's own root check behind it, and secrets.
 */
import assert from "node:assert/strict";
import { looksSecret, stringValues, withoutSecrets } from "../../../lib/dbus/secrets_filter.ts";
import { fakeStacModel, HOST_NQN, SECRET } from "../../dbus/fake_stac_model.ts";
import { STAC_POLICY } from "../../dbus/private_bus.ts";
import { dbusSend, denoAsNobody, errorName, startStacFixture } from "../../dbus/stac_fixture.ts";

const root = new URL("../../../", import.meta.url).pathname;
const DEBUG = "org.nvmexpress.stac.debug";
const setTron = (on: boolean) => [
  "org.freedesktop.DBus.Properties.Set",
  `string:${DEBUG}`,
  "string:tron",
  `variant:boolean:${on}`,
];

Deno.test("a non-root client reads and calls everything but gets AccessDenied setting tron; root may", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const asNobody = { asNobody: true };
  const get = await dbusSend(f.bus, [
    "org.freedesktop.DBus.Properties.Get",
    `string:${DEBUG}`,
    "string:tron",
  ], asNobody);
  assert.equal(get.code, 0, get.stderr);
  const list = await dbusSend(
    f.bus,
    ["org.nvmexpress.stac.list_controllers", "boolean:true"],
    asNobody,
  );
  assert.equal(list.code, 0, list.stderr);
  const info = await dbusSend(f.bus, [`${DEBUG}.process_info`], asNobody);
  assert.equal(info.code, 0, info.stderr);

  const denied = await dbusSend(f.bus, setTron(true), asNobody);
  assert.equal(errorName(denied), "org.freedesktop.DBus.Error.AccessDenied");
  assert.equal(model.tron, false);
  const allowed = await dbusSend(f.bus, setTron(true));
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(model.tron, true);
});

Deno.test("under a policy that lets anyone Set, the service itself still refuses non-root", async () => {
  const dir = await Deno.makeTempDir();
  const lax = `${dir}/lax.conf`;
  await Deno.writeTextFile(
    lax,
    `<busconfig><policy context="default"><allow send_destination="org.nvmexpress.stac"/></policy></busconfig>`,
  );
  const model = fakeStacModel();
  try {
    await using f = await startStacFixture(model, { policies: [STAC_POLICY, lax] });
    const denied = await dbusSend(f.bus, setTron(true), { asNobody: true });
    assert.equal(errorName(denied), "org.freedesktop.DBus.Error.AccessDenied");
    assert.match(denied.stderr, /Only root may set tron/);
    assert.equal(model.tron, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("only root may own org.nvmexpress.stac: nobody's attempt fails with a clear message", async () => {
  await using f = await startStacFixture();
  await f.service.close(); // free the name: the refusal must come from the policy, not from a taken name
  const ran = await denoAsNobody(["run", "-A", `${root}tests/dbus/own_name.ts`], {
    DBUS_SYSTEM_BUS_ADDRESS: f.bus.address,
  });
  assert.equal(ran.code, 1, ran.stderr);
  assert.match(ran.stdout, /Cannot own the D-Bus name org.nvmexpress.stac: .*not allowed to own/);
});

/** Every reply that carries controller or process data, as text. */
async function everyReply(f: { bus: { address: string } }): Promise<string> {
  const id = ["tcp", "127.0.0.1", "4420", "nqn.2026-11.io.test:s13", "", "", HOST_NQN];
  const replies = await Promise.all([
    dbusSend(f.bus, ["org.nvmexpress.stac.list_controllers", "boolean:false"]),
    dbusSend(f.bus, ["org.nvmexpress.stac.list_controllers", "boolean:true"]),
    dbusSend(f.bus, [`${DEBUG}.process_info`]),
    dbusSend(f.bus, [`${DEBUG}.controller_info`, ...id.map((s) => `string:${s}`)]),
    dbusSend(f.bus, ["org.freedesktop.DBus.Properties.GetAll", `string:${DEBUG}`]),
  ]);
  for (const r of replies) assert.equal(r.code, 0, r.stderr);
  return replies.map((r) => r.stdout).join("\n");
}

Deno.test("no reply carries a secret: the service adds none to what the model shows", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const text = await everyReply(f);
  assert.match(text, /nvme2/); // the controller configured with a key is listed...
  assert.doesNotMatch(text, /DHHC-1|dhchap/i); // ...without its key
});

Deno.test("a model that leaks a key is filtered: no secret leaves, the leak is logged by key name only", async () => {
  await using f = await startStacFixture(fakeStacModel({ leaky: true }));
  const text = await everyReply(f);
  assert.match(text, /nvme2/);
  assert.doesNotMatch(text, /DHHC-1|dhchap/i);
  const log = f.sink.text();
  assert.match(log, /dropped secret-looking field "dhchap-secret" from list_controllers/);
  assert.match(log, /dropped secret-looking field "hostkey" from process_info/);
  assert.doesNotMatch(log, new RegExp(SECRET.slice(0, 20)));
});

Deno.test("withoutSecrets() drops dhchap* keys and DHHC-1/NVMeTLSkey-1 values, keeps the rest", () => {
  const { clean, dropped } = withoutSecrets({
    device: "nvme0",
    "dhchap-secret": "x",
    dhchap_ctrl_secret: "",
    note: `key ${SECRET}`,
    psk: "NVMeTLSkey-1:01:abc:",
    hostkey: null,
  });
  assert.deepEqual(clean, { device: "nvme0", hostkey: null });
  assert.deepEqual(dropped, ["dhchap-secret", "dhchap_ctrl_secret", "note", "psk"]);
  assert.equal(looksSecret("DHCHAP-Secret", ""), true);
});

Deno.test("stringValues() keeps a{ss} encodable: text for numbers and booleans, drops the rest", () => {
  assert.deepEqual(
    stringValues({ a: "x", b: 3, c: true, d: null, e: undefined, f: { g: 1 } }),
    { a: "x", b: "3", c: "true" },
  );
});
