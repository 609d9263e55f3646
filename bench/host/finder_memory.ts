/**
 * The finder's memory: the resident set of a process holding 8 discovery
 * controllers' pages of 1,000 entries each (bench/host/stafd_without_kernel.ts,
 * bench kernel), read 45 s after it was ready, median of three processes,
 * as stacd's (bench/host/memory.ts). The Finder alone, and stafd's whole
 * assembly on a private bus. No target: issue 17 sets none for stafd.
 *
 *   deno run -A bench/host/finder_memory.ts
 */
import type { Figure } from "../guest/common.ts";
import { finderLabel, spawnFinder } from "./finder_idle.ts";
import { rssFigures } from "./memory.ts";

export async function benchFinderMemory(): Promise<Figure[]> {
  const figures = await Promise.all(
    (["finder", "stafd"] as const).map((form) => rssFigures(finderLabel(form), spawnFinder(form))),
  );
  return figures.flat();
}

if (import.meta.main) {
  for (const f of await benchFinderMemory()) console.log(f);
}
