/**
 * Start-up: from spawning the composed stacd (`deno run`, module cache warm)
 * to its owning org.nvmexpress.stac, as a watcher on the same private bus
 * sees it (NameOwnerChanged). With 0 and with 1,000 configured controllers;
 * the median of a few starts after one unmeasured warm-up start.
 *
 *   deno run -A bench/host/startup.ts
 */
import { DBUS_DAEMON } from "../../lib/dbus/bus_socket.ts";
import { connectSystemBus, type Message } from "../../lib/dbus/bus_connection.ts";
import { startPrivateBus } from "../../tests/dbus/private_bus.ts";
import type { Figure } from "../guest/common.ts";
import { spawnComposed } from "./composed.ts";
import { median } from "./stats.ts";

const NAME = "org.nvmexpress.stac";
const STARTS = 7;

export async function benchStartup(): Promise<Figure[]> {
  await using bus = await startPrivateBus();
  const watcher = await connectSystemBus({ address: bus.address });
  let owned = Promise.withResolvers<number>();
  watcher.bus.onSignal((msg: Message) => {
    if (msg.member === "NameOwnerChanged" && msg.body[0] === NAME && msg.body[2] !== "") {
      owned.resolve(performance.now());
    }
  });
  await watcher.call({
    ...DBUS_DAEMON,
    member: "AddMatch",
    signature: "s",
    body: [`type='signal',member='NameOwnerChanged',arg0='${NAME}'`],
  });
  const figures: Figure[] = [];
  try {
    for (const controllers of [0, 1_000]) {
      const times: number[] = [];
      for (let run = 0; run <= STARTS; run++) {
        owned = Promise.withResolvers<number>();
        const stacd = await spawnComposed({ controllers, busAddress: bus.address });
        try {
          const at = await Promise.race([owned.promise, stacd.ready.then(() => owned.promise)]);
          if (run > 0) times.push(at - stacd.spawnedAt);
          await stacd.ready;
        } finally {
          await stacd.stop();
        }
      }
      console.log(
        `  start-up, ${controllers} controllers: ${times.map((t) => t.toFixed(0)).join(" ")} ms`,
      );
      figures.push({
        name: `start-up to owning the bus name, ${controllers.toLocaleString("en")} ctrls`,
        value: median(times),
        unit: "ms",
      });
    }
  } finally {
    await watcher.close();
  }
  return figures;
}

if (import.meta.main) {
  for (const f of await benchStartup()) console.log(f);
}
