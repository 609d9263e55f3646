/**
 * `deno task compile` (build/compile.ts) short of the denort runtime this
 * machine cannot download: main.ts type-checks, its module graph is all
 * local with no development-only package, the baked flags are
 * build/permissions.ts's, the task fails with one line without a usable
 * DENORT_BIN, and stacd runs with exactly those flags. A canary keeps the
 * flags honest: the day Deno accepts scoped /sys access, it fails.
 */
import assert from "node:assert/strict";
import {
  compileArgs,
  ENTRY,
  graphProblems,
  npmExcludes,
  unshippedPackageNames,
} from "../../../build/compile.ts";
import {
  denoRunArgs,
  SCOPED_PERMISSION_FLAGS,
  STACD_RUN_FLAGS,
} from "../../../build/permissions.ts";

const root = decodeURIComponent(new URL("../../../", import.meta.url).pathname);
const deno = Deno.execPath();
const lockText = Deno.readTextFileSync(`${root}package-lock.json`);

/** Runs deno; `env` adds to this process's environment unless `clearEnv`. */
async function run(args: string[], env: Record<string, string> = {}, clearEnv = false) {
  const r = await new Deno.Command(deno, {
    args,
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    clearEnv,
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: r.code, stdout: text.decode(r.stdout), stderr: text.decode(r.stderr) };
}

/** The environment without DENORT_BIN (a developer may have one set). */
function envWithout(name: string): Record<string, string> {
  const env = Deno.env.toObject();
  delete env[name];
  return env;
}

Deno.test("main.ts type-checks (deno compile checks it too)", async () => {
  const r = await run(["check", ENTRY]);
  assert.equal(r.code, 0, r.stderr);
});

Deno.test("main.ts's module graph is local and holds no dev or optional package", async () => {
  const r = await run(["info", "--json", ENTRY]);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.deepEqual(graphProblems(info, unshippedPackageNames(lockText)), []);
  assert.ok(info.modules.length > 40, "the graph was read");
});

Deno.test("graphProblems() flags remote modules and unshipped packages", () => {
  const problems = graphProblems({
    modules: [
      { specifier: "file:///x/main.ts" },
      { specifier: "https://example.com/mod.ts" },
      { specifier: "jsr:@std/assert" },
      { specifier: "file:///x/node_modules/yaml/dist/index.js" },
      { specifier: "file:///x/node_modules/dbus-next/index.js" },
    ],
  }, new Set(["yaml"]));
  assert.equal(problems.length, 3, problems.join("\n"));
});

Deno.test("the compile command bakes build/permissions.ts's flags and leaves dev packages out", () => {
  const args = compileArgs("out/stacd", lockText);
  assert.deepEqual(args.slice(1, 1 + STACD_RUN_FLAGS.length), [...STACD_RUN_FLAGS]);
  assert.equal(args.at(-1), ENTRY);
  const excluded = npmExcludes(lockText).filter((a) => a !== "--exclude");
  // .bin links to the 90 MB deno binary; deno and the test libraries are dev-only;
  // usocket (a native add-on) and what it pulls in are optional.
  const unshipped = ["node_modules/.bin", "node_modules/deno", "node_modules/kubernetes-models"];
  for (const dev of [...unshipped, "node_modules/usocket"]) assert.ok(excluded.includes(dev), dev);
  for (const prod of ["node_modules/dbus-next", "node_modules/ipaddr.js"]) {
    assert.ok(!excluded.includes(prod), prod);
  }
});

Deno.test("the compile task without DENORT_BIN fails at once with one line", async () => {
  const out = await Deno.makeTempDir();
  try {
    const args = ["run", "-A", "build/compile.ts", "--output", `${out}/stacd`];
    const r = await run(args, envWithout("DENORT_BIN"), true);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /^compile: DENORT_BIN is not set: .*denort/);
    assert.deepEqual([...Deno.readDirSync(out)], [], "nothing built");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("the compile task with DENORT_BIN naming no file fails with one line", async () => {
  const r = await run(["run", "-A", "build/compile.ts"], { DENORT_BIN: "/nonexistent/denort" });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "compile: DENORT_BIN=/nonexistent/denort: no such file\n");
});

Deno.test("the compile task refuses a full deno as DENORT_BIN: the result is not stacd", async () => {
  // deno compile accepts it, but the binary then runs Deno's own CLI.
  const out = await Deno.makeTempDir();
  try {
    const r = await run(["run", "-A", "build/compile.ts", "--output", `${out}/stacd`], {
      DENORT_BIN: deno,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(
      r.stderr,
      /--version printed "deno .*", not stacd's version: DENORT_BIN=.* is not a denort/,
    );
    assert.deepEqual([...Deno.readDirSync(out)], [], "the wrong binary is removed");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("stacd answers --help, --version and --dump-config with exactly the baked flags", async () => {
  const help = await run(denoRunArgs(ENTRY, ["--help"]));
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: stacd/);
  const version = await run(denoRunArgs(ENTRY, ["--version"]));
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^stacd \d+\.\d+\.\d+ .*\nlibnvme /);
  const dump = await run(denoRunArgs(ENTRY, ["--dump-config", "-f", "etc/stas/stacd.conf"]));
  // No host NQN on a machine without /etc/nvme is a clean one-line failure.
  if (dump.code === 0) assert.equal(JSON.parse(dump.stdout).file, "etc/stas/stacd.conf");
  else assert.match(dump.stderr, /^stacd: no host NQN/);
});

Deno.test("canary: Deno still refuses scoped access to /sys, so the flags stay --allow-all", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(script, 'Deno.readDirSync("/sys/class");\n');
    const r = await run(["run", "--no-prompt", ...SCOPED_PERMISSION_FLAGS, script]);
    assert.notEqual(
      r.code,
      0,
      "Deno now reads /sys with scoped flags: narrow PERMISSION_FLAGS in build/permissions.ts",
    );
    assert.match(r.stderr, /Requires all access to "\/sys\/class"/);
  } finally {
    await Deno.remove(script);
  }
});
