/**
 * The command line as an operator meets it (main.ts run as a process):
 * modes that need neither root nor NVMe, and the preconditions of the
 * daemon, each refused with one line and a non-zero exit.
 */
import { existsSync } from "node:fs";
import assert from "node:assert/strict";
import { run } from "../dbus/stac_fixture.ts";

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";

/** main.ts with the given arguments; `asNobody` drops root. */
function stacd(args: string[], asNobody = false) {
  const env: Record<string, string> = { NO_COLOR: "1" };
  if (asNobody) {
    // nobody cannot write root's Deno cache: give it one of its own.
    const dir = Deno.makeTempDirSync();
    Deno.chmodSync(dir, 0o777);
    env.DENO_DIR = `${dir}/deno`;
  }
  return run(Deno.execPath(), ["run", "--allow-all", "--no-check", `${root}main.ts`, ...args], {
    asNobody,
    env,
  });
}

Deno.test("--help and --version need neither root nor NVMe", async () => {
  const help = await stacd(["--help"], true);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: stacd \[OPTIONS\.\.\.\]/);
  const version = await stacd(["--version"], true);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^stacd \d+\.\d+\.\d+ .*\nlibnvme 1\.\d+/);
});

Deno.test("--dump-config works as an unprivileged user and never shows a key", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  const conf = `${dir}/stacd.conf`;
  await Deno.writeTextFile(
    conf,
    "[Global]\nkato = 30\nqueue-size = 9999\n[Controllers]\n" +
      `controller = transport=tcp;traddr=10.0.0.1;trsvcid=4420;nqn=nqn.x;dhchap-secret=${KEY}\n`,
    { mode: 0o644 },
  );
  try {
    const out = await stacd(["--dump-config", "-f", conf], true);
    assert.equal(out.code, 0, out.stderr);
    const dump = JSON.parse(out.stdout);
    assert.equal(dump.Global.kato, 30);
    assert.equal(dump.Global["queue-size"], null, "invalid value: the kernel default");
    assert.equal(dump.Controllers.controller[0]["dhchap-secret"], "<redacted>");
    assert.ok(dump.diagnostics.some((d: { option?: string }) => d.option === "queue-size"));
    assert.doesNotMatch(out.stdout + out.stderr, /DHHC-1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bad option is refused with one line and exit status 2", async () => {
  const out = await stacd(["--no-such-option"]);
  assert.equal(out.code, 2);
  assert.equal(out.stderr.trim().split("\n").length, 1);
  assert.match(out.stderr, /^stacd: .*no-such-option.*\(see --help\)/);
});

Deno.test("the daemon refuses to start unless root, with one line", async () => {
  const out = await stacd(["-f", "/nonexistent.conf"], true);
  assert.equal(out.code, 1);
  assert.equal(out.stderr.trim(), "stacd: must run as root");
});

Deno.test("the daemon refuses to start without /dev/nvme-fabrics, naming the modules", {
  ignore: Deno.uid() !== 0 || existsSync("/dev/nvme-fabrics"),
}, async () => {
  const out = await stacd(["-f", "/nonexistent.conf"]);
  assert.equal(out.code, 1);
  assert.match(
    out.stderr.trim(),
    /^stacd: \/dev\/nvme-fabrics not found: load the nvme-fabrics and nvme-tcp modules$/,
  );
});

Deno.test("main.ts stafd and stafctl are the other programs; stafd keeps its own words", async () => {
  const help = await stacd(["stafd", "--help"], true);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: stafd \[OPTIONS\.\.\.\]/);
  assert.doesNotMatch(help.stdout, /--finder/, "the one-process mode is stacd's");
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  try {
    const conf = `${dir}/stafd.conf`;
    await Deno.writeTextFile(
      conf,
      `[Controllers]\ncontroller = transport=tcp;traddr=10.0.0.1;dhchap-secret=${KEY}\n`,
      { mode: 0o600 },
    );
    await Deno.chown(conf, 65534, 65534);
    const dump = await stacd(["stafd", "--dump-config", "-f", conf], true);
    assert.equal(dump.code, 0, dump.stderr);
    assert.doesNotMatch(dump.stdout, /DHHC-1/);
    const parsed = JSON.parse(dump.stdout);
    assert.equal(parsed.Controllers.controller[0].nqn, "nqn.2014-08.org.nvmexpress.discovery");
    assert.equal(
      parsed["Discovery controller connection management"]["persistent-connections"],
      true,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const ctl = await stacd(["stafctl", "--help"], true);
  assert.equal(ctl.code, 0);
  assert.match(ctl.stdout, /^Usage: stafctl /);
  const badType = await stacd(["stafctl", "dlp", "-a", "10.0.0.1", "-s", "8009", "-t", "ib"], true);
  assert.equal(badType.code, 2);
  assert.match(badType.stderr, /-t\/--transport must be tcp, rdma, fc or loop/);
});

Deno.test("stafd refuses to run as nobody, in its own words", async () => {
  const out = await stacd(["stafd"], true);
  assert.equal(out.code, 1);
  assert.equal(out.stderr.trim(), "stafd: must run as root");
});
