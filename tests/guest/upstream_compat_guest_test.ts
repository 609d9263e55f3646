/**
 * Our stacd among upstream's own tools (docs/design.md#d-bus-api, issue 4): nvme-stas
 * 2.4.1's real stafd (Debian 13's package, python) reads the guest's nvmet
 * discovery controller and our stacd connects every subsystem it
 * discovered; upstream's stacctl (ls, ls -d, status, tron, troff) then works
 * against our stacd, as root and as nobody, and prints what its format
 * holds. Everything runs on a private bus configured with Debian's own
 * policy files for both names. The Debian 13 guest's root is the trixie
 * root with nvme-stas installed, so no chroot is needed. Runs only there:
 *   deno run -A tests/guest/run_suite.ts --platform debian13 upstream_compat
 */
import assert from "node:assert/strict";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import { startPrivateBus } from "../dbus/private_bus.ts";
import { AS_NOBODY, type Ran } from "../dbus/stac_fixture.ts";
import { LoggedProcess } from "./logged_process.ts";
import {
  controllers,
  deleteAllControllers,
  hostIdentity,
  sysfsAttribute,
  waitFor,
} from "./nvme_host.ts";
import { stacdConf, StacdProcess, TEST_TIMER_SCALE } from "./stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";
import { UPSTREAM_PROCESS_INFO_KEYS } from "../upstream_keys.ts";

const debian13 = Deno.env.get("GUEST_PLATFORM") === "debian13";
/** Debian's nvme-stas package installs these; they are the policies users run with. */
const DEBIAN_POLICIES = [
  "/usr/share/dbus-1/system.d/org.nvmexpress.stac.conf",
  "/usr/share/dbus-1/system.d/org.nvmexpress.staf.conf",
];
/** Everything is slow under TCG, python's start-up included. */
const WAIT_MS = 120_000;

/** The keys of upstream 2.4.1's list_controllers(false) dicts (without config keys: secrets). */
const ID_KEYS = [
  "device",
  "host-iface",
  "host-nqn",
  "host-traddr",
  "subsysnqn",
  "traddr",
  "transport",
  "trsvcid",
];
/**
 * The keys of each controller in upstream 2.4.1's `stacctl ls -d`
 * (docs/design.md#controller-dicts).
 */
const DETAILED_KEYS = [
  ...ID_KEYS,
  "cntrltype",
  "connect attempts",
  "connected",
  "dctype",
  "dlpe",
  "dlpe.eflags.ncc",
  "hostid",
  "hostnqn",
  "model",
  "retry connect timer",
  "serial",
].sort();
/** The keys of upstream 2.4.1's `stacctl status`: process_info's and `controllers`. */
const STATUS_KEYS = [...UPSTREAM_PROCESS_INFO_KEYS, "controllers"];

/** Runs a command (as nobody with `asNobody`) and collects its output. */
async function run(
  command: string[],
  opts: { env?: Record<string, string>; asNobody?: boolean; stdin?: string } = {},
): Promise<Ran> {
  const [cmd, ...args] = opts.asNobody ? [...AS_NOBODY, ...command] : command;
  const child = new Deno.Command(cmd!, {
    args,
    env: opts.env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.stdin));
    await writer.close();
  }
  const out = await child.output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** What upstream's stacctl printed (pprint of Python values), as JSON values, read by Python. */
async function pythonValue(printed: string): Promise<unknown> {
  const r = await run([
    "python3",
    "-c",
    "import ast, json, sys; print(json.dumps(ast.literal_eval(sys.stdin.read())))",
  ], { stdin: printed });
  assert.equal(r.code, 0, `not a Python literal:\n${printed}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The live I/O controllers (stafd's discovery controller left out): NQN -> device. */
function liveIo(): Map<string, string> {
  return new Map(
    controllers()
      .filter((c) => c.state === "live" && c.subsysnqn !== DISCOVERY_NQN)
      .map((c) => [c.subsysnqn, c.name]),
  );
}

Deno.test({
  name:
    "upstream's stafd feeds our stacd, which connects every discovered subsystem; upstream's stacctl lists them",
  ignore: !debian13,
  fn: async () => {
    using t = createTarget({ subsystems: 6, ports: [LOOPBACK_PORT] });
    // Disposed last but the target: after stafd, which would reconnect its discovery controller.
    await using _controllers = { [Symbol.asyncDispose]: deleteAllControllers };
    await using bus = await startPrivateBus({ policies: DEBIAN_POLICIES });
    const env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
    const dir = await Deno.makeTempDir({ prefix: "stacd-upstream-" });
    await Deno.writeTextFile(
      `${dir}/stafd.conf`,
      "[Service Discovery]\nzeroconf = disabled\n" +
        `[Controllers]\ncontroller = transport=tcp;traddr=${LOOPBACK_PORT.traddr};trsvcid=${LOOPBACK_PORT.trsvcid}\n`,
    );
    await Deno.writeTextFile(`${dir}/stacd.conf`, stacdConf([]));
    const started = performance.now();
    await using stafd = new LoggedProcess(
      new Deno.Command("python3", {
        args: ["/usr/sbin/stafd", "-f", `${dir}/stafd.conf`, "--tron"],
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn(),
    );
    await using stacd = new StacdProcess({
      confFile: `${dir}/stacd.conf`,
      runtimeDir: `${dir}/run`,
      env,
    });
    const want = [...t.nqns].sort().join("\n");
    await waitFor(
      () => [...liveIo().keys()].sort().join("\n") === want || undefined,
      `our stacd connecting the ${t.nqns.length} subsystems stafd discovers`,
      WAIT_MS,
    ).catch((error) => {
      throw new Error(
        `${error.message}\n---- stafd ----\n${stafd.log}\n---- stacd ----\n${stacd.log}`,
      );
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`stafd and stacd started: all ${t.nqns.length} subsystems live after ${seconds} s`);
    await stacd.waitForLog(/D-Bus API on/);

    // What upstream's stafd itself says it discovered: exactly what our stacd connected.
    const pages = await run([
      "dbus-send",
      `--bus=${bus.address}`,
      "--print-reply=literal",
      "--dest=org.nvmexpress.staf",
      "/org/nvmexpress/staf",
      "org.nvmexpress.staf.get_all_log_pages",
      "boolean:false",
    ]);
    assert.equal(pages.code, 0, pages.stderr);
    const discovered = (JSON.parse(pages.stdout.trim()) as { "log-pages": Entry[] }[])
      .flatMap((p) => p["log-pages"])
      .filter((e) => e.subtype === "nvme")
      .map((e) => e.subnqn);
    assert.deepEqual(discovered.sort(), [...t.nqns].sort(), "stafd's log pages");

    const live = liveIo();
    const { hostnqn, hostid } = hostIdentity();
    const stacctl = async (args: string[], asNobody = false) => {
      const r = await run(["stacctl", ...args], { env, asNobody });
      const who = asNobody ? "nobody" : "root";
      assert.doesNotMatch(r.stderr, /Traceback/, `stacctl ${args.join(" ")} as ${who}`);
      assert.equal(r.code, 0, `stacctl ${args.join(" ")} as ${who}: ${r.stderr}`);
      return r.stdout;
    };

    // ls, ls -d and status as root and as nobody; what they print is read back by Python.
    const commands = [["ls"], ["ls", "-d"], ["status"]];
    const who = [false, true].flatMap((asNobody) => commands.map((args) => ({ args, asNobody })));
    const printed = await Promise.all(who.map((w) => stacctl(w.args, w.asNobody)));
    const values = await pythonValue(`[${printed.join(",\n")}]`) as unknown[];
    const byCommand = (i: number) => values.filter((_, j) => j % commands.length === i);

    for (const ls of byCommand(0) as Record<string, string>[][]) {
      assert.deepEqual(ls.map((c) => c.subsysnqn).sort(), [...t.nqns].sort());
      for (const c of ls) {
        assert.deepEqual(Object.keys(c).sort(), ID_KEYS, "ls: upstream's keys, no others");
        assert.equal(c.device, live.get(c.subsysnqn!), "ls shows the kernel's device");
        assert.deepEqual(
          [c.transport, c.traddr, c.trsvcid, c["host-nqn"], c["host-traddr"], c["host-iface"]],
          ["tcp", "127.0.0.1", "4420", hostnqn, "", ""],
        );
      }
    }

    const detailed = (byCommand(1) as Record<string, string>[][]).flat();
    assert.equal(detailed.length, 2 * t.nqns.length);
    for (const c of detailed) {
      assert.deepEqual(Object.keys(c).sort(), DETAILED_KEYS, "ls -d: upstream's keys");
      assert.equal(c.device, live.get(c.subsysnqn!));
      assert.equal(c.connected, "True");
      assert.equal(c.cntrltype, "io");
      assert.equal(c.dctype, sysfsAttribute(c.device!, "dctype"), "as the kernel prints it (none)");
      assert.equal(c.serial, sysfsAttribute(c.device!, "serial"));
      assert.equal(c.model, "Linux");
      assert.equal(c.hostnqn, hostnqn);
      assert.equal(c.hostid, hostid);
      assert.equal(c["connect attempts"], "0");
      // As upstream's timer before any failure: the slow retry period (scaled in tests), off.
      assert.equal(
        c["retry connect timer"],
        `${(60 * Number(TEST_TIMER_SCALE)).toFixed(1)}s [off]`,
      );
      assert.equal(c["dlpe.eflags.ncc"], "False");
    }
    // Each controller's log page entry, as stafd sent it: a Python literal like upstream's.
    const dlpes = await pythonValue(`[${detailed.map((c) => c.dlpe).join(",\n")}]`) as Entry[];
    dlpes.forEach((dlpe, i) => {
      assert.equal(dlpe.subnqn, detailed[i]!.subsysnqn);
      assert.deepEqual([dlpe.trtype, dlpe.traddr, dlpe.trsvcid], ["tcp", "127.0.0.1", "4420"]);
    });

    for (const status of byCommand(2) as Record<string, unknown>[]) {
      for (const key of STATUS_KEYS) assert.ok(key in status, `status lacks "${key}"`);
      assert.equal(status.hostnqn, hostnqn);
      assert.equal(status.hostkey, null);
      assert.equal(status.tron, false);
      assert.equal(status["log-level"], "INFO");
      const merged = status.controllers as Record<string, string>[];
      assert.deepEqual(merged.map((c) => c.subsysnqn).sort(), [...t.nqns].sort());
      for (const c of merged) {
        for (const key of DETAILED_KEYS) assert.ok(key in c, `status controller lacks "${key}"`);
      }
    }

    // tron and troff: root sets it and reads it back; nobody is refused by the policy.
    assert.equal((await stacctl(["tron"])).trim(), "tron = True");
    await stacd.waitForLog(/Trace on|tron on/);
    assert.equal((await stacctl(["troff"])).trim(), "tron = False");
    const refused = await run(["stacctl", "tron"], { env, asNobody: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Unable to communicate with stacd over D-Bus/);
    assert.doesNotMatch(refused.stderr, /Traceback/);

    assert.doesNotMatch(stafd.log, /Traceback/, stafd.log);
    assert.equal(await stacd.stop(), 0);
  },
});

/** A discovery log page entry as stafd sends it (all values strings). */
interface Entry {
  subtype?: string;
  subnqn?: string;
  trtype?: string;
  traddr?: string;
  trsvcid?: string;
}

/** The keys of upstream 2.4.1's stafctl `ls` dicts. */
const STAF_ID_KEYS = [...ID_KEYS];
/** The keys of upstream 2.4.1's log page entries, as its stafctl prints them. */
const ENTRY_KEYS = [
  "adrfam",
  "asqsz",
  "cntlid",
  "eflags",
  "portid",
  "subnqn",
  "subtype",
  "traddr",
  "treq",
  "trsvcid",
  "trtype",
];

Deno.test({
  name:
    "our stafd feeds upstream's stacd, which connects every subsystem; upstream's stafctl reads our stafd",
  ignore: !debian13,
  fn: async () => {
    using t = createTarget({ subsystems: 6, ports: [LOOPBACK_PORT] });
    await using _controllers = { [Symbol.asyncDispose]: deleteAllControllers };
    await using bus = await startPrivateBus({ policies: DEBIAN_POLICIES });
    const env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
    const dir = await Deno.makeTempDir({ prefix: "stafd-upstream-" });
    await Deno.writeTextFile(
      `${dir}/stafd.conf`,
      `[Controllers]\ncontroller = transport=tcp;traddr=${LOOPBACK_PORT.traddr};trsvcid=${LOOPBACK_PORT.trsvcid}\n`,
    );
    await Deno.writeTextFile(`${dir}/stacd.conf`, stacdConf([]));
    const started = performance.now();
    await using stafd = new StacdProcess({
      program: "stafd",
      confFile: `${dir}/stafd.conf`,
      runtimeDir: `${dir}/stafd-run`,
      env,
    });
    await using stacd = new LoggedProcess(
      new Deno.Command("python3", {
        args: ["/usr/sbin/stacd", "-f", `${dir}/stacd.conf`],
        env: { ...env, RUNTIME_DIRECTORY: `${dir}/stacd-run` },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn(),
    );
    const want = [...t.nqns].sort().join("\n");
    await waitFor(
      () => [...liveIo().keys()].sort().join("\n") === want || undefined,
      `upstream's stacd connecting the ${t.nqns.length} subsystems our stafd discovers`,
      WAIT_MS,
    ).catch((error) => {
      throw new Error(
        `${error.message}\n---- stafd ----\n${stafd.log}\n---- stacd ----\n${stacd.log}`,
      );
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `our stafd, upstream's stacd: all ${t.nqns.length} subsystems live after ${seconds} s`,
    );

    const stafctl = async (args: string[], asNobody = false) => {
      const r = await run(["stafctl", ...args], { env, asNobody });
      const who = asNobody ? "nobody" : "root";
      assert.doesNotMatch(r.stderr, /Traceback/, `stafctl ${args.join(" ")} as ${who}`);
      assert.equal(r.code, 0, `stafctl ${args.join(" ")} as ${who}: ${r.stderr}`);
      return r.stdout;
    };
    const dc = ["-a", LOOPBACK_PORT.traddr, "-s", String(LOOPBACK_PORT.trsvcid)];
    const commands = [["ls"], ["ls", "-d"], ["status"], ["adlp", "-d"], ["dlp", ...dc]];
    const who = [false, true].flatMap((asNobody) => commands.map((args) => ({ args, asNobody })));
    const printed = await Promise.all(who.map((w) => stafctl(w.args, w.asNobody)));
    for (const text of printed) assert.doesNotMatch(text, /DHHC-1|NVMeTLSkey/);
    const values = await pythonValue(`[${printed.join(",\n")}]`) as unknown[];
    const byCommand = (i: number) => values.filter((_, j) => j % commands.length === i);
    const dcDevice = controllers().find((c) => c.subsysnqn === DISCOVERY_NQN)?.name;

    for (const ls of byCommand(0) as Record<string, string>[][]) {
      assert.equal(ls.length, 1);
      assert.deepEqual(Object.keys(ls[0]!).sort(), STAF_ID_KEYS);
      assert.equal(ls[0]!.device, dcDevice);
      assert.equal(ls[0]!.subsysnqn, DISCOVERY_NQN);
    }
    for (const ls of byCommand(1) as Record<string, string>[][]) {
      assert.equal(ls[0]!.connected, "True");
      assert.equal(ls[0]!.cntrltype, "discovery");
    }
    for (const status of byCommand(2) as Record<string, unknown>[]) {
      assert.equal(status.hostnqn, hostIdentity().hostnqn);
      const merged = status.controllers as Record<string, unknown>[];
      assert.equal(merged.length, 1);
      const pages = merged[0]!.log_pages as Record<string, string>[];
      const nvme = pages.filter((e) => e.subtype === "nvme");
      assert.deepEqual(nvme.map((e) => e.subnqn).sort(), [...t.nqns].sort());
    }
    for (const adlp of byCommand(3) as Record<string, unknown>[][]) {
      const entries = adlp[0]!["log-pages"] as Record<string, string>[];
      for (const e of entries) assert.deepEqual(Object.keys(e).sort(), ENTRY_KEYS);
    }
    for (const dlp of byCommand(4) as Record<string, string>[][]) {
      assert.deepEqual(
        dlp.filter((e) => e.subtype === "nvme").map((e) => e.subnqn).sort(),
        [...t.nqns].sort(),
      );
    }

    assert.equal((await stafctl(["tron"])).trim(), "tron = True");
    await stafd.waitForLog(/tron on/);
    assert.equal((await stafctl(["troff"])).trim(), "tron = False");
    const refused = await run(["stafctl", "tron"], { env, asNobody: true });
    assert.notEqual(refused.code, 0);
    assert.doesNotMatch(refused.stderr, /Traceback/);
    assert.doesNotMatch(stacd.log, /Traceback/, stacd.log);
  },
});
