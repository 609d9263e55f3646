/**
 * The finder's idle cost: 8 discovery controllers connected and read (1,000
 * entries each, bench/host/stafd_without_kernel.ts with the bench kernel and
 * the system clock), nothing changing, left alone for 60 s after it settled.
 * Measured as stacd's idle cost is (bench/host/idle.ts): CPU time from
 * /proc/PID/stat, wake-ups as the context switches of all its threads. Two
 * processes side by side: the Finder alone, and stafd's whole assembly
 * (finder, udev monitor, health socket, org.nvmexpress.staf on a private bus).
 *
 *   deno run -A bench/host/finder_idle.ts [seconds]
 */
import type { Figure } from "../guest/common.ts";
import { spawnComposed } from "./composed.ts";
import { idleFigures } from "./idle.ts";
import type { StafdForm } from "./stafd_without_kernel.ts";

const IDLE_S = 60;
/** Discovery controllers and entries per page, as issue 17 sizes them. */
export const FINDER_DCS = 8;
export const FINDER_ENTRIES = 1_000;

const ENTRY = new URL("./stafd_without_kernel.ts", import.meta.url).pathname;

/** Spawns the composed stafd (or the Finder alone) with FINDER_DCS x FINDER_ENTRIES. */
export function spawnFinder(form: StafdForm) {
  return (busAddress: string) =>
    spawnComposed({
      controllers: 0,
      busAddress,
      program: {
        entry: ENTRY,
        args: [String(FINDER_DCS), String(FINDER_ENTRIES), form],
        log: "stafd.log",
      },
    });
}

/** "Finder alone" or "stafd", with the sizes. */
export function finderLabel(form: StafdForm): string {
  const what = form === "finder" ? "Finder alone" : "stafd";
  return `${what}, ${FINDER_DCS} DCs x ${FINDER_ENTRIES.toLocaleString("en")}`;
}

export async function benchFinderIdle(seconds = IDLE_S): Promise<Figure[]> {
  const forms: StafdForm[] = ["finder", "stafd"];
  const figures = await Promise.all(
    forms.map((form) =>
      idleFigures(`idle ${seconds} s, ${finderLabel(form)}`, spawnFinder(form), seconds)
    ),
  );
  return figures.flat();
}

if (import.meta.main) {
  for (const f of await benchFinderIdle(Number(Deno.args[0] ?? IDLE_S))) console.log(f);
}
