/**
 * Host-side basics shared by the guest test bed: where the checkout is and how
 * to run a tool. The checkout is derived from this file's URL, never
 * hard-coded, because CI clones it elsewhere and the guest sees it at the same
 * path (the host root is shared as the guest's root).
 */

/** Absolute path of the checkout (the folder holding deno.json). */
export const checkoutDir: string = decodeURIComponent(new URL("../../", import.meta.url).pathname)
  .replace(/\/$/, "");

/**
 * Where the bed keeps initramfs images and run folders. It sits inside the
 * checkout, not under /tmp: the guest mounts a tmpfs on /tmp, which would hide it.
 * A worktree's .cache may be a symlink to a shared cache: its real path is
 * used, because the guest reaches host paths under /host, where an absolute
 * link points nowhere (the debian13 root then fails to mount).
 */
export const cacheDir = `${realPath(`${checkoutDir}/.cache`)}/guest`;

function realPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path; // not made yet: the bed creates it as a plain folder
  }
}

/** Result of a finished tool. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args...` to completion, collecting its output as text; `env` adds variables. */
export async function run(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<CommandResult> {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null" }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Like {@linkcode run} but throws, with the tool's stderr, when it fails. */
export async function runOk(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Runs a tool with its output shown on ours (for long steps such as apt); throws on failure. */
export async function runShown(cmd: string, args: string[]): Promise<void> {
  const { code } = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${code})`);
}
