/**
 * Host entry of the real-kernel suite: checks the host packages, type-checks
 * the guest tests here (TCG makes that slow in the guest), then boots ONE
 * guest that runs every tests/guest/**\/*_guest_test.ts with `deno test`.
 * With --init systemd the guest boots systemd as PID 1 instead (debian13
 * only) and runs the tests/guest/**\/*_systemd_test.ts files, which need it.
 *
 * Usage: deno run -A tests/guest/run_suite.ts [--platform debian12|debian13] [--init chroot|systemd] [--suffix _X_test.ts] [--no-check] [--timeout SECONDS] [--junit FILE] [FILTER] [-- DENO_TEST_ARGS]
 *   --platform defaults to $GUEST_PLATFORM, else debian12 (debian13 with
 *   --init systemd; see platform.ts); FILTER keeps the test files whose path
 *   contains it; DENO_TEST_ARGS go to `deno test` in the guest (e.g. --
 *   --filter "port removed"). With --junit, text reports the tests wrote to
 *   $GUEST_OUT (*.txt) are copied next to the JUnit file.
 */
import { checkoutDir, run } from "./host.ts";
import { ensureHostPackages } from "./setup.ts";
import { kernelCrash, runInGuestUnlessCrashed } from "./guest.ts";
import { platformName } from "./platform.ts";

const args = [...Deno.args];
const dash = args.indexOf("--");
const testArgs = dash >= 0 ? args.splice(dash).slice(1) : [];
const take = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args.splice(i, 1)[0] !== undefined : false;
};
const skipCheck = take("--no-check");
const j = args.indexOf("--junit");
const junitFile = j >= 0 ? args.splice(j, 2)[1] : undefined;
const t = args.indexOf("--timeout");
const timeoutMs = t >= 0 ? Number(args.splice(t, 2)[1]) * 1000 : 1_200_000;
const i = args.indexOf("--init");
const init = i >= 0 ? args.splice(i, 2)[1] ?? "?" : "chroot";
const p = args.indexOf("--platform");
const platformArg = p >= 0
  ? args.splice(p, 2)[1] ?? "?"
  : init === "systemd"
  ? "debian13"
  : Deno.env.get("GUEST_PLATFORM");
/** Test files run in this kind of guest (the container image's have a suite of their own). */
const x = args.indexOf("--suffix");
const suffix = x >= 0
  ? args.splice(x, 2)[1] ?? "?"
  : init === "systemd"
  ? "_systemd_test.ts"
  : "_guest_test.ts";
const [filter = ""] = args;
const usage = "Usage: run_suite.ts [--platform debian12|debian13] [--init chroot|systemd] " +
  "[--suffix _X_test.ts] [--no-check] [--timeout SECONDS] [--junit FILE] [FILTER] " +
  "[-- DENO_TEST_ARGS]";
if (args.length > 1 || Number.isNaN(timeoutMs) || (init !== "chroot" && init !== "systemd")) {
  console.error(usage);
  Deno.exit(2);
}
let platform;
try {
  platform = platformName(platformArg);
  if (init === "systemd" && platform !== "debian13") {
    throw new RangeError(`--init systemd needs --platform debian13, not ${platform}`);
  }
} catch (error) {
  console.error(`${(error as Error).message}\n${usage}`);
  Deno.exit(2);
}

await ensureHostPackages();

const files = findTests(`${checkoutDir}/tests/guest`, suffix)
  .map((f) => f.slice(checkoutDir.length + 1))
  .filter((f) => f.includes(filter))
  .sort();
if (files.length === 0) {
  console.error(`No tests/guest/**/*${suffix} matches "${filter}"`);
  Deno.exit(2);
}

const deno = denoForGuest();
if (!skipCheck) {
  const check = await run(deno, ["check", ...files.map((f) => `${checkoutDir}/${f}`)]);
  if (check.code !== 0) {
    console.error(check.stderr);
    Deno.exit(1);
  }
}

console.log(`guest ${platform} (init ${init}): running ${files.join(" ")}`);
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
const out = new TextEncoder();
// --frozen: the checkout is read-only in the guest, so deno must never try to
// rewrite deno.lock there (a stale lock then fails clearly instead).
const r = await runInGuestUnlessCrashed({
  script: `exec ${
    quote(deno)
  } test --allow-all --no-check --frozen --junit-path="$GUEST_OUT/junit.xml" ${
    [...testArgs, ...files].map(quote).join(" ")
  }\n`,
  platform,
  init,
  timeoutMs,
  onOutput: (text) => Deno.stdout.writeSync(out.encode(text)),
}, { what: "suite", junitFile });

if (junitFile) {
  // The report is the record of what ran: copy it even when tests failed.
  await Deno.copyFile(`${r.outDir}/junit.xml`, junitFile).catch(() => {});
  const dir = junitFile.includes("/") ? junitFile.slice(0, junitFile.lastIndexOf("/")) : ".";
  for (const e of Deno.readDirSync(r.outDir)) {
    if (e.isFile && e.name.endsWith(".txt")) {
      await Deno.copyFile(`${r.outDir}/${e.name}`, `${dir}/${e.name}`);
    }
  }
}
const seconds = (ms: number | null) => ms === null ? "-" : `${(ms / 1000).toFixed(1)} s`;
console.log(
  `guest ${r.platform} (kernel ${r.kernel}): boot ${seconds(r.bootMs)}, ` +
    `total ${seconds(r.totalMs)}, out ${r.outDir}`,
);
if (r.exitCode !== 0) {
  const crash = kernelCrash(r.console);
  const why = r.timedOut
    ? "timed out"
    : r.bootMs === null
    ? "guest did not reach the tests"
    : r.exitCode === null
    ? `guest died${crash ? ` (kernel crashed: ${crash})` : ""}`
    : `tests failed (exit ${r.exitCode})`;
  console.error(`---- guest console ----\n${r.console}---- guest: ${why} ----`);
  Deno.exit(r.exitCode || 1);
}

function findTests(dir: string, suffix: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) return findTests(path, suffix);
    return e.name.endsWith(suffix) ? [path] : [];
  });
}

/**
 * The deno the guest runs: the checkout's pinned one, else this one when the
 * guest can see it (its tmpfs mounts hide /tmp, /run and /root).
 */
function denoForGuest(): string {
  const pinned = `${checkoutDir}/node_modules/.bin/deno`;
  try {
    Deno.statSync(pinned);
    return pinned;
  } catch { /* not installed: fall back */ }
  const self = Deno.execPath();
  if (/^\/(tmp|run|root)\//.test(self)) {
    throw new Error(`No ${pinned} (run npm ci) and ${self} is hidden in the guest`);
  }
  return self;
}
