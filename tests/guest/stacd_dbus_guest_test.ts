/**
 * stacd on a real dbus-daemon in the guest, fed by a discovery stand-in
 * that reads the real nvmet discovery controller (issue 4's guest tests):
 * stacd connects every discovered nvme subsystem, disconnects one unlinked
 * from the port after log_pages_changed, audits nvme-cli connections only
 * under all-connections-matching-disconnect-trtypes, and stacctl shows the
 * live state. Runs only in the guest: run_suite.ts stacd_dbus
 */
import { STACD_RUN_ENV, STACD_RUN_FLAGS } from "../../build/permissions.ts";
import assert from "node:assert/strict";
import { discoverySource } from "../dbus/stafd_sources.ts";
import { STAC_POLICY, STAF_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { StafdStandin } from "../stafd_standin.ts";
import {
  controllers,
  controllersOf,
  deleteAllControllers,
  hostIdentity,
  nvme,
  waitFor,
} from "./nvme_host.ts";
import { notOnDebian13 } from "./platform.ts";
import { liveNqns, stacdConf, StacdProcess, waitForLiveSet } from "./stacd_process.ts";
import { createTarget, LOOPBACK_PORT, type TargetPort } from "./target.ts";

const OTHER_PORT: TargetPort = { id: 2, adrfam: "ipv4", traddr: "127.0.0.1", trsvcid: 4421 };
const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/** A private bus, the stand-in on it reading the target's discovery controller, and stacd. */
async function setup(conf: string) {
  const bus = await startPrivateBus({ policies: [STAC_POLICY, STAF_POLICY] });
  const source = await discoverySource({ dcs: ["transport=tcp;traddr=127.0.0.1;trsvcid=4420"] });
  const stafd = await StafdStandin.start(bus.address, await source.read());
  stafd.use(source);
  const dir = await Deno.makeTempDir({ prefix: "stacd-dbus-" });
  await Deno.writeTextFile(`${dir}/stacd.conf`, conf);
  const stacd = new StacdProcess({
    confFile: `${dir}/stacd.conf`,
    runtimeDir: `${dir}/run`,
    env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address },
  });
  const ctl = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...STACD_RUN_FLAGS,
        "--no-check",
        "--frozen",
        `${root}main.ts`,
        "ctl",
        ...args,
      ],
      env: { ...STACD_RUN_ENV, DBUS_SYSTEM_BUS_ADDRESS: bus.address, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  };
  return {
    stafd,
    stacd,
    ctl,
    async [Symbol.asyncDispose]() {
      await stacd[Symbol.asyncDispose]();
      await stafd.close();
      await bus.close();
      await deleteAllControllers();
    },
  };
}

Deno.test("stacd connects every nvme subsystem stafd discovers, and disconnects one unlinked from the port", async () => {
  using t = createTarget({ subsystems: 6, ports: [LOOPBACK_PORT] });
  await using s = await setup(stacdConf([]));
  await waitForLiveSet(t.nqns);
  await s.stacd.waitForLog(/D-Bus API on/);
  const gone = t.nqns[0]!;
  t.target.unlinkSubsystem(LOOPBACK_PORT.id, gone);
  await s.stafd.reload(); // re-read the real discovery log page, then log_pages_changed
  s.stafd.changed();
  // The kernel alone would keep reconnecting to it until ctrl-loss-tmo: stacd deletes it.
  await waitFor(() => controllersOf(gone).length === 0 || undefined, `${gone} deleted`, 60_000);
  await waitForLiveSet(t.nqns.slice(1));
  await s.stacd.waitForLog(new RegExp(`${gone.replace(/\./g, "\\.")}.*Disconnected`));
});

// stacctl and the D-Bus model are userland: one platform is enough, and
// Debian 13's run also has upstream's own stacctl against the same stacd.
Deno.test({
  name: "stacctl ls, ls -d, status, tron and troff show the live state (tables and --json)",
  ignore: notOnDebian13,
}, async () => {
  using t = createTarget({ subsystems: 3, ports: [LOOPBACK_PORT] });
  await using s = await setup(stacdConf([]));
  await waitForLiveSet(t.nqns);
  await s.stacd.waitForLog(/D-Bus API on/);

  const ls = JSON.parse((await s.ctl("ls", "--json")).stdout) as Record<string, string>[];
  const kernel = controllers();
  assert.deepEqual(ls.map((c) => c.subsysnqn).sort(), [...t.nqns].sort());
  for (const c of ls) {
    const k = kernel.find((x) => x.subsysnqn === c.subsysnqn)!;
    assert.equal(c.device, k.name, "stacctl shows the kernel's device");
    assert.equal(c.traddr, "127.0.0.1");
    assert.equal(c.trsvcid, "4420");
    assert.equal(c["host-nqn"], hostIdentity().hostnqn);
  }
  const detailed = JSON.parse((await s.ctl("ls", "-d", "--json")).stdout) as Record<
    string,
    string
  >[];
  for (const c of detailed) {
    assert.equal(c.connected, "True");
    assert.equal(c.cntrltype, "io");
    assert.equal(c.model, "Linux");
    assert.notEqual(c.dlpe, "None", "discovered: its log page entry is shown");
  }
  const table = await s.ctl("ls");
  assert.equal(table.code, 0);
  for (const nqn of t.nqns) assert.match(table.stdout, new RegExp(nqn.replace(/\./g, "\\.")));

  assert.equal((await s.ctl("tron")).code, 0);
  let status = JSON.parse((await s.ctl("status", "--json")).stdout);
  assert.equal(status.tron, true);
  assert.equal(status["log-level"], "DEBUG");
  assert.equal(status.controllers.length, 3);
  // What the running kernel's fabrics driver lists, as stacd's kernel adapter read it.
  const options = Deno.readTextFileSync("/dev/nvme-fabrics");
  for (const [key, option] of [["TP8013", "discovery"], ["host_iface", "host_iface"]]) {
    const listed = new RegExp(`(^|,)${option}(=|,|$)`, "m").test(options.trim());
    assert.equal(status[`kernel support.${key}`], listed ? "True" : "False", key);
  }
  assert.equal((await s.ctl("troff")).code, 0);
  status = JSON.parse((await s.ctl("status", "--json")).stdout);
  assert.equal(status.tron, false);
  assert.equal(status["log-level"], "INFO");
  assert.match((await s.ctl("status")).stdout, /hostnqn/);
});

for (
  const scope of ["only-stas-connections", "all-connections-matching-disconnect-trtypes"] as const
) {
  Deno.test({
    name: `(g) a connection made with nvme-cli that nobody wants, under ${scope}`,
    ignore: scope !== "only-stas-connections" && notOnDebian13,
  }, async () => {
    // s1 is discovered (port 4420); s2 is linked only to port 4421, which no stafd knows.
    using t = createTarget({ subsystems: 2, ports: [LOOPBACK_PORT] });
    const [wanted, stranger] = t.nqns as [string, string];
    t.target.unlinkSubsystem(LOOPBACK_PORT.id, stranger);
    t.target.createPort(OTHER_PORT.id, OTHER_PORT);
    t.target.linkSubsystem(OTHER_PORT.id, stranger);
    const { hostnqn, hostid } = hostIdentity();
    await nvme(
      ...["connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4421", "-n", stranger],
      ...["--hostnqn", hostnqn, "--hostid", hostid],
    );
    await waitFor(
      () => controllersOf(stranger).find((c) => c.state === "live"),
      "nvme-cli's connection",
      60_000,
    );
    await using s = await setup(stacdConf([], { management: `disconnect-scope = ${scope}` }));
    await waitFor(
      () => controllersOf(wanted).find((c) => c.state === "live"),
      "the discovered subsystem",
      60_000,
    );
    if (scope === "only-stas-connections") {
      // Give an audit every chance to (wrongly) act: stafd answered, a pass ran.
      await s.stacd.waitForLog(/Connection established!/);
      await new Promise((r) => setTimeout(r, 3_000));
      assert.deepEqual(
        liveNqns(),
        [stranger, wanted].sort(),
        "someone else's connection is left alone",
      );
    } else {
      await waitFor(
        () => controllersOf(stranger).length === 0 || undefined,
        "audit disconnects it",
        60_000,
      );
      // Adopted by the audit (maybe before stafd answered), disconnected once its answer is known.
      await s.stacd.waitForLog(
        new RegExp(`${stranger.replace(/\./g, "\\.")}.*(Disconnected|disconnecting)`),
      );
      assert.deepEqual(liveNqns(), [wanted]);
    }
  });
}
