/**
 * stacctl as users run it: a separate process (`deno run main.ts ctl ...`,
 * or the binary under the name stacctl) talking to the D-Bus service on a
 * private bus over a fake model; plus its formatting and argument handling
 * in-process.
 */
import { DBUS_DAEMON } from "../../../lib/dbus/bus_socket.ts";
import assert from "node:assert/strict";
import { connectSystemBus } from "../../../lib/dbus/bus_connection.ts";
import { runStacctl, UNREACHABLE } from "../../../lib/cli/stacctl.ts";
import {
  controllerBlocks,
  controllersTable,
  jsonText,
  showValue,
  statusText,
} from "../../../lib/cli/stacctl_format.ts";
import { fakeStacModel, HOST_NQN } from "../../dbus/fake_stac_model.ts";
import { startPrivateBus } from "../../dbus/private_bus.ts";
import { denoAsNobody, type Ran, run, startStacFixture } from "../../dbus/stac_fixture.ts";

const main = new URL("../../../main.ts", import.meta.url).pathname;

function stacctl(bus: { address: string }, args: string[]): Promise<Ran> {
  return run(Deno.execPath(), ["run", "-A", main, "ctl", ...args], {
    env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address },
  });
}

/** runStacctl in this process, output captured. */
async function inProcess(args: string[], address?: string, timeoutMs?: number) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runStacctl(args, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    address,
    timeoutMs,
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

Deno.test("stacctl ls: a table, one row per controller with the main fields", async () => {
  await using f = await startStacFixture();
  const ran = await stacctl(f.bus, ["ls"]);
  assert.equal(ran.code, 0, ran.stderr);
  const lines = ran.stdout.trimEnd().split("\n");
  assert.match(
    lines[0]!,
    /^DEVICE +TRANSPORT +TRADDR +TRSVCID +HOST-TRADDR +HOST-IFACE +SUBSYSNQN$/,
  );
  assert.match(lines[1]!, /^nvme0 +tcp +127\.0\.0\.1 +4420 +- +- +nqn\.2026-11\.io\.test:s9$/);
  assert.match(lines[2]!, /^nvme2 +tcp .*nqn\.2026-11\.io\.test:s13$/);
  assert.equal(lines.length, 3);
});

Deno.test("stacctl ls -d: every key of every controller, in readable blocks", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const ran = await stacctl(f.bus, ["ls", "--detailed"]);
  assert.equal(ran.code, 0, ran.stderr);
  const [first, second] = ran.stdout.trimEnd().split("\n\n");
  assert.match(first!, /^nvme0 {2}tcp 127\.0\.0\.1 4420 nqn\.2026-11\.io\.test:s9\n/);
  for (const [key, value] of Object.entries(model.listControllers(true)[0]!)) {
    assert.match(first!, new RegExp(`^  ${key}: *${value.replace(/[.[\]]/g, "\\$&")}$`, "m"));
  }
  assert.match(second!, /^ {2}serial: +serial-nvme2$/m);
});

Deno.test("stacctl status: process info, then each controller merged with its controller_info", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const ran = await stacctl(f.bus, ["status"]);
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /^stacd\n/);
  assert.match(ran.stdout, /^ {2}kernel support\.TP8013: +True$/m);
  assert.match(ran.stdout, /^ {2}hostkey: +None$/m);
  assert.match(ran.stdout, /^Controllers: 2$/m);
  assert.match(ran.stdout, /^nvme2 {2}tcp 127\.0\.0\.1 4420 nqn\.2026-11\.io\.test:s13$/m);
  assert.equal(model.calls.controllerInfo, 2);
});

Deno.test("stacctl status with 200 controllers stays under the bus's 128 pending calls", async () => {
  const model = fakeStacModel({ controllers: 200 });
  await using f = await startStacFixture(model);
  const ran = await inProcess(["status", "--json"], f.bus.address);
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(JSON.parse(ran.stdout).controllers.length, 200);
  assert.equal(model.calls.controllerInfo, 200);
});

Deno.test("stacctl --json: ls, ls -d and status print what stacd answers, as JSON", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const json = async (args: string[]) => {
    const ran = await stacctl(f.bus, args);
    assert.equal(ran.code, 0, ran.stderr);
    return JSON.parse(ran.stdout);
  };
  assert.deepEqual(await json(["--json", "ls"]), model.listControllers(false));
  assert.deepEqual(await json(["ls", "-d", "--json"]), model.listControllers(true));
  const status = await json(["status", "--json"]);
  assert.equal(status["config soak timer"], "1.5s [off]");
  assert.deepEqual(status.controllers.map((c: { device: string }) => c.device), ["nvme0", "nvme2"]);
  assert.equal(status.controllers[1]["dlpe.eflags.ncc"], "False");
});

Deno.test("stacctl tron / troff set stacd's tron and print it back (text and JSON)", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const on = await stacctl(f.bus, ["tron"]);
  assert.equal(on.stdout, "tron = True\n", on.stderr);
  assert.equal(model.tron, true);
  const off = await stacctl(f.bus, ["troff", "--json"]);
  assert.deepEqual(JSON.parse(off.stdout), { tron: false });
  assert.equal(model.tron, false);
});

Deno.test("stacctl tron as non-root: a permission message, exit 1, tron unchanged", async () => {
  const model = fakeStacModel();
  await using f = await startStacFixture(model);
  const ran = await denoAsNobody(["run", "-A", main, "ctl", "tron"], {
    DBUS_SYSTEM_BUS_ADDRESS: f.bus.address,
  });
  assert.equal(ran.code, 1);
  assert.equal(ran.stderr, "stacctl: permission denied: only root may turn stacd's tracing on\n");
  assert.equal(model.tron, false);
});

Deno.test("stacctl without stacd: upstream's exact message on stderr and exit 1", async () => {
  // No bus at all (no socket), then a bus where nobody owns org.nvmexpress.stac.
  const none = await stacctl({ address: "unix:path=/nonexistent/bus" }, ["ls"]);
  assert.deepEqual([none.code, none.stdout, none.stderr], [1, "", `${UNREACHABLE}\n`]);
  await using bus = await startPrivateBus();
  const empty = await stacctl(bus, ["status", "--json"]);
  assert.deepEqual([empty.code, empty.stdout, empty.stderr], [1, "", `${UNREACHABLE}\n`]);
});

Deno.test("stacctl against a stacd that never answers: the same message once the timeout passes", async () => {
  await using bus = await startPrivateBus();
  const hung = await connectSystemBus({ address: bus.address });
  try {
    hung.bus.serveCalls(() => {}); // swallows every call, answers none
    await hung.call({
      ...DBUS_DAEMON,
      member: "RequestName",
      signature: "su",
      body: ["org.nvmexpress.stac", 4],
    });
    const started = performance.now();
    const ran = await inProcess(["ls"], bus.address, 300);
    assert.deepEqual([ran.code, ran.stderr], [1, UNREACHABLE]);
    assert.ok(performance.now() - started < 2000);
  } finally {
    await hung.close();
  }
});

Deno.test("stacctl is chosen by the program name: a link named stacctl runs it", async () => {
  await using f = await startStacFixture();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.symlink(Deno.execPath(), `${dir}/stacctl`);
    const ran = await run(`${dir}/stacctl`, ["run", "-A", main, "ls", "--json"], {
      env: { DBUS_SYSTEM_BUS_ADDRESS: f.bus.address },
    });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(JSON.parse(ran.stdout).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stacctl usage: --help and -v exit 0; unknown commands and misplaced -d exit 2", async () => {
  assert.match(
    (await inProcess(["--help"])).stdout,
    /^Usage: stacctl .*\{ls \[-d\|--detailed\], status, tron, troff\}/,
  );
  assert.deepEqual(await inProcess(["-v"]), {
    code: 0,
    stdout: "stacctl 0.1.0 (nvme-stas 2.4 compatible)",
    stderr: "",
  });
  for (const args of [[], ["lsx"], ["ls", "extra"], ["status", "-d"], ["ls", "--bogus"]]) {
    const ran = await inProcess(args);
    assert.equal(ran.code, 2, args.join(" "));
    assert.match(ran.stderr, /^stacctl: .* \(see --help\)$/);
  }
});

Deno.test("controllersTable() adds HOST-NQN only when controllers use several host NQNs", () => {
  const c = {
    device: "nvme0",
    transport: "tcp",
    traddr: "::1",
    trsvcid: "4420",
    subsysnqn: "nqn.a",
    "host-nqn": HOST_NQN,
  };
  assert.doesNotMatch(controllersTable([c, { ...c, device: "nvme1" }]), /HOST-NQN/);
  assert.match(controllersTable([c, { ...c, "host-nqn": "nqn.other" }]), /SUBSYSNQN +HOST-NQN\n/);
  assert.equal(controllersTable([]), "No I/O controllers.");
  assert.deepEqual([true, false, null, "x", 3].map(showValue), ["True", "False", "None", "x", "3"]);
});

/** A model and serial number a hostile target could report: title change, CR, CSI, RLO. */
const HOSTILE = { model: "\x1b]0;owned\x07Linux\x7f", serial: "AB\rCD\u009b2J\u202eEF\u2028" };
// deno-lint-ignore no-control-regex
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

Deno.test("stacctl ls -d and status show a target's control characters escaped, never raw", async () => {
  const model = fakeStacModel({ detail: HOSTILE });
  await using f = await startStacFixture(model);
  for (const args of [["ls", "-d"], ["status"]]) {
    const ran = await inProcess(args, f.bus.address);
    assert.equal(ran.code, 0, ran.stderr);
    assert.doesNotMatch(ran.stdout, RAW, `${args.join(" ")}: a raw control character`);
    assert.match(ran.stdout, /^ {2}model: +\\x1b\]0;owned\\x07Linux\\x7f$/m);
    assert.match(ran.stdout, /^ {2}serial: +AB\\x0dCD\\x9b2J\\u202eEF\\u2028$/m);
  }
  const json = await inProcess(["ls", "-d", "--json"], f.bus.address);
  assert.doesNotMatch(json.stdout, RAW, "--json: a raw control character");
  assert.deepEqual(JSON.parse(json.stdout)[0].serial, HOSTILE.serial, "the JSON still decodes");
});

Deno.test("the formatters escape control characters in keys, values and objects alike", () => {
  const c = { device: "nvme0", subsysnqn: "nqn.\x1b[2Jx", "odd\rkey": "v", dlpe: { t: "\u202e" } };
  const texts = [
    controllersTable([c]),
    controllerBlocks([c]),
    statusText({ hostnqn: "\u2066x", controllers: [c] }),
    jsonText(c),
    showValue(c.dlpe),
  ];
  for (const text of texts) assert.doesNotMatch(text, RAW, text);
  assert.match(controllersTable([c]), /nqn\.\\x1b\[2Jx$/m);
  assert.match(controllerBlocks([c]), /^ {2}odd\\x0dkey: +v$/m);
  assert.equal(showValue(c.dlpe), '{"t":"\\u202e"}');
});
