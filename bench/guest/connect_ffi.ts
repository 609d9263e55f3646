/**
 * N connects through the libnvme binding (in parallel, nonblocking FFI)
 * against the kernel's own limit, N sequential writes to /dev/nvme-fabrics.
 * Rounds alternate the order; medians are reported. Target: ratio <= 1.2.
 */
import { Libnvme } from "../../lib/kernel/libnvme.ts";
import { clean, type Figure, host, median, rawWrites, tcpTargets } from "./common.ts";

export async function benchConnectFfi(nqns: string[], rounds = 5): Promise<Figure[]> {
  using nvme = Libnvme.open();
  const ffiConnects = async () => {
    const ctrls = tcpTargets(nqns).map((target) => nvme.controller(host, target));
    const start = performance.now();
    await Promise.all(ctrls.map((c) => c.connect()));
    const ms = performance.now() - start;
    ctrls.forEach((c) => c.close());
    return ms;
  };
  const raw: number[] = [];
  const ffi: number[] = [];
  await ffiConnects().then(clean); // warm-up: JIT, library loading, first TCP connections
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ["raw", "ffi"] : ["ffi", "raw"];
    for (const which of order) {
      if (which === "raw") raw.push(rawWrites(nqns));
      else ffi.push(await ffiConnects());
      await clean();
    }
  }
  const ratio = median(ffi) / median(raw);
  const n = nqns.length;
  return [
    { name: `${n} raw writes to /dev/nvme-fabrics`, value: median(raw), unit: "ms" },
    { name: `${n} connects through libnvme FFI`, value: median(ffi), unit: "ms" },
    {
      name: "FFI connect / raw writes",
      value: ratio,
      unit: "x",
      target: "<= 1.2",
      pass: ratio <= 1.2,
    },
  ];
}
