/**
 * The whole test suite, as the README's test command and CI run it:
 * formatting, lint and type checks, the unit tests on the host, then the
 * real-kernel tests in the guest, once on each platform (Debian 12 / 6.1, then
 * Debian 13 / 6.12: tests/guest/platform.ts), then stacd.service under
 * systemd as PID 1 and the container image under podman (both Debian 13),
 * then the fault campaign (tests/faults/, Debian 12); ends with one summary line
 * (`tests: N passed, N failed, N skipped`). Exits non-zero if any step failed.
 *
 *   deno task test            (everything)
 *   deno task test --no-guest (host only: no QEMU)
 */
import { ensureHostPackages } from "./guest/setup.ts";
import { countJUnit } from "./summary.ts";

const root = new URL("../", import.meta.url).pathname;
const out = `${root}out`;
const deno = Deno.execPath();
const noGuest = Deno.args.includes("--no-guest");

async function step(name: string, args: string[]): Promise<boolean> {
  console.log(`\n==== ${name}: deno ${args.join(" ")}`);
  const { code } = await new Deno.Command(deno, {
    args,
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  if (code !== 0) console.log(`==== ${name} FAILED (exit ${code})`);
  return code === 0;
}

await ensureHostPackages();
await Deno.remove(out, { recursive: true }).catch(() => {});
await Deno.mkdir(out, { recursive: true });

const failedSteps: string[] = [];
if (!await step("check", ["task", "check"])) failedSteps.push("check");
if (!await step("unit", ["task", "test:unit"])) failedSteps.push("unit");
if (!noGuest && !await step("guest", ["task", "test:guest"])) failedSteps.push("guest");
if (!noGuest && !await step("guest debian13", ["task", "test:guest:debian13"])) {
  failedSteps.push("guest debian13");
}
if (!noGuest && !await step("guest systemd", ["task", "test:systemd"])) {
  failedSteps.push("guest systemd");
}
if (!noGuest && !await step("guest container", ["task", "test:container"])) {
  failedSteps.push("guest container");
}
if (!noGuest && !await step("fault campaign", ["task", "faults"])) {
  failedSteps.push("fault campaign");
}

const reports = [
  "junit-unit.xml",
  ...(noGuest ? [] : [
    "junit-guest.xml",
    "junit-guest-debian13.xml",
    "junit-systemd.xml",
    "junit-container.xml",
    "junit-faults.xml",
  ]),
];
const total = { passed: 0, failed: 0, skipped: 0 };
for (const report of reports) {
  const xml = await Deno.readTextFile(`${out}/${report}`).catch(() => undefined);
  if (xml === undefined) {
    console.log(`${report}: missing (that run did not complete)`);
    total.failed++;
    continue;
  }
  const c = countJUnit(xml);
  console.log(`${report}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
  const retried = await Deno.readTextFile(`${out}/${report}.retried`).catch(() => "");
  if (retried) console.log(`${report}: ${retried.trim()}`);
  total.passed += c.passed;
  total.failed += c.failed;
  total.skipped += c.skipped;
}
// A failed check (fmt, lint, types) counts as a failed test: it fails CI too.
if (failedSteps.includes("check")) total.failed++;
if (failedSteps.length > 0) console.log(`failed steps: ${failedSteps.join(", ")}`);
console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
Deno.exit(failedSteps.length > 0 || total.failed > 0 ? 1 : 0);
