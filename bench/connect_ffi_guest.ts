/**
 * In the guest: the time to connect 32 controllers through the libnvme
 * binding (in parallel, nonblocking FFI) against the kernel's own limit, 32
 * sequential writes to /dev/nvme-fabrics, in the same run. Rounds alternate
 * the order; medians are reported. Writes JSON to $GUEST_OUT/connect_ffi.json.
 */
import { kernelOptionString } from "../lib/fabrics_options.ts";
import { Libnvme } from "../lib/libnvme.ts";
import {
  controllers,
  deleteAllControllers,
  hostIdentity,
  waitFor,
} from "../tests/guest/nvme_host.ts";
import { createTarget } from "../tests/guest/target.ts";

const N = Number(Deno.env.get("BENCH_N") ?? "32");
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "5");

const host = hostIdentity();
using t = createTarget({
  subsystems: N,
  ports: [{ id: 1, adrfam: "ipv4", traddr: "127.0.0.1", trsvcid: 4420 }],
});
const targets = t.nqns.map((nqn) => ({
  transport: "tcp",
  traddr: "127.0.0.1",
  trsvcid: "4420",
  subsysnqn: nqn,
}));
using nvme = Libnvme.open();

function rawWrites(): number {
  const start = performance.now();
  for (const target of targets) {
    using f = Deno.openSync("/dev/nvme-fabrics", { read: true, write: true });
    f.writeSync(new TextEncoder().encode(kernelOptionString({ target, host })));
    f.readSync(new Uint8Array(256));
  }
  return performance.now() - start;
}

async function ffiConnects(): Promise<number> {
  const ctrls = targets.map((target) => nvme.controller(host, target));
  const start = performance.now();
  await Promise.all(ctrls.map((c) => c.connect()));
  const ms = performance.now() - start;
  ctrls.forEach((c) => c.close());
  return ms;
}

async function clean(): Promise<void> {
  await deleteAllControllers();
  await waitFor(() => controllers().length === 0 || undefined, "no controllers left");
}

const raw: number[] = [];
const ffi: number[] = [];
await ffiConnects().then(clean); // warm-up: JIT, library loading, first TCP connections
for (let round = 0; round < ROUNDS; round++) {
  if (round % 2 === 0) {
    raw.push(rawWrites());
    await clean();
    ffi.push(await ffiConnects());
    await clean();
  } else {
    ffi.push(await ffiConnects());
    await clean();
    raw.push(rawWrites());
    await clean();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const result = {
  n: N,
  rounds: ROUNDS,
  rawWritesMs: median(raw),
  ffiConnectMs: median(ffi),
  ratio: median(ffi) / median(raw),
  target: 1.2,
  samples: { raw, ffi },
};
const row = (name: string, value: string) => console.log(`${name.padEnd(44)} ${value}`);
row(`${N} raw writes to /dev/nvme-fabrics (median)`, `${result.rawWritesMs.toFixed(0)} ms`);
row(`${N} connects through libnvme FFI (median)`, `${result.ffiConnectMs.toFixed(0)} ms`);
row(
  "ratio FFI / raw (target <= 1.2)",
  `${result.ratio.toFixed(2)} ${result.ratio <= 1.2 ? "PASS" : "FAIL"}`,
);
const out = Deno.env.get("GUEST_OUT");
if (out) await Deno.writeTextFile(`${out}/connect_ffi.json`, JSON.stringify(result, null, 2));
