/**
 * In the guest: builds the nvmet target, runs the selected benchmarks, and
 * writes their figures to $GUEST_OUT/bench.json for the host to print.
 *   deno run -A bench/guest/main.ts [connect_ffi] [converge]
 */
import { createTarget } from "../../tests/guest/target.ts";
import type { Figure } from "./common.ts";
import { benchConnectFfi } from "./connect_ffi.ts";
import { benchConverge } from "./converge.ts";

const N = Number(Deno.env.get("BENCH_N") ?? "32");
const selected = Deno.args.length > 0 ? Deno.args : ["connect_ffi", "converge"];
using t = createTarget({
  subsystems: N,
  ports: [{ id: 1, adrfam: "ipv4", traddr: "127.0.0.1", trsvcid: 4420 }],
});
const figures: Figure[] = [];
for (const name of selected) {
  const run = name === "connect_ffi"
    ? benchConnectFfi
    : name === "converge"
    ? benchConverge
    : undefined;
  if (!run) throw new Error(`Unknown bench ${name}`);
  console.log(`bench: ${name} (N=${N})`);
  figures.push(...await run(t.nqns));
}
const kernel = Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim();
const out = Deno.env.get("GUEST_OUT");
if (out) {
  await Deno.writeTextFile(`${out}/bench.json`, JSON.stringify({ kernel, figures }, null, 2));
}
