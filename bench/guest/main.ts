/**
 * In the guest: runs the selected benchmarks, each against an nvmet target
 * of its own size, and writes their figures to $GUEST_OUT/bench.json for
 * the host to print.
 *   deno run -A bench/guest/main.ts [connect_ffi] [converge] [react] [discover]
 *   BENCH_SIZES=1,32,128 sets converge's N (react, discover and connect_ffi use 32).
 */
import { createTarget, LOOPBACK_PORT } from "../../tests/guest/target.ts";
import type { Figure } from "./common.ts";
import { benchConnectFfi } from "./connect_ffi.ts";
import { benchConverge } from "./converge.ts";
import { benchReact } from "./react.ts";
import { benchDiscover } from "./discover.ts";

const N = 32;
const SIZES = (Deno.env.get("BENCH_SIZES") ?? "1,32,128").split(",").map(Number);
const BENCHES: Record<string, { sizes: number[]; run: (nqns: string[]) => Promise<Figure[]> }> = {
  connect_ffi: { sizes: [N], run: benchConnectFfi },
  converge: { sizes: SIZES, run: benchConverge },
  react: { sizes: [N], run: benchReact },
  discover: { sizes: [N], run: benchDiscover },
};

const selected = Deno.args.length > 0 ? Deno.args : Object.keys(BENCHES);
const unknown = selected.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  throw new Error(`Unknown bench ${unknown.join(", ")} (known: ${Object.keys(BENCHES)})`);
}
const figures: Figure[] = [];
for (const name of selected) {
  const { sizes, run } = BENCHES[name]!;
  for (const n of sizes) {
    console.log(`bench: ${name} (N=${n})`);
    using t = createTarget({
      subsystems: n,
      ports: [LOOPBACK_PORT],
    });
    figures.push(...await run(t.nqns));
  }
}
const kernel = Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim();
const out = Deno.env.get("GUEST_OUT");
if (out) {
  await Deno.writeTextFile(`${out}/bench.json`, JSON.stringify({ kernel, figures }, null, 2));
}
