import assert from "node:assert/strict";
import { prepareRuntimeDir, UntrustedRuntimeDirError } from "../../../lib/daemon/runtime_dir.ts";

/** A scratch folder (root-owned, 0700: the tests run as root) removed afterwards. */
async function scratch(): Promise<{ base: string } & AsyncDisposable> {
  const base = await Deno.makeTempDir({ prefix: "stacd-runtime-" });
  return { base, [Symbol.asyncDispose]: () => Deno.remove(base, { recursive: true }) };
}

Deno.test("prepareRuntimeDir() creates a missing directory 0700 and accepts it", async () => {
  await using s = await scratch();
  const dir = `${s.base}/run/stacd`;
  prepareRuntimeDir(dir);
  assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
  prepareRuntimeDir(dir); // existing and sound: fine
});

Deno.test("prepareRuntimeDir() refuses a directory not owned by root", async () => {
  await using s = await scratch();
  const dir = `${s.base}/stacd`;
  await Deno.mkdir(dir, { mode: 0o700 });
  await Deno.chown(dir, 65534, 65534);
  assert.throws(() => prepareRuntimeDir(dir), (error: unknown) => {
    assert.ok(error instanceof UntrustedRuntimeDirError);
    assert.equal(
      error.message,
      `runtime directory ${dir} is owned by uid 65534, not 0: not used (chown 0 ${dir}, or remove it)`,
    );
    return true;
  });
});

Deno.test("prepareRuntimeDir() refuses a directory group or others may write", async () => {
  await using s = await scratch();
  for (const mode of [0o770, 0o702, 0o1777]) {
    const dir = `${s.base}/stacd-${mode.toString(8)}`;
    await Deno.mkdir(dir);
    await Deno.chmod(dir, mode);
    assert.throws(
      () => prepareRuntimeDir(dir),
      new RegExp(`writable by group or others \\(mode ${mode.toString(8).padStart(4, "0")}\\)`),
    );
  }
  const readable = `${s.base}/stacd-755`;
  await Deno.mkdir(readable);
  await Deno.chmod(readable, 0o755);
  prepareRuntimeDir(readable); // others may look, not write: /run itself is like that
});

Deno.test("prepareRuntimeDir() refuses a file in the directory's place", async () => {
  await using s = await scratch();
  await Deno.writeTextFile(`${s.base}/stacd`, "");
  assert.throws(() => prepareRuntimeDir(`${s.base}/stacd`));
});
