/**
 * list_controllers(true) over D-Bus with 1,000 controllers: the composed
 * stacd (BenchKernel, 1,000 configured controllers, all connected) on a
 * private dbus-daemon, called from a separate process (list_client.ts)
 * that times call to complete reply. busctl checks the reply's content once.
 *
 *   deno run -A bench/host/dbus_latency.ts
 */
import { startPrivateBus } from "../../tests/dbus/private_bus.ts";
import { stacCall } from "../../tests/dbus/stac_fixture.ts";
import type { Figure } from "../guest/common.ts";
import { spawnComposed } from "./composed.ts";
import { median, percentile } from "./stats.ts";

const CONTROLLERS = 1_000;
const CALLS = 50;
const WARMUP = 5;
const TARGET_MS = 50;
const CLIENT = new URL("./list_client.ts", import.meta.url).pathname;

async function output(command: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(command, { args, stdin: "null" }).output();
  const text = new TextDecoder();
  if (r.code !== 0) throw new Error(`${command} failed: ${text.decode(r.stderr).trim()}`);
  return text.decode(r.stdout);
}

/** Every controller listed, connected, with the 19 keys of a detailed entry. */
async function checkReply(address: string): Promise<void> {
  const json = await output("busctl", [
    `--address=${address}`,
    ...stacCall("list_controllers", ["b", "true"]),
  ]);
  const list = (JSON.parse(json) as { data: Record<string, string>[][] }).data[0]!;
  const complete = list.filter((c) => c.connected === "True" && Object.keys(c).length === 19);
  if (list.length !== CONTROLLERS || complete.length !== CONTROLLERS) {
    throw new Error(`list_controllers: ${list.length} entries, ${complete.length} complete`);
  }
}

export async function benchDbusLatency(): Promise<Figure[]> {
  await using bus = await startPrivateBus();
  await using stacd = await spawnComposed({ controllers: CONTROLLERS, busAddress: bus.address });
  await stacd.ready;
  await checkReply(bus.address);
  const result = JSON.parse(
    await output(Deno.execPath(), [
      "run",
      "--allow-all",
      CLIENT,
      bus.socketPath,
      String(CALLS),
      String(WARMUP),
    ]),
  ) as { ms: number[]; bytes: number };
  const p50 = median(result.ms);
  const p90 = percentile(result.ms, 0.9);
  console.log(
    `  list_controllers(true): ${result.bytes} bytes per reply, ${CALLS} calls: ` +
      `median ${p50.toFixed(1)} ms, p90 ${p90.toFixed(1)} ms, max ${
        Math.max(...result.ms).toFixed(1)
      } ms`,
  );
  return [
    {
      name: "list_controllers(true), 1,000: median",
      value: p50,
      unit: "ms",
      target: `< ${TARGET_MS} ms`,
      pass: p50 < TARGET_MS,
    },
    { name: "list_controllers(true), 1,000: p90", value: p90, unit: "ms" },
  ];
}

if (import.meta.main) {
  for (const f of await benchDbusLatency()) console.log(f);
}
