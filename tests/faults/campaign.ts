/**
 * The fault campaign (issue 6, item 2), host entry: type-checks the fault
 * tests, runs the ones that need no kernel (*_host_fault_test.ts) here on
 * the host, boots ONE guest (tests/guest/guest.ts) that runs every other
 * tests/faults/*_fault_test.ts with `deno test`, then prints the summary
 * table (faults injected, stacd survived, state correct) from the rows the
 * tests wrote, and writes it as JSON.
 *
 * Usage: deno task faults [--long] [--platform debian12|debian13] [--timeout SECONDS]
 *          [--junit FILE] [--json FILE] [FILTER] [-- DENO_TEST_ARGS]
 *   --long runs the long rounds (STACD_FAULT_LONG=1 in the guest: 60
 *   SIGKILL rounds instead of CI's 10), for the figures in the README.
 *   FILTER keeps the test files whose name contains it; DENO_TEST_ARGS go to
 *   `deno test` in the guest (e.g. -- --filter SIGHUP). STACD_FAULT_SEED
 *   replays the random SIGKILL moments of a previous run.
 */
import { runInGuestUnlessCrashed } from "../guest/guest.ts";
import { checkoutDir, run } from "../guest/host.ts";
import { platformName } from "../guest/platform.ts";
import { ensureHostPackages } from "../guest/setup.ts";
import { type FaultRow, ROWS_FILE } from "./fault_kit.ts";

const args = [...Deno.args];
const dash = args.indexOf("--");
const testArgs = dash >= 0 ? args.splice(dash).slice(1) : [];
const option = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args.splice(i, 2)[1] : undefined;
};
const junitFile = option("--junit");
const jsonFile = option("--json") ?? `${checkoutDir}/out/faults.json`;
const timeoutMs = Number(option("--timeout") ?? "1200") * 1000;
const long = args.includes("--long");
if (long) args.splice(args.indexOf("--long"), 1);
const platform = platformName(option("--platform") ?? Deno.env.get("GUEST_PLATFORM"));
const [filter = ""] = args;
if (args.length > 1 || Number.isNaN(timeoutMs)) {
  console.error(
    "Usage: campaign.ts [--platform debian12|debian13] [--timeout SECONDS] [--junit FILE] " +
      "[--json FILE] [FILTER] [-- DENO_TEST_ARGS]",
  );
  Deno.exit(2);
}

await ensureHostPackages();
const dir = `${checkoutDir}/tests/faults`;
const matching = [...Deno.readDirSync(dir)]
  .map((e) => e.name)
  .filter((name) => name.endsWith("_fault_test.ts") && name.includes(filter))
  .sort()
  .map((name) => `tests/faults/${name}`);
/**
 * Faults that need no kernel and time-bound figures (a flood of D-Bus calls
 * with 1,000 fake controllers) run on the host: under TCG they would
 * measure the emulator.
 */
const HOST_ONLY = "_host_fault_test.ts";
const hostFiles = matching.filter((name) => name.endsWith(HOST_ONLY));
const files = matching.filter((name) => !name.endsWith(HOST_ONLY));
if (matching.length === 0) {
  console.error(`No tests/faults/*_fault_test.ts matches "${filter}"`);
  Deno.exit(2);
}
const deno = `${checkoutDir}/node_modules/.bin/deno`;
// Type-checked here: under TCG the guest would take minutes to do it.
const check = await run(deno, ["check", ...matching.map((f) => `${checkoutDir}/${f}`)]);
if (check.code !== 0) {
  console.error(check.stderr);
  Deno.exit(1);
}
const onHost = await runOnHost(hostFiles);
const tableDir = jsonFile.slice(0, jsonFile.lastIndexOf("/")) || ".";
await Deno.mkdir(tableDir, { recursive: true });
if (files.length === 0) {
  const rows = await collect([onHost.outDir]);
  console.log(`\n${table(rows)}`);
  const faults = { date: new Date().toISOString(), platform: "host", faults: rows };
  await Deno.writeTextFile(jsonFile, JSON.stringify(faults, null, 2) + "\n");
  Deno.exit(onHost.code === 0 && rows.every((row) => row.passed) ? 0 : 1);
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
const seed = Deno.env.get("STACD_FAULT_SEED");
const guestEnv: Record<string, string> = {
  ...(seed === undefined ? {} : { STACD_FAULT_SEED: seed }),
  ...(long ? { STACD_FAULT_LONG: "1" } : {}),
};
console.log(`fault campaign (${platform}): ${files.join(" ")}`);
const out = new TextEncoder();
const r = await runInGuestUnlessCrashed({
  script: `exec ${quote(deno)} test --allow-all --no-check --frozen ` +
    `--junit-path="$GUEST_OUT/junit.xml" ${[...testArgs, ...files].map(quote).join(" ")}\n`,
  platform,
  timeoutMs,
  env: guestEnv,
  onOutput: (text) => Deno.stdout.writeSync(out.encode(text)),
}, { what: "campaign", junitFile });
if (junitFile) await Deno.copyFile(`${r.outDir}/junit.xml`, junitFile).catch(() => {});
const rows = await collect([onHost.outDir, r.outDir]);
console.log(`\n${table(rows)}`);
const seconds = (ms: number | null) => ms === null ? "-" : `${(ms / 1000).toFixed(1)} s`;
const summary = {
  date: new Date().toISOString(),
  platform: r.platform,
  kernel: r.kernel,
  bootSeconds: r.bootMs === null ? null : r.bootMs / 1000,
  totalSeconds: r.totalMs / 1000,
  faults: rows,
};
await Deno.writeTextFile(jsonFile, JSON.stringify(summary, null, 2) + "\n");
console.log(
  `guest ${r.platform} (kernel ${r.kernel}): boot ${seconds(r.bootMs)}, total ${
    seconds(r.totalMs)
  }; table in ${jsonFile}, guest output in ${r.outDir}`,
);
if (r.exitCode !== 0 || onHost.code !== 0 || rows.some((row) => !row.passed)) {
  const why = r.timedOut
    ? "timed out"
    : r.bootMs === null
    ? "guest did not reach the tests"
    : r.exitCode === null
    ? "guest died"
    : r.exitCode !== 0
    ? `tests failed (exit ${r.exitCode})`
    : onHost.code !== 0
    ? `host tests failed (exit ${onHost.code})`
    : "a fault failed";
  if (r.exitCode === null) console.error(`---- guest console ----\n${r.console}`);
  console.error(`fault campaign: ${why}`);
  Deno.exit(r.exitCode || 1);
}

/** Runs `files` with `deno test` here; their rows go to a folder of their own. */
async function runOnHost(files: string[]): Promise<{ code: number; outDir?: string }> {
  if (files.length === 0) return { code: 0 };
  const outDir = await Deno.makeTempDir({ prefix: "stacd-faults-host-" });
  console.log(`fault campaign (host): ${files.join(" ")}`);
  const { code } = await new Deno.Command(deno, {
    args: ["test", "--allow-all", "--no-check", "--frozen", ...testArgs, ...files],
    cwd: checkoutDir,
    env: { GUEST_OUT: outDir },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  return { code, outDir };
}

/**
 * The rows the tests wrote in each of `outDirs`, and a failed fault's whole
 * story (fault_kit.ts writes it) kept beside the table.
 */
async function collect(outDirs: (string | undefined)[]): Promise<FaultRow[]> {
  const rows: FaultRow[] = [];
  for (const outDir of outDirs) {
    if (outDir === undefined) continue;
    for (const e of Deno.readDirSync(outDir)) {
      if (e.isFile && e.name.startsWith("fault-failed-")) {
        await Deno.copyFile(`${outDir}/${e.name}`, `${tableDir}/${e.name}`);
        console.error(`failed fault's log: ${tableDir}/${e.name}`);
      }
    }
    const text = await Deno.readTextFile(`${outDir}/${ROWS_FILE}`).catch(() => "");
    rows.push(...text.split("\n").filter(Boolean).map((line) => JSON.parse(line)));
  }
  return rows;
}

/** The summary table: one row per fault, then the totals. */
function table(rows: FaultRow[]): string {
  const yes = (b: boolean) => b ? "yes" : "NO";
  const head = ["fault", "injected", "survived", "state correct", "result", "time", "note"];
  const body = rows.map((row) => [
    row.fault,
    row.injected,
    yes(row.survived),
    yes(row.stateCorrect),
    row.passed ? "pass" : "FAIL",
    `${row.seconds.toFixed(1)} s`,
    row.note,
  ]);
  const count = (f: (row: FaultRow) => boolean) => rows.filter(f).length;
  const total = [
    `${rows.length} faults`,
    "",
    `${count((row) => row.survived)}/${rows.length}`,
    `${count((row) => row.stateCorrect)}/${rows.length}`,
    `${count((row) => row.passed)} passed`,
    `${rows.reduce((s, row) => s + row.seconds, 0).toFixed(1)} s`,
    "",
  ];
  const all = [head, ...body, total];
  const widths = head.map((_, i) =>
    i === head.length - 1 ? 0 : Math.max(...all.map((cells) => cells[i]!.length))
  );
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w || 4)).join("  ");
  return [line(head), rule, ...body.map(line), rule, line(total)].join("\n");
}
