/**
 * The benchmark entry (`deno task bench`): runs the host benchmarks (stacd
 * without a kernel: reconcile at scale, D-Bus latency, start-up, memory,
 * idle cost; the finder: a 1,000-entry page to get_all_log_pages' JSON,
 * memory and idle cost with 8 DCs), then boots the test guest once for the in-guest ones
 * (connects against the kernel), prints one table with the targets and
 * writes it to out/bench.json (and out/bench.md, for the README).
 *
 *   deno task bench                     everything (about 25 minutes)
 *   deno task bench host | guest        one part
 *   deno task bench idle converge ...   named benchmarks (host or guest)
 *   deno task bench finder_page finder_memory finder_idle   the finder's
 * The guest part runs on both platforms (Debian 12 / 6.1, Debian 13 / 6.12),
 * or on the one $GUEST_PLATFORM names.
 */
import { runInGuestUnlessCrashed } from "../tests/guest/guest.ts";
import { checkoutDir } from "../tests/guest/host.ts";
import { platformFromEnv, type PlatformName, PLATFORMS } from "../tests/guest/platform.ts";
import { ensureHostPackages } from "../tests/guest/setup.ts";
import type { Figure } from "./guest/common.ts";
import { HOST_BENCHES, hostDescription, runHostBenches } from "./host/main.ts";

const hostNames = Object.keys(HOST_BENCHES);
const args = Deno.args;
const everything = args.length === 0;
const hostSelected = everything || args.includes("host")
  ? hostNames
  : args.filter((a) => hostNames.includes(a));
// Any other name is a guest benchmark; bench/guest/main.ts refuses unknown ones.
const guestArgs = args.filter((a) => a !== "host" && a !== "guest" && !hostNames.includes(a));
const runGuest = everything || args.includes("guest") || guestArgs.length > 0;
const platforms: PlatformName[] = Deno.env.get("GUEST_PLATFORM")
  ? [platformFromEnv()]
  : [...PLATFORMS];

await ensureHostPackages();
const started = performance.now();
const host = hostDescription();
const figures: Figure[] = [];
if (hostSelected.length > 0) figures.push(...await runHostBenches(hostSelected));

// The guest benchmarks run once per platform (tests/guest/platform.ts), each
// platform's times compared only with others from the same guest run.
const guestKernels: string[] = [];
if (runGuest) {
  const deno = `${checkoutDir}/node_modules/.bin/deno`;
  const quoted = guestArgs.map((a) => `'${a}'`).join(" ");
  for (const platform of platforms) {
    const r = await runInGuestUnlessCrashed({
      platform,
      script: `exec '${deno}' run --allow-all --frozen bench/guest/main.ts ${quoted}\n`,
      timeoutMs: 1_800_000,
      env: Deno.env.get("BENCH_SIZES") ? { BENCH_SIZES: Deno.env.get("BENCH_SIZES")! } : {},
      onOutput: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
    }, { what: "benchmarks" });
    if (r.exitCode !== 0) {
      console.error(r.console);
      Deno.exit(r.exitCode ?? 1);
    }
    const result = JSON.parse(await Deno.readTextFile(`${r.outDir}/bench.json`)) as {
      kernel: string;
      figures: Figure[];
    };
    guestKernels.push(`${platform} ${result.kernel}`);
    figures.push(...result.figures.map((f) => ({ ...f, name: `${platform}: ${f.name}` })));
  }
}
const guestKernel = guestKernels.length > 0 ? guestKernels.join(", ") : undefined;

const date = new Date().toISOString().slice(0, 10);
const machine = `${host.cpu}, ${host.cpus} CPUs, Linux ${host.kernel}`;
const format = (f: Figure) => {
  // A side that could not do it (NaN, which JSON carries as null): the name says why.
  if (typeof f.value !== "number" || Number.isNaN(f.value)) return "-";
  if (f.unit === "x") return f.value.toFixed(2);
  const digits = f.value < 100 && f.unit !== "" && !Number.isInteger(f.value) ? 1 : 0;
  return `${f.value.toFixed(digits)}${f.unit ? ` ${f.unit}` : ""}`;
};
const verdict = (f: Figure) => f.pass === undefined ? "" : f.pass ? "PASS" : "FAIL";

console.log(`\nstacd benchmarks, ${date}`);
console.log(`host: ${machine} (load average ${host.load} at start)`);
if (guestKernel) console.log(`guest kernels: ${guestKernel} (TCG: compare guest times as ratios)`);
console.log(`${"figure".padEnd(50)} ${"value".padStart(10)}  target`);
for (const f of figures) {
  console.log(`${f.name.padEnd(50)} ${format(f).padStart(10)}  ${f.target ?? ""} ${verdict(f)}`);
}
const minutes = (performance.now() - started) / 60_000;
console.log(`(${minutes.toFixed(1)} min)`);

const markdown = [
  `Measured ${date} on ${machine}` + (guestKernel ? `; guest kernels ${guestKernel}` : "") +
  " (`deno task bench`):",
  "",
  "| figure | value | target | |",
  "|---|---:|---|---|",
  ...figures.map((f) => `| ${f.name.trim()} | ${format(f)} | ${f.target ?? ""} | ${verdict(f)} |`),
  "",
].join("\n");
await Deno.mkdir(`${checkoutDir}/out`, { recursive: true });
await Deno.writeTextFile(
  `${checkoutDir}/out/bench.json`,
  JSON.stringify({ date, host, kernel: guestKernel, figures }, null, 2),
);
await Deno.writeTextFile(`${checkoutDir}/out/bench.md`, markdown);
