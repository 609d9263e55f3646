/**
 * No secret anywhere from stafd (issue 17 (f) and (g), docs/design.md#what-is-never-shown):
 * with a host key in sys.conf and a discovery controller line carrying
 * dhchap-secret and dhchap-ctrl-secret (upstream's stafd showed such keys in
 * its list_controllers dicts), every place is searched and none holds a
 * key: each D-Bus method and property read as root and as nobody (and
 * nobody's tron refused), stafctl's commands as tables and --json, the log
 * at DEBUG through a reload, --dump-config, /proc/PID/cmdline and environ,
 * and the runtime directory (the page cache 0600, the folder 0700).
 * Runs on Debian 13 (6.12 has DH-HMAC-CHAP):
 *   deno run -A tests/guest/run_suite.ts --platform debian13 stafd_secrets
 */
import assert from "node:assert/strict";
import { STACD_RUN_ENV, STACD_RUN_FLAGS } from "../../build/permissions.ts";
import { STAF_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { busctl, type Ran } from "../dbus/stac_fixture.ts";
import { generateKey, scratchConfig, type Secret, secretsIn } from "./auth_target.ts";
import { waitFor } from "./nvme_host.ts";
import { StacdProcess } from "./stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const debian13 = Deno.env.get("GUEST_PLATFORM") === "debian13";
const STAF = ["org.nvmexpress.staf", "/org/nvmexpress/staf"];

async function mainTs(args: string[], env: Record<string, string>): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...STACD_RUN_FLAGS, "--no-check", "--frozen", `${root}/main.ts`, ...args],
    env: { ...STACD_RUN_ENV, NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

const mode = (path: string) => (Deno.statSync(path).mode ?? 0) & 0o777;

Deno.test({
  name:
    "no key leaks from stafd: D-Bus as root and nobody, stafctl, log, dump-config, /proc, files",
  ignore: !debian13,
  fn: async () => {
    using t = createTarget({ subsystems: 2, ports: [LOOPBACK_PORT] });
    const hostKey = generateKey();
    const dcKey = generateKey(48);
    const dcCtrlKey = generateKey();
    const secrets: Secret[] = [
      { label: "sys.conf key", value: hostKey },
      { label: "the DC's dhchap-secret", value: dcKey },
      { label: "the DC's dhchap-ctrl-secret", value: dcCtrlKey },
    ];
    const captures: { where: string; text: string }[] = [];
    const capture = (where: string, text: string) => void captures.push({ where, text });

    await using s = await scratchConfig(`[Host]\nkey = ${hostKey}\n`);
    const stafdConf = s.confFile.replace(/stacd\.conf$/, "stafd.conf");
    await Deno.writeTextFile(
      stafdConf,
      "[Controllers]\ncontroller = transport=tcp;traddr=127.0.0.1;trsvcid=4420;" +
        `dhchap-secret=${dcKey};dhchap-ctrl-secret=${dcCtrlKey}\n`,
      { mode: 0o600 },
    );
    await using bus = await startPrivateBus({ policies: [STAF_POLICY] });
    const env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
    await using stafd = new StacdProcess({
      program: "stafd",
      confFile: stafdConf,
      runtimeDir: s.runtimeDir,
      env,
      args: ["--tron"],
    });
    await stafd.waitForLog(/D-Bus API on/, 60_000);
    // Connected or not (the target asks no key of a discovery host), the DC is there to show.
    await stafd.waitForLog(/Connection established!|Connect failed/, 60_000);

    const ids = [
      "sssssss",
      "tcp",
      "127.0.0.1",
      "8009",
      "nqn.2014-08.org.nvmexpress.discovery",
      "",
      "",
      "",
    ];
    const calls: [string, string[]][] = [
      ["list_controllers(false)", ["org.nvmexpress.staf", "list_controllers", "b", "false"]],
      ["list_controllers(true)", ["org.nvmexpress.staf", "list_controllers", "b", "true"]],
      ["get_all_log_pages(false)", ["org.nvmexpress.staf", "get_all_log_pages", "b", "false"]],
      ["get_all_log_pages(true)", ["org.nvmexpress.staf", "get_all_log_pages", "b", "true"]],
      ["get_log_pages", ["org.nvmexpress.staf", "get_log_pages", ...ids]],
      ["controller_info", ["org.nvmexpress.staf.debug", "controller_info", ...ids]],
      ["process_info", ["org.nvmexpress.staf.debug", "process_info"]],
    ];
    for (const asNobody of [false, true]) {
      const who = asNobody ? "nobody" : "root";
      for (const [what, args] of calls) {
        const r = await busctl(bus, ["--json=short", "call", ...STAF, ...args], { asNobody });
        assert.equal(r.code, 0, `${what} as ${who}: ${r.stderr}`);
        capture(`D-Bus ${what} as ${who}`, r.stdout);
      }
      for (const iface of ["org.nvmexpress.staf.debug", "org.nvmexpress.staf"]) {
        const r = await busctl(bus, [
          "--json=short",
          "call",
          ...STAF,
          "org.freedesktop.DBus.Properties",
          "GetAll",
          "s",
          iface,
        ], { asNobody });
        capture(`D-Bus GetAll ${iface} as ${who}`, r.stdout + r.stderr);
      }
    }
    const refused = await busctl(
      bus,
      ["set-property", ...STAF, "org.nvmexpress.staf.debug", "tron", "b", "false"],
      { asNobody: true },
    );
    assert.notEqual(refused.code, 0, "nobody may not set tron");

    // Every command as --json (every field it has), and the tables of the one showing most.
    const runs = [["ls"], ["ls", "-d"], ["status"], ["adlp", "-d"]].map((a) => [...a, "--json"]);
    for (const args of [...runs, ["status"]]) {
      const r = await mainTs(["stafctl", ...args], env);
      assert.equal(r.code, 0, `stafctl ${args.join(" ")}: ${r.stderr}`);
      capture(`stafctl ${args.join(" ")}`, r.stdout + r.stderr);
    }
    const dump = await mainTs(["stafd", "--dump-config", "-f", stafdConf], {});
    assert.equal(dump.code, 0, dump.stderr);
    capture("--dump-config", dump.stdout + dump.stderr);

    stafd.signal("SIGHUP");
    await stafd.waitForLog(/Reloading stafd's configuration/);
    await waitFor(
      () => stafd.lines.some((l) => /Log page read/.test(l)) || undefined,
      "a read",
      60_000,
    )
      .catch(() => {});
    const pid = stafd.child.pid;
    capture("/proc/PID/cmdline", Deno.readTextFileSync(`/proc/${pid}/cmdline`));
    capture("/proc/PID/environ", Deno.readTextFileSync(`/proc/${pid}/environ`));
    assert.equal(mode(s.runtimeDir), 0o700, "runtime directory");
    for (const e of Deno.readDirSync(s.runtimeDir)) {
      if (!e.isFile) continue;
      const path = `${s.runtimeDir}/${e.name}`;
      assert.equal(mode(path) & 0o077, 0, `${path} readable by others`);
      capture(`runtime file ${e.name}`, Deno.readTextFileSync(path));
    }
    assert.equal(await stafd.stop(), 0);
    capture("stafd's log (--tron)", stafd.log);

    const leaks = captures.flatMap(({ where, text }) => {
      const found = secretsIn(text, secrets);
      return found.length > 0 ? [`${where}: ${found.join(", ")}`] : [];
    });
    assert.deepEqual(leaks, []);
    assert.ok(captures.length >= 27, `${captures.length} places searched`);
    void t;
  },
});
