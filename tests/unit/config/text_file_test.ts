/**
 * The bounded config file reader on real files in a temp dir: what a
 * config path may name by mistake (a FIFO, /dev/zero, a directory, a huge
 * file) is refused at once with a clear reason, never read without end.
 */
import assert from "node:assert/strict";
import {
  CONFIG_FILE_MAX_BYTES,
  denoTextFileReader,
  FileReadError,
  VALUE_FILE_MAX_BYTES,
} from "../../../lib/config/text_file.ts";

const root = decodeURIComponent(new URL("../../../", import.meta.url).pathname);
const read = (path: string, max = CONFIG_FILE_MAX_BYTES) =>
  denoTextFileReader.readTextFile(path, max);

async function mkfifo(path: string): Promise<void> {
  const { code } = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(code, 0, "mkfifo");
}

function refused(path: string, reason: RegExp, max = CONFIG_FILE_MAX_BYTES): void {
  assert.throws(() => read(path, max), (e: unknown) => {
    assert.ok(e instanceof FileReadError, String(e));
    assert.equal(e.path, path);
    assert.match(e.message, new RegExp(`^cannot read ${path}: `));
    assert.match(e.reason, reason);
    return true;
  });
}

Deno.test("denoTextFileReader reads a file, also through a symlink; absent is undefined", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.conf`, "[Global]\ntron = true\n");
    await Deno.symlink("a.conf", `${dir}/link.conf`);
    assert.equal(read(`${dir}/a.conf`), "[Global]\ntron = true\n");
    assert.equal(read(`${dir}/link.conf`), "[Global]\ntron = true\n");
    assert.equal(read(`${dir}/missing.conf`), undefined);
    assert.equal(read(`${dir}/missing/x.conf`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("denoTextFileReader refuses a FIFO, /dev/zero and a directory without blocking", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await mkfifo(`${dir}/fifo`);
    refused(`${dir}/fifo`, /^not a regular file \(a FIFO\)$/);
    refused("/dev/zero", /^not a regular file \(a character device\)$/);
    refused(dir, /^not a regular file \(a directory\)$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("denoTextFileReader refuses a file over its limit and names the limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/big.conf`;
    await Deno.writeFile(file, new Uint8Array(CONFIG_FILE_MAX_BYTES).fill(0x23)); // '#'
    assert.equal(read(file)?.length, CONFIG_FILE_MAX_BYTES, "exactly the limit is read");
    await Deno.writeTextFile(file, "#", { append: true });
    refused(file, /^larger than 1 MiB, the limit for this file$/);
    await Deno.writeTextFile(`${dir}/hostnqn`, "n".repeat(VALUE_FILE_MAX_BYTES + 1));
    refused(`${dir}/hostnqn`, /^larger than 4 KiB/, VALUE_FILE_MAX_BYTES);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// In a child process with a deadline: a reader that blocks on the FIFO
// would otherwise hang this test run instead of failing it.
Deno.test("stacd --dump-config -f FIFO ends at once and names the problem", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await mkfifo(`${dir}/stacd.conf`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--no-check", `${root}main.ts`, "--dump-config", "-f"]
        .concat(`${dir}/stacd.conf`),
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.signal, null, "stacd was killed at the deadline: it blocked on the FIFO");
    assert.match(text, /stacd\.conf: not a regular file \(a FIFO\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
