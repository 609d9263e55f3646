/**
 * stacd reloads when its config file changes on disk (contract 2), with the
 * same soak as SIGHUP, including the way Kubernetes updates a mounted
 * ConfigMap: the file is a symlink through `..data`, and an update swaps
 * that symlink atomically to a new directory.
 */
import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { loadConfiguration } from "../../lib/configuration.ts";
import { Daemon, TIMERS } from "../../lib/daemon.ts";
import { createLogger, MemorySink } from "../../lib/logger.ts";
import { FakeKernel, MemoryStore, sysConfig } from "./fakes.ts";

async function until(probe: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!probe()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function daemonFor(confFile: string, sink: MemorySink) {
  const log = createLogger(sink);
  const daemon = new Daemon({ confFile }, {
    log,
    clock: systemClock,
    kernel: new FakeKernel(),
    store: new MemoryStore(),
    notifier: { notify() {} },
    timers: { ...TIMERS, configSoakMs: 50 },
    // The real stacd.conf reader on the watched file; sys.conf from the test.
    load: (files) => ({ ...loadConfiguration(files), sys: sysConfig() }),
  });
  return { daemon, log };
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
  const reloads = () => sink.lines.filter((l) => /Configuration reloaded/.test(l.line)).length;
  try {
    await daemon.start();
    const now = new Date();
    await Deno.utime(file, now, now);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reloads(), 0, "same content: no reload");
    await Deno.writeTextFile(file, "[Global]\ntron = true\n");
    await until(() => log.tron, "the reload");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reloads(), 1);
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
