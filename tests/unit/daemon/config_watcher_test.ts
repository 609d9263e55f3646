/**
 * stacd reloads when its config file changes on disk (docs/design.md#watching-the-files), with the
 * same soak as SIGHUP, including the way Kubernetes updates a mounted
 * ConfigMap: the file is a symlink through `..data`, and an update swaps
 * that symlink atomically to a new directory.
 */
import assert from "node:assert/strict";
import { systemClock } from "../../../lib/clock.ts";
import { FileReadError } from "../../../lib/config/text_file.ts";
import { Daemon } from "../../../lib/daemon/daemon.ts";
import { TIMERS } from "../../../lib/daemon/timers.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import { controllerLine, FakeKernel, HOSTID, HOSTNQN, MemoryStore } from "../fakes.ts";

async function until(probe: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!probe()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A stacd on the real files: stacd.conf `confFile`, sys.conf beside it unless given. */
function daemonFor(
  confFile: string,
  sink: MemorySink,
  sysConfFile = `${confFile.slice(0, confFile.lastIndexOf("/"))}/sys.conf`,
) {
  Deno.writeTextFileSync(sysConfFile, `[Host]\nnqn = ${HOSTNQN}\nid = ${HOSTID}\n`);
  const log = createLogger(sink);
  const kernel = new FakeKernel();
  const daemon = new Daemon({ confFile, sysConfFile }, {
    log,
    clock: systemClock,
    kernel,
    store: new MemoryStore(),
    notifier: { notify() {} },
    timers: { ...TIMERS, configSoakMs: 50 },
  });
  return { daemon, log, kernel };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CONFIGURED = `[Controllers]\n${controllerLine("192.168.1.20")}\n`;
const reloads = (sink: MemorySink) =>
  sink.lines.filter((l) => /Configuration reloaded/.test(l.line)).length;

type Stacd = ReturnType<typeof daemonFor> & { file: string; sysConf: string; sink: MemorySink };

/**
 * Runs `body` with a started stacd connected to CONFIGURED's controller,
 * stacd.conf in a temp dir and sys.conf beside it or (`apart`) in another.
 */
async function withConnectedStacd(body: (t: Stacd) => Promise<void>, apart = false) {
  const dir = await Deno.makeTempDir();
  const sysDir = apart ? `${dir}/stas` : dir;
  await Deno.mkdir(sysDir, { recursive: true });
  const file = `${dir}/stacd.conf`;
  const sysConf = `${sysDir}/sys.conf`;
  await Deno.writeTextFile(file, CONFIGURED);
  const sink = new MemorySink();
  const stacd = daemonFor(file, sink, sysConf);
  try {
    await stacd.daemon.start();
    await until(() => stacd.kernel.devices.length === 1, "the connect");
    await body({ ...stacd, file, sysConf, sink });
  } finally {
    await stacd.daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a ConfigMap update (the ..data symlink swapped) reloads stacd's configuration", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/..2026_v1`);
  await Deno.writeTextFile(`${dir}/..2026_v1/stacd.conf`, "[Global]\ntron = false\n");
  await Deno.symlink("..2026_v1", `${dir}/..data`);
  await Deno.symlink("..data/stacd.conf", `${dir}/stacd.conf`);
  const sink = new MemorySink();
  const { daemon, log } = daemonFor(`${dir}/stacd.conf`, sink);
  try {
    await daemon.start();
    assert.equal(log.tron, false);
    // What the kubelet does: write the new version, point a temp link at it, rename over ..data.
    await Deno.mkdir(`${dir}/..2026_v2`);
    await Deno.writeTextFile(`${dir}/..2026_v2/stacd.conf`, "[Global]\ntron = true\n");
    await Deno.symlink("..2026_v2", `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    await Deno.remove(`${dir}/..2026_v1`, { recursive: true });
    await until(() => log.tron, "the reload");
    assert.match(sink.text(), /Configuration reloaded from/);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an edit of the file reloads once; touching it without a change does not", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/stacd.conf`;
  await Deno.writeTextFile(file, "[Global]\ntron = false\n");
  const sink = new MemorySink();
  const { daemon, log } = daemonFor(file, sink);
  try {
    await daemon.start();
    const now = new Date();
    await Deno.utime(file, now, now);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reloads(sink), 0, "same content: no reload");
    await Deno.writeTextFile(file, "[Global]\ntron = true\n");
    await until(() => log.tron, "the reload");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reloads(sink), 1);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an edit made after the load but before the watcher started is not lost", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/stacd.conf`;
  await Deno.writeTextFile(file, "[Global]\ntron = false\n");
  const sink = new MemorySink();
  const { daemon, log } = daemonFor(file, sink);
  try {
    // The daemon read the file when it was made; the watcher starts in start().
    await Deno.writeTextFile(file, "[Global]\ntron = true\n");
    await daemon.start();
    await until(() => log.tron, "the reload");
    assert.match(sink.text(), /Configuration reloaded from/);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a config file gone for a while is not applied by the watcher; SIGHUP applies it", () =>
  withConnectedStacd(async ({ daemon, log, kernel, file, sink }) => {
    // An editor that renames the old file away before writing the new one.
    await Deno.rename(file, `${file}~`);
    await sleep(400);
    assert.equal(reloads(sink), 0, "the watcher applied the absence");
    const gone = sink.lines.filter((l) => l.line.includes(`${file} is gone`));
    assert.equal(gone.length, 1, sink.text());
    await Deno.writeTextFile(file, `[Global]\ntron = true\n${CONFIGURED}`);
    await until(() => log.tron, "the reload of the new file");
    assert.equal(reloads(sink), 1);
    // Only an explicit SIGHUP applies a file that is not there.
    await Deno.remove(file);
    await sleep(400);
    assert.equal(reloads(sink), 1);
    assert.deepEqual(kernel.disconnects, []);
    daemon.reload();
    assert.match(sink.text(), /stacd\.conf not found; defaults are used/);
    await until(() => kernel.disconnects.length === 1, "the disconnect SIGHUP asked for");
  }));

Deno.test("a config file that cannot be read keeps the running configuration", () =>
  withConnectedStacd(async ({ daemon, kernel, file, sink }) => {
    const before = daemon.configuration;
    // We run as root, so chmod 000 does not stop a read: a directory in its place does.
    await Deno.remove(file);
    await Deno.mkdir(file);
    const failed = () => sink.lines.filter((l) => /Reload failed/.test(l.line));
    await until(() => failed().length === 1, "the failed reload");
    assert.match(failed()[0]!.line, /not a regular file \(a directory\).*is kept/);
    assert.equal(daemon.configuration, before);
    await sleep(400);
    assert.equal(failed().length, 1, "one error, not one per look");
    assert.deepEqual(kernel.disconnects, []);
  }));

Deno.test("a config file that exists but cannot be read stops the start", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/stacd.conf`);
    assert.throws(
      () => daemonFor(`${dir}/stacd.conf`, new MemorySink()),
      (e: unknown) => e instanceof FileReadError && /stacd\.conf: not a regular/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sys.conf change in another directory than stacd.conf's reloads stacd", () =>
  withConnectedStacd(async ({ daemon, sysConf, sink }) => {
    const hostNqn = () => daemon.configuration.sys.hostNqn;
    assert.equal(hostNqn(), HOSTNQN);
    await sleep(200); // past the look start() takes: only an event can bring the change
    const other = "nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555";
    await Deno.writeTextFile(sysConf, `[Host]\nnqn = ${other}\nid = ${HOSTID}\n`);
    await until(() => hostNqn() === other, "the reload of sys.conf");
    // sys.conf follows the same rules: gone is not applied by the watcher.
    await Deno.remove(sysConf);
    await sleep(400);
    assert.equal(hostNqn(), other);
    assert.equal(reloads(sink), 1);
  }, true));
