/**
 * No secret anywhere (issue 8, docs/design.md#what-is-never-shown): with DH-HMAC-CHAP keys
 * configured and stacd connected through a target that demands them, every
 * place a key could leak is searched and none holds one: each D-Bus reply
 * (every method, GetAll of both interfaces, Introspect, tron's Set) called
 * as root and as nobody, and everything on the bus as dbus-monitor sees it;
 * stacctl ls, ls -d and status, as tables and as --json; the log at DEBUG
 * (through a reload and the stop); --dump-config; the health socket's
 * answer; /proc/PID/cmdline and environ; the runtime directory (the
 * last-known config is 0600, the folder 0700) and every file modified since
 * stacd started under /run, /tmp, /var and /etc. The config files the test
 * wrote are left out of that scan and must be 0600. Each key is looked for
 * whole and by its base64 body, and so is every key the kernel holds
 * (/sys/class/nvme/nvmeX/dhchap_secret, dhchap_ctrl_secret).
 * The keys: the sys.conf host key (inline), per-controller dhchap-secret and
 * dhchap-ctrl-secret (bidirectional), a key on an open subsystem, keys of a
 * controller whose connects fail (the error path), and a malformed key
 * (reported at load). Runs only on Debian 13 (6.12 authenticates):
 *   deno run -A tests/guest/run_suite.ts --platform debian13 secrets
 */
import assert from "node:assert/strict";
import { STACD_RUN_ENV, STACD_RUN_FLAGS } from "../../build/permissions.ts";
import { STAC_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { dbusSend, type Ran } from "../dbus/stac_fixture.ts";
import {
  assertNoSecret,
  authTarget,
  generateKey,
  scratchConfig,
  type Secret,
  secretsIn,
} from "./auth_target.ts";
import { controllers, hostIdentity, sysfsAttribute } from "./nvme_host.ts";
import { StacdProcess, waitForLiveSet } from "./stacd_process.ts";

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const debian13 = Deno.env.get("GUEST_PLATFORM") === "debian13";

/** What one place showed: searched for every secret at the end, all places at once. */
interface Capture {
  where: string;
  text: string;
}

/** The places among `captures` that hold a secret, each with the secrets' labels. */
function leaks(captures: readonly Capture[], secrets: readonly Secret[]): string[] {
  return captures.flatMap(({ where, text }) => {
    const found = secretsIn(text, secrets);
    return found.length > 0 ? [`${where}: ${found.join(", ")}`] : [];
  });
}

/** `key` with one bit of its first byte flipped: base64 and length right, CRC-32 wrong. */
function corrupted(key: string): string {
  const body = atob(key.split(":")[2]!);
  return `DHHC-1:00:${btoa(String.fromCharCode(body.charCodeAt(0) ^ 1) + body.slice(1))}:`;
}

/** Runs main.ts (stacd, or stacctl with "ctl") as root and collects its output. */
async function stacdCommand(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...STACD_RUN_FLAGS, "--no-check", "--frozen", `${root}/main.ts`, ...args],
    env: { ...STACD_RUN_ENV, NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Every regular file under `dir`, recursively (sockets and links are not files stacd wrote). */
function filesUnder(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) return filesUnder(path);
    return e.isFile ? [path] : [];
  });
}

/** Regular files under `dirs` modified after `marker` was, leaving out `prune` (folders). */
async function filesModifiedSince(
  marker: string,
  dirs: string[],
  prune: string[],
): Promise<string[]> {
  const pruned = prune.flatMap((p, i) => [...(i > 0 ? ["-o"] : []), "-path", p]);
  const out = await new Deno.Command("find", {
    args: [...dirs, "(", ...pruned, ")", "-prune", "-o", "-type", "f", "-newer", marker, "-print0"],
    stdout: "piped",
    stderr: "null", // files vanishing during the walk are not an error here
  }).output();
  return new TextDecoder().decode(out.stdout).split("\0").filter(Boolean);
}

/** A file's bytes as text (latin1, so a binary file is searched too). */
function readAnyFile(path: string): string {
  return new TextDecoder("latin1").decode(Deno.readFileSync(path));
}

/** Reads what stacd's health socket answers. */
async function askHealth(path: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    const buffer = new Uint8Array(256);
    const n = await conn.read(buffer);
    return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}

/**
 * dbus-monitor on `address` (root may monitor), attached once it has printed
 * its first message; its output is kept until stop().
 */
async function monitorBus(address: string): Promise<{ stop(): Promise<string> }> {
  const child = new Deno.Command("dbus-monitor", {
    args: ["--address", address],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let text = "";
  let attached = () => {};
  const first = new Promise<void>((resolve) => attached = resolve);
  const pump = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      attached();
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([first, new Promise((r) => timer = setTimeout(r, 10_000))]);
  clearTimeout(timer);
  return {
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await child.status;
      await pump;
      return text;
    },
  };
}

const mode = (path: string) => (Deno.statSync(path).mode ?? 0) & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

Deno.test("the leak check finds a key whole or by its base64 body alone, and names the place", () => {
  const key = generateKey();
  const body = key.split(":")[2]!;
  const secrets = [{ label: "the host key", value: key }];
  assert.deepEqual(leaks([{ where: "a log", text: `x ${key} y` }], secrets), [
    "a log: the host key",
  ]);
  assert.deepEqual(leaks([{ where: "a reply", text: `'secret': '${body}'` }], secrets), [
    "a reply: the host key",
  ]);
  assert.deepEqual(leaks([{ where: "clean", text: "dhchap-secret: <redacted>" }], secrets), []);
  assert.throws(() => assertNoSecret(`...${body}...`, [key], "somewhere"), /in somewhere/);
});

Deno.test({
  name:
    "no key leaks from stacd: D-Bus as root and nobody, stacctl, log, dump-config, /proc, files",
  ignore: !debian13,
  fn: async () => {
    const nqn = (name: string) => `nqn.2026-11.io.test:secrets-${name}`;
    const SYS = nqn("sys"); // authenticated with the sys.conf host key
    const BIDI = nqn("bidi"); // its own dhchap-secret and dhchap-ctrl-secret
    const OPEN = nqn("open"); // open subsystem: the kernel takes and holds the key anyway
    const REFUSED = nqn("refused"); // nobody listens: keys on the connect-failure path
    const MALFORMED = nqn("malformed"); // a bad key: reported at load, never used
    const { hostnqn } = hostIdentity();
    const hostKey = generateKey();
    const ctrlKey = generateKey();
    const openKey = generateKey(48);
    const refusedKey = generateKey(64);
    const refusedCtrlKey = generateKey();
    const malformedKey = corrupted(generateKey());
    const secrets: Secret[] = [
      { label: "sys.conf key (also secrets-bidi's dhchap-secret)", value: hostKey },
      { label: "secrets-bidi's dhchap-ctrl-secret", value: ctrlKey },
      { label: "secrets-open's dhchap-secret", value: openKey },
      { label: "secrets-refused's dhchap-secret", value: refusedKey },
      { label: "secrets-refused's dhchap-ctrl-secret", value: refusedCtrlKey },
      { label: "secrets-malformed's dhchap-secret", value: malformedKey },
    ];
    const captures: Capture[] = [];
    const capture = (where: string, text: string) => void captures.push({ where, text });

    using _target = authTarget({ secured: [SYS, BIDI], open: [OPEN], hostKey, ctrlKey });
    await using s = await scratchConfig(`[Host]\nkey = ${hostKey}\n`);
    const line = (name: string, extra = "", port = 4420) =>
      `controller = transport=tcp;traddr=127.0.0.1;trsvcid=${port};nqn=${name}${extra}`;
    await Deno.writeTextFile(
      s.confFile,
      [
        "[Controllers]",
        line(SYS),
        line(BIDI, `;dhchap-secret=${hostKey};dhchap-ctrl-secret=${ctrlKey}`),
        line(OPEN, `;dhchap-secret=${openKey}`),
        line(REFUSED, `;dhchap-secret=${refusedKey};dhchap-ctrl-secret=${refusedCtrlKey}`, 4499),
        line(MALFORMED, `;dhchap-secret=${malformedKey}`),
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const configFiles = ["/etc/stas/sys.conf", s.confFile];
    await using bus = await startPrivateBus({ policies: [STAC_POLICY] });
    const monitor = await monitorBus(bus.address);
    const marker = `${s.confFile}.started`;
    await Deno.writeTextFile(marker, "");

    await using stacd = new StacdProcess({
      ...s,
      args: ["--tron"],
      env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address },
    });
    await waitForLiveSet([SYS, BIDI, OPEN], 90_000);
    await stacd.waitForLog(/D-Bus API on/, 60_000);
    await stacd.waitForLog(/WARNING: .*secrets-malformed.*dhchap-secret/);
    // The second failure is the ERROR line: the failure path ran with its keys, twice.
    await stacd.waitForLog(/ERROR: .*secrets-refused.*Connect failed/, 60_000);

    // The keys the kernel holds are secrets too; and they prove the connects used ours.
    const held = new Map<string, string>();
    // Only live ones: the refused controller comes and goes as its connects are retried.
    for (const c of controllers().filter((c) => c.state === "live")) {
      for (const attribute of ["dhchap_secret", "dhchap_ctrl_secret"]) {
        const value = sysfsAttribute(c.name, attribute);
        held.set(`${c.subsysnqn} ${attribute}`, value);
        if (value !== "none") secrets.push({ label: `${c.name}/${attribute}`, value });
      }
    }
    assert.equal(held.get(`${SYS} dhchap_secret`), hostKey);
    assert.equal(held.get(`${BIDI} dhchap_ctrl_secret`), ctrlKey);
    assert.equal(held.get(`${OPEN} dhchap_secret`), openKey);

    // D-Bus: every method, property and introspection, as root and as nobody.
    const id = (name: string, port = 4420) =>
      ["tcp", "127.0.0.1", String(port), name, "", "", hostnqn].map((v) => `string:${v}`);
    const calls: { args: string[]; path?: string }[] = [
      { args: ["org.nvmexpress.stac.list_controllers", "boolean:false"] },
      { args: ["org.nvmexpress.stac.list_controllers", "boolean:true"] },
      { args: ["org.nvmexpress.stac.debug.process_info"] },
      ...[SYS, BIDI, OPEN, MALFORMED].map((n) => ({
        args: ["org.nvmexpress.stac.debug.controller_info", ...id(n)],
      })),
      { args: ["org.nvmexpress.stac.debug.controller_info", ...id(REFUSED, 4499)] },
      ...["org.nvmexpress.stac", "org.nvmexpress.stac.debug"].map((iface) => ({
        args: ["org.freedesktop.DBus.Properties.GetAll", `string:${iface}`],
      })),
      ...["/", "/org", "/org/nvmexpress", "/org/nvmexpress/stac"].map((path) => ({
        path,
        args: ["org.freedesktop.DBus.Introspectable.Introspect"],
      })),
    ];
    for (const asNobody of [false, true]) {
      const who = asNobody ? "nobody" : "root";
      const replies = await Promise.all(
        calls.map((c) => dbusSend(bus, c.args, { asNobody, path: c.path })),
      );
      replies.forEach((r, i) => {
        const call = calls[i]!;
        const what = `D-Bus ${call.path ?? ""} ${call.args.join(" ")} as ${who}`;
        assert.equal(r.code, 0, `${what}: ${r.stderr}`);
        capture(what, r.stdout + r.stderr);
      });
      for (const i of [0, 1]) {
        for (const n of [SYS, BIDI, OPEN, REFUSED]) assert.match(replies[i]!.stdout, new RegExp(n));
      }
      assert.match(replies[2]!.stdout, /"hostkey": ?"<redacted>"/, `process_info as ${who}`);
      assert.match(replies[3]!.stdout, /"connected": ?"True"/, `controller_info as ${who}`);
    }
    const setTron = (value: boolean, asNobody: boolean) =>
      dbusSend(bus, [
        "org.freedesktop.DBus.Properties.Set",
        "string:org.nvmexpress.stac.debug",
        "string:tron",
        `variant:boolean:${value}`,
      ], { asNobody });
    const refused = await setTron(false, true);
    assert.match(refused.stderr, /AccessDenied/);
    capture("D-Bus Set tron as nobody", refused.stdout + refused.stderr);
    for (const value of [false, true]) {
      const r = await setTron(value, false);
      assert.equal(r.code, 0, r.stderr);
      capture(`D-Bus Set tron ${value} as root`, r.stdout + r.stderr);
    }

    // stacctl, both output forms of each command.
    const busEnv = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
    const forms = [["ls"], ["ls", "-d"], ["status"]].flatMap((c) => [c, [...c, "--json"]]);
    const ran = await Promise.all(forms.map((f) => stacdCommand(["ctl", ...f], busEnv)));
    ran.forEach((r, i) => {
      const what = `stacctl ${forms[i]!.join(" ")}`;
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.match(r.stdout, /secrets-bidi/, what);
      capture(what, r.stdout + r.stderr);
    });

    const dump = await stacdCommand(["--dump-config", "-f", s.confFile]);
    assert.equal(dump.code, 0, dump.stderr);
    assert.match(dump.stdout, /<redacted>/);
    capture("--dump-config", dump.stdout + dump.stderr);
    capture("the health socket", await askHealth(`${s.runtimeDir}/health.sock`));
    const pid = stacd.child.pid;
    capture("/proc/PID/cmdline", Deno.readTextFileSync(`/proc/${pid}/cmdline`));
    capture("/proc/PID/environ", Deno.readTextFileSync(`/proc/${pid}/environ`));

    // A reload re-reads both files, then the stop saves the last-known config.
    stacd.signal("SIGHUP");
    await stacd.waitForLog(/Configuration reloaded/);
    assert.equal(await stacd.stop(), 0);
    capture("stacd's log (--tron)", stacd.log);
    assert.match(stacd.log, /DEBUG: /);
    capture("dbus-monitor (all bus traffic)", await monitor.stop());

    const lastKnown = `${s.runtimeDir}/last-known-config`;
    assert.match(Deno.readTextFileSync(lastKnown), /secrets-bidi/);
    assert.equal(octal(mode(lastKnown)), "0600", "the last-known config's mode");
    assert.equal(octal(mode(s.runtimeDir)), "0700", "the runtime directory's mode");
    const runtimeFiles = filesUnder(s.runtimeDir);
    for (const file of runtimeFiles) capture(`runtime file ${file}`, readAnyFile(file));
    const modified = (await filesModifiedSince(marker, ["/run", "/tmp", "/var", "/etc"], [root]))
      .filter((f) => !configFiles.includes(f));
    for (const file of modified) {
      try {
        capture(`file ${file} (modified since stacd started)`, readAnyFile(file));
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    for (const file of configFiles) {
      assert.equal(octal(mode(file)), "0600", `${file}, which holds keys`);
    }

    const found = leaks(captures, secrets);
    const perFolder = new Map<string, number>();
    for (const f of modified) {
      const top = f.split("/").slice(0, 3).join("/");
      perFolder.set(top, (perFolder.get(top) ?? 0) + 1);
    }
    console.log(
      `searched ${captures.length} places for ${secrets.length} keys; ` +
        `${runtimeFiles.length} runtime files; files modified since start: ` +
        [...perFolder].map(([dir, n]) => `${dir} ${n}`).join(", "),
    );
    assert.ok(found.length === 0, `keys leaked:\n${found.join("\n")}`);
  },
});
