/**
 * stacd reacting to stafd (docs/design.md#soaks): the time from a log_pages_changed
 * signal that adds N subsystems to all N live, and from the one that takes
 * them away to all N gone. stacd runs with the shipping timers, so each
 * reaction includes the configuration soak (1.5 s, as upstream) that lets a
 * burst of signals settle; the work after it is set against the kernel's
 * own limit in the same run (N raw connects, N raw deletes).
 */
import { STAC_POLICY, STAF_POLICY, startPrivateBus } from "../../tests/dbus/private_bus.ts";
import { nvmeEntry, page } from "../../tests/dbus/stafd_garbage.ts";
import { StafdStandin } from "../../tests/stafd_standin.ts";
import { controllers, deleteController } from "../../tests/guest/nvme_host.ts";
import { stacdConf, StacdProcess } from "../../tests/guest/stacd_process.ts";
import { TIMERS } from "../../lib/daemon/timers.ts";
import {
  clean,
  type Figure,
  median,
  observedRawWrites,
  waitForConnected,
  waitForRemoved,
} from "./common.ts";

const SOAK_MS = TIMERS.configSoakMs;

/** The kernel's limit for taking N controllers away: N writes to delete_controller. */
function rawDeletes(): number {
  const start = performance.now();
  for (const c of controllers()) deleteController(c.name);
  return performance.now() - start;
}

export async function benchReact(nqns: string[], rounds = 3): Promise<Figure[]> {
  const n = nqns.length;
  const dc = { traddr: "127.0.0.1", trsvcid: "4420" };
  const entries = nqns.map((nqn) => nvmeEntry(nqn, { traddr: "127.0.0.1" }));
  const rawAdd: number[] = [];
  const rawRemove: number[] = [];
  for (let round = 0; round < rounds; round++) {
    rawAdd.push(await observedRawWrites(nqns));
    rawRemove.push(rawDeletes());
    await clean();
  }

  await using bus = await startPrivateBus({ policies: [STAC_POLICY, STAF_POLICY] });
  const stafd = await StafdStandin.start(bus.address, [page([], dc)]);
  const dir = await Deno.makeTempDir({ prefix: "stacd-react-" });
  await Deno.writeTextFile(`${dir}/stacd.conf`, stacdConf([]));
  const add: number[] = [];
  const remove: number[] = [];
  try {
    await using stacd = new StacdProcess({
      confFile: `${dir}/stacd.conf`,
      runtimeDir: `${dir}/run`,
      env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address, STACD_TEST_TIMER_SCALE: "1" },
    });
    await stacd.waitForLog(/D-Bus API on/);
    // Past the soak that follows stafd's first answer (with a margin), as on a running host.
    await new Promise((r) => setTimeout(r, 2 * SOAK_MS));
    for (let round = 0; round < rounds; round++) {
      let start = performance.now();
      const connected = waitForConnected(n);
      stafd.serve([page(entries, dc)]);
      stafd.changed();
      add.push(await connected - start);

      start = performance.now();
      const removed = waitForRemoved(n);
      stafd.serve([page([], dc)]);
      stafd.changed();
      remove.push(await removed - start);
    }
    await stacd.stop();
  } finally {
    await stafd.close();
    await Deno.remove(dir, { recursive: true });
    await clean();
  }

  const work = (xs: number[]) => median(xs) - SOAK_MS;
  return [
    { name: `react: log_pages_changed +${n} to ${n} live`, value: median(add), unit: "ms" },
    { name: `react: log_pages_changed -${n} to ${n} gone`, value: median(remove), unit: "ms" },
    { name: `${n} raw connects (same run)`, value: median(rawAdd), unit: "ms" },
    { name: `${n} raw deletes (same run)`, value: median(rawRemove), unit: "ms" },
    {
      name: `react add after the ${SOAK_MS} ms soak / raw (N=${n})`,
      value: work(add) / median(rawAdd),
      unit: "x",
    },
    {
      name: `react remove after the soak / raw (N=${n})`,
      value: work(remove) / median(rawRemove),
      unit: "x",
    },
  ];
}
