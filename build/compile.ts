/**
 * `deno task compile`: builds out/stacd with `deno compile`, the permission
 * flags of build/permissions.ts baked in, and out/stacctl as a symlink to it
 * (stacctl is the same program called by another name, docs/design.md#command-line).
 *
 * `deno compile` copies a `denort` runtime into the binary and downloads it
 * from Deno's site; this project's machines cannot reach that site, so
 * DENORT_BIN must name a denort of the same Deno version. Without it the task
 * stops at once with one line saying so; `--download` lets deno fetch it
 * where that works (the container build). Afterwards the binary must answer
 * `--version` as stacd: the full `deno` binary given as DENORT_BIN yields a
 * file that only runs Deno's own CLI, and that is caught here.
 *
 * Usage: deno run -A build/compile.ts [--output FILE] [--download] [--print]
 *   --print  prints the deno compile command line as JSON and exits (tests)
 */
import { parseArgs } from "node:util";
import { STACD_RUN_FLAGS } from "./permissions.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

/** The entry point, relative to the checkout. */
export const ENTRY = "main.ts";

/** Raised for a build that cannot go on; its message is the one line printed. */
export class CompileError extends Error {
  override name = "CompileError";
}

/**
 * Top-level npm packages that stacd does not ship: development-only ones
 * (the deno npm package, test libraries) and optional ones (dbus-next's
 * native add-on and what it pulls in, which stacd runs and is tested
 * without), and npm's "devOptional" ones, needed only by either. The
 * Containerfile's `npm ci --omit=dev --omit=optional` installs
 * the same set.
 */
export function unshippedPackages(lockText: string): string[] {
  const lock = JSON.parse(lockText) as {
    packages?: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
  };
  return Object.entries(lock.packages ?? {})
    .filter(([path, e]) =>
      (e.dev || e.optional || e.devOptional) === true &&
      /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path)
    )
    .map(([path]) => path)
    .sort();
}

/**
 * `--exclude` arguments for {@linkcode unshippedPackages} and the
 * node_modules/.bin links (through which deno would embed the 90 MB deno
 * binary): deno compile embeds node_modules whole, because CommonJS requires
 * inside dbus-next are not in its module graph.
 */
export function npmExcludes(lockText: string): string[] {
  return ["node_modules/.bin", ...unshippedPackages(lockText)].flatMap((p) => ["--exclude", p]);
}

/** The `deno compile` arguments (without the deno executable). */
export function compileArgs(output: string, lockText: string): string[] {
  return [
    "compile",
    ...STACD_RUN_FLAGS,
    "--no-prompt",
    ...npmExcludes(lockText),
    "--output",
    output,
    ENTRY,
  ];
}

/**
 * Modules of `deno info --json` that a build here could not embed: remote
 * (https:, jsr:) ones need the network, and an unshipped npm package in the
 * graph would be missing from the binary (its files are excluded).
 */
export function graphProblems(
  info: { modules: { specifier: string; error?: string }[] },
  unshipped: ReadonlySet<string>,
): string[] {
  const problems: string[] = [];
  for (const m of info.modules) {
    const scheme = m.specifier.slice(0, m.specifier.indexOf(":"));
    if (m.error) problems.push(`${m.specifier}: ${m.error}`);
    else if (scheme !== "file" && scheme !== "node" && scheme !== "npm") {
      problems.push(`${m.specifier}: remote module (the build must not need the network)`);
    }
    const pkg = m.specifier.match(/\/node_modules\/((?:@[^/]+\/)?[^/]+)\//)?.[1];
    if (pkg && unshipped.has(pkg)) {
      problems.push(`${m.specifier}: unshipped (dev or optional) package ${pkg} in stacd's graph`);
    }
  }
  return problems;
}

/** Names of {@linkcode unshippedPackages}, as they appear in module paths. */
export function unshippedPackageNames(lockText: string): Set<string> {
  return new Set(unshippedPackages(lockText).map((p) => p.slice("node_modules/".length)));
}

/** Checks DENORT_BIN before deno compile gets a chance to try the download. */
export function checkDenort(env: { DENORT_BIN?: string }, download: boolean): void {
  const denort = env.DENORT_BIN;
  if (!denort) {
    if (download) return;
    throw new CompileError(
      `DENORT_BIN is not set: deno compile needs the denort runtime of Deno ${Deno.version.deno}, ` +
        "which it would download from Deno's site (not reachable here); set DENORT_BIN to a " +
        "denort binary, or pass --download where the download works",
    );
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(denort);
  } catch {
    throw new CompileError(`DENORT_BIN=${denort}: no such file`);
  }
  if (!info.isFile || ((info.mode ?? 0) & 0o111) === 0) {
    throw new CompileError(`DENORT_BIN=${denort}: not an executable file`);
  }
}

async function output(cmd: string, args: string[], env?: Record<string, string>) {
  const r = await new Deno.Command(cmd, { args, cwd: root, env, stdin: "null" }).output();
  const text = new TextDecoder();
  return { code: r.code, stdout: text.decode(r.stdout), stderr: text.decode(r.stderr) };
}

/** Runs the whole build; resolves with the binary's path. */
export async function compile(
  opts: { output: string; download: boolean; env: { DENORT_BIN?: string } },
): Promise<string> {
  checkDenort(opts.env, opts.download);
  const deno = Deno.execPath();
  const lockText = await Deno.readTextFile(`${root}/package-lock.json`);
  const info = await output(deno, ["info", "--json", ENTRY]);
  if (info.code !== 0) throw new CompileError(`deno info ${ENTRY} failed: ${info.stderr.trim()}`);
  const problems = graphProblems(JSON.parse(info.stdout), unshippedPackageNames(lockText));
  if (problems.length > 0) throw new CompileError(`module graph: ${problems.join("; ")}`);

  const out = opts.output.startsWith("/") ? opts.output : `${root}/${opts.output}`;
  await Deno.mkdir(out.slice(0, out.lastIndexOf("/")) || "/", { recursive: true });
  const built = await output(deno, compileArgs(out, lockText), { NO_COLOR: "1" });
  if (built.code !== 0) {
    const last = built.stderr.trim().split("\n").filter((l) =>
      /\S/.test(l) && !/^\s*\d+: <unknown>|^Stack backtrace/.test(l)
    );
    throw new CompileError(`deno compile failed: ${last.slice(-2).join(" ").trim()}`);
  }
  // The binary must be stacd, not a Deno CLI built from a full deno as DENORT_BIN.
  const smoke = await output(out, ["--version"]).catch((e) => ({
    code: -1,
    stdout: "",
    stderr: String(e),
  }));
  if (smoke.code !== 0 || !smoke.stdout.startsWith("stacd ")) {
    await Deno.remove(out).catch(() => {});
    const said = (smoke.stdout || smoke.stderr).split("\n")[0];
    throw new CompileError(
      `${out} --version printed "${said}", not stacd's version: DENORT_BIN=${
        opts.env.DENORT_BIN ?? "(downloaded)"
      } is not a denort runtime of Deno ${Deno.version.deno}`,
    );
  }
  const link = `${out.slice(0, out.lastIndexOf("/"))}/stacctl`;
  await Deno.remove(link).catch(() => {});
  await Deno.symlink(out.slice(out.lastIndexOf("/") + 1), link);
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      output: { type: "string", default: "out/stacd" },
      download: { type: "boolean", default: false },
      print: { type: "boolean", default: false },
    },
  });
  if (values.print) {
    const lockText = await Deno.readTextFile(`${root}/package-lock.json`);
    console.log(JSON.stringify(compileArgs(values.output, lockText)));
    Deno.exit(0);
  }
  try {
    const env = { DENORT_BIN: Deno.env.get("DENORT_BIN") };
    const path = await compile({ output: values.output, download: values.download, env });
    const size = (await Deno.stat(path)).size;
    console.log(`compile: ${path} (${(size / 1e6).toFixed(1)} MB), stacctl -> stacd`);
  } catch (error) {
    if (!(error instanceof CompileError)) throw error;
    console.error(`compile: ${error.message}`);
    Deno.exit(1);
  }
}
