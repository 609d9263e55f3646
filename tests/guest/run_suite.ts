/**
 * Host entry of the real-kernel suite: checks the host packages, type-checks
 * the guest tests here (TCG makes that slow in the guest), then boots ONE
 * guest that runs every tests/guest/**\/*_guest_test.ts with `deno test`.
 *
 * Usage: deno run -A tests/guest/run_suite.ts [--platform debian12|debian13] [--no-check] [--timeout SECONDS] [--junit FILE] [FILTER] [-- DENO_TEST_ARGS]
 *   --platform defaults to $GUEST_PLATFORM, else debian12 (see platform.ts);
 *   FILTER keeps the test files whose path contains it; DENO_TEST_ARGS go to
 *   `deno test` in the guest (e.g. -- --filter "port removed").
 */
import { checkoutDir, run } from "./host.ts";
import { ensureHostPackages } from "./setup.ts";
import { runInGuest } from "./guest.ts";
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
const p = args.indexOf("--platform");
const platformArg = p >= 0 ? args.splice(p, 2)[1] ?? "?" : Deno.env.get("GUEST_PLATFORM");
const [filter = ""] = args;
const usage = "Usage: run_suite.ts [--platform debian12|debian13] [--no-check] " +
  "[--timeout SECONDS] [--junit FILE] [FILTER] [-- DENO_TEST_ARGS]";
if (args.length > 1 || Number.isNaN(timeoutMs)) {
  console.error(usage);
  Deno.exit(2);
}
let platform;
try {
  platform = platformName(platformArg);
} catch (error) {
  console.error(`${(error as Error).message}\n${usage}`);
  Deno.exit(2);
}

await ensureHostPackages();

const files = findTests(`${checkoutDir}/tests/guest`)
  .map((f) => f.slice(checkoutDir.length + 1))
  .filter((f) => f.includes(filter))
  .sort();
if (files.length === 0) {
  console.error(`No tests/guest/**/*_guest_test.ts matches "${filter}"`);
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

console.log(`guest ${platform}: running ${files.join(" ")}`);
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
const out = new TextEncoder();
// --frozen: the checkout is read-only in the guest, so deno must never try to
// rewrite deno.lock there (a stale lock then fails clearly instead).
const r = await runInGuest({
  script: `exec ${
    quote(deno)
  } test --allow-all --no-check --frozen --junit-path="$GUEST_OUT/junit.xml" ${
    [...testArgs, ...files].map(quote).join(" ")
  }\n`,
  platform,
  timeoutMs,
  onOutput: (text) => Deno.stdout.writeSync(out.encode(text)),
});

if (junitFile) {
  // The report is the record of what ran: copy it even when tests failed.
  await Deno.copyFile(`${r.outDir}/junit.xml`, junitFile).catch(() => {});
}
const seconds = (ms: number | null) => ms === null ? "-" : `${(ms / 1000).toFixed(1)} s`;
console.log(
  `guest ${r.platform} (kernel ${r.kernel}): boot ${seconds(r.bootMs)}, ` +
    `total ${seconds(r.totalMs)}, out ${r.outDir}`,
);
if (r.exitCode !== 0) {
  const why = r.timedOut
    ? "timed out"
    : r.bootMs === null
    ? "guest did not reach the tests"
    : r.exitCode === null
    ? "guest died"
    : `tests failed (exit ${r.exitCode})`;
  console.error(`---- guest console ----\n${r.console}---- guest: ${why} ----`);
  Deno.exit(r.exitCode || 1);
}

function findTests(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) return findTests(path);
    return e.name.endsWith("_guest_test.ts") ? [path] : [];
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
