/**
 * The benchmark entry (`deno task bench`): boots the test guest once, runs
 * the in-guest benchmarks there, prints one table with the targets and
 * writes it to out/bench.json.
 *   deno task bench [connect_ffi] [converge]
 */
import { runInGuest } from "../tests/guest/guest.ts";
import { checkoutDir } from "../tests/guest/host.ts";
import { ensureHostPackages } from "../tests/guest/setup.ts";
import type { Figure } from "./guest/common.ts";

await ensureHostPackages();
const deno = `${checkoutDir}/node_modules/.bin/deno`;
const args = Deno.args.map((a) => `'${a}'`).join(" ");
const r = await runInGuest({
  script: `exec '${deno}' run --allow-all --frozen bench/guest/main.ts ${args}\n`,
  timeoutMs: 1_200_000,
  onOutput: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
});
if (r.exitCode !== 0) {
  console.error(r.console);
  Deno.exit(r.exitCode ?? 1);
}
const result = JSON.parse(await Deno.readTextFile(`${r.outDir}/bench.json`)) as {
  kernel: string;
  figures: Figure[];
};
const format = (f: Figure) =>
  f.unit === "x" ? f.value.toFixed(2) : `${f.value.toFixed(0)} ${f.unit}`;
console.log(
  `\nstacd benchmarks, ${new Date().toISOString().slice(0, 10)}, guest kernel ${result.kernel}`,
);
console.log(`${"figure".padEnd(46)} ${"value".padStart(10)}  target`);
for (const f of result.figures) {
  const verdict = f.pass === undefined ? "" : f.pass ? "PASS" : "FAIL";
  console.log(`${f.name.padEnd(46)} ${format(f).padStart(10)}  ${f.target ?? ""} ${verdict}`);
}
await Deno.mkdir(`${checkoutDir}/out`, { recursive: true });
await Deno.writeTextFile(`${checkoutDir}/out/bench.json`, JSON.stringify(result, null, 2));
