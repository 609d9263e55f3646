/**
 * The runtime directory (last-known config, lock, health socket) full or
 * read-only: a tiny tmpfs mounted on it. While running, stacd keeps managing
 * controllers and says "Unable to save last known config"; once the
 * directory is usable again the next change is saved. Read-only from the
 * start, stacd cannot take its single-instance lock: it exits at once with
 * the reason and touches no connection; so it does when the directory is
 * one that someone other than root could change.
 * Runs only in the guest: deno task faults runtime
 */
import assert from "node:assert/strict";
import { connectRaw, controllers, hostIdentity } from "../guest/nvme_host.ts";
import { run } from "../guest/host.ts";
import { stacdConf, StacdProcess, waitForLiveSet } from "../guest/stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "../guest/target.ts";
import {
  assertNoDuplicates,
  assertSurvived,
  faultTest,
  identities,
  KernelWatch,
  linesSince,
  replaceFile,
  scratch,
} from "./fault_kit.ts";

async function mount(...args: string[]): Promise<void> {
  const r = await run("mount", args);
  if (r.code !== 0) throw new Error(`mount ${args.join(" ")} failed: ${r.stderr.trim()}`);
}

/**
 * Unmounts `dir`, waiting up to 10 s while it is busy: on a slow guest a
 * short-lived helper (a `stacd --health` probe) can still hold it. If it
 * stays busy, the error names the processes with a file or cwd under it.
 */
async function umount(dir: string): Promise<void> {
  for (let waited = 0;; waited += 250) {
    const r = await run("umount", [dir]);
    if (r.code === 0) return;
    if (!/busy/.test(r.stderr) || waited >= 10_000) {
      throw new Error(`umount ${dir} failed: ${r.stderr.trim()}; held by: ${holders(dir)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The processes with an open file or their cwd under `dir`, from /proc. */
function holders(dir: string): string {
  const found: string[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const links: string[] = [];
    try {
      links.push(Deno.readLinkSync(`/proc/${entry.name}/cwd`));
      for (const fd of Deno.readDirSync(`/proc/${entry.name}/fd`)) {
        links.push(Deno.readLinkSync(`/proc/${entry.name}/fd/${fd.name}`));
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
    const held = links.filter((l) => l === dir || l.startsWith(`${dir}/`));
    if (held.length === 0) continue;
    let comm = "?";
    try {
      comm = Deno.readTextFileSync(`/proc/${entry.name}/comm`).trim();
    } catch {
      // gone meanwhile
    }
    found.push(`${entry.name} (${comm}): ${held.join(", ")}`);
  }
  return found.join("; ") || "nobody visible";
}

/** A tmpfs on `dir` with these options, unmounted on dispose. */
async function tmpfs(dir: string, options: string): Promise<AsyncDisposable> {
  await Deno.mkdir(dir, { recursive: true });
  await mount("-t", "tmpfs", "-o", options, "tmpfs", dir);
  return { [Symbol.asyncDispose]: async () => void await run("umount", [dir]) };
}

/** The subsystems in the saved last-known config (undefined: no file). */
function saved(runtimeDir: string): string[] | undefined {
  try {
    const text = Deno.readTextFileSync(`${runtimeDir}/last-known-config`);
    return (JSON.parse(text) as { controllers: { subsysnqn: string }[] }).controllers
      .map((c) => c.subsysnqn).sort();
  } catch {
    return undefined;
  }
}

faultTest("runtime directory full, then read-only, while stacd runs", async (record) => {
  using t = createTarget({ subsystems: 6, ports: [LOOPBACK_PORT] });
  const s = await scratch();
  // One 4 KiB page: the lock file's PID takes it, nothing is left for the config.
  await using _mount = await tmpfs(s.runtimeDir, "size=4k,mode=0700");
  await Deno.writeTextFile(s.confFile, stacdConf(t.nqns.slice(0, 4)));
  await using watch = new KernelWatch();
  await using stacd = new StacdProcess(s);
  await waitForLiveSet(t.nqns.slice(0, 4), 60_000);
  await stacd.waitForLog(/Unable to save last known config.*No space left/);
  record.injected = "full, read-only";
  watch.keep(identities());

  // Read-only for new opens (stacd's lock is open for writing, so the
  // tmpfs itself cannot be remounted read-only): a read-only bind on top.
  await mount("--bind", s.runtimeDir, s.runtimeDir);
  await mount("-o", "remount,bind,ro", s.runtimeDir);
  let mark = stacd.lines.length;
  replaceFile(s.confFile, stacdConf(t.nqns.slice(0, 5)));
  stacd.signal("SIGHUP");
  await waitForLiveSet(t.nqns.slice(0, 5), 60_000);
  await stacd.waitForLog(/Unable to save last known config.*Read-only file system/);
  assert.equal(linesSince(stacd, mark, /Unable to save last known config/).length >= 1, true);
  await assertSurvived(stacd, record);

  // Usable again: the next change is saved, with every controller stacd manages.
  await umount(s.runtimeDir);
  await mount("-o", "remount,size=1m", s.runtimeDir);
  mark = stacd.lines.length;
  replaceFile(s.confFile, stacdConf(t.nqns));
  stacd.signal("SIGHUP");
  await waitForLiveSet(t.nqns, 60_000);
  await stacd.waitForLog(/Connection established!/);
  assert.deepEqual(saved(s.runtimeDir), [...t.nqns].sort(), "saved once the directory is usable");
  assert.deepEqual(linesSince(stacd, mark, /Unable to save/), []);
  await assertSurvived(stacd, record);
  watch.assertClean();
  assertNoDuplicates();
  record.stateCorrect = true;
  assert.equal(await stacd.stop(), 0);
});

faultTest("runtime directory read-only from the start", async (record) => {
  using t = createTarget({ subsystems: 2, ports: [LOOPBACK_PORT] });
  const s = await scratch();
  await using _mount = await tmpfs(s.runtimeDir, "ro,size=1m,mode=0700");
  await Deno.writeTextFile(s.confFile, stacdConf(t.nqns));
  // A connection made before: whatever stacd does, it must stay.
  const { hostnqn, hostid } = hostIdentity();
  connectRaw(
    `nqn=${
      t.nqns[0]
    },transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=${hostnqn},hostid=${hostid}`,
  );
  await waitForLiveSet([t.nqns[0]!], 30_000);
  await using watch = new KernelWatch();
  watch.keep(identities());
  record.injected = "read-only at start";
  await using stacd = new StacdProcess(s);
  const { code } = await stacd.child.status;
  await stacd.stop();
  // Without its lock stacd cannot tell whether another one manages the host.
  assert.notEqual(code, 0, "stacd refuses to run");
  const reason = stacd.lines.find((l) => /^stacd: cannot lock/.test(l));
  assert.match(reason ?? "", /Read-only file system/, `one line says why\n${stacd.log}`);
  record.notes.push(`exit ${code}: ${reason}`);
  record.survived = true; // exited cleanly, as it should
  watch.assertClean();
  assert.deepEqual(controllers().map((c) => c.subsysnqn), [t.nqns[0]], "nothing else connected");
  record.stateCorrect = true;
});

faultTest("runtime directory others could change: refused at start", async (record) => {
  using t = createTarget({ subsystems: 1, ports: [LOOPBACK_PORT] });
  record.injected = "owned by nobody; mode 0777";
  const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
    ["owned by nobody", (dir) => Deno.chown(dir, 65534, 65534), /owned by uid 65534, not 0/],
    ["mode 0777", (dir) => Deno.chmod(dir, 0o777), /writable by group or others \(mode 0777\)/],
  ];
  for (const [what, spoil, why] of cases) {
    const s = await scratch();
    await Deno.writeTextFile(s.confFile, stacdConf(t.nqns));
    await Deno.mkdir(s.runtimeDir, { mode: 0o700 });
    await spoil(s.runtimeDir);
    await using stacd = new StacdProcess(s);
    const { code } = await stacd.child.status;
    await stacd.stop();
    assert.notEqual(code, 0, `${what}: stacd refuses to run`);
    const reason = stacd.lines.find((l) => /^stacd: runtime directory/.test(l));
    assert.match(reason ?? "", why, `${what}: one line says why\n${stacd.log}`);
    assert.deepEqual([...Deno.readDirSync(s.runtimeDir)], [], `${what}: nothing written there`);
    record.notes.push(`${what}: exit ${code}`);
  }
  record.survived = true; // exited cleanly, as it should
  assert.deepEqual(controllers(), [], "nothing connected");
  record.stateCorrect = true;
});
