/**
 * stacd converging on N configured controllers, in two figures (TCG
 * inflates process start-up far more than kernel work): start-up (process
 * start to "Starting stacd", i.e. config read and libraries loaded) and
 * ready-to-all-N-live, the latter over N raw /dev/nvme-fabrics writes in the
 * same run (target <= 1.3), with `nvme connect-all` for the same N as a
 * reference. All three end at the kernel's N-th "connected" uevent, seen by
 * the same listener.
 */
import { stacdConf, StacdProcess } from "../../tests/guest/stacd_process.ts";
import { clean, type Figure, median, observedRawWrites, waitForConnected } from "./common.ts";

async function stacdConverge(nqns: string[]): Promise<{ startupMs: number; convergeMs: number }> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-bench-" });
  await Deno.writeTextFile(`${dir}/stacd.conf`, stacdConf(nqns));
  // The kernel's uevents say when the last one is live: no sysfs polling,
  // which would take the guest's CPU from what is measured.
  const connected = waitForConnected(nqns.length);
  const start = performance.now();
  await using stacd = new StacdProcess({ confFile: `${dir}/stacd.conf`, runtimeDir: `${dir}/run` });
  const done = await connected.catch((error) => {
    throw new Error(`stacd did not converge: ${error.message}\n${stacd.log}`);
  });
  const ready = stacd.arrivalOf(/Starting stacd/) ?? done;
  await stacd.stop();
  await Deno.remove(dir, { recursive: true });
  return { startupMs: ready - start, convergeMs: done - ready };
}

async function connectAll(n: number): Promise<number> {
  const connected = waitForConnected(n);
  const start = performance.now();
  const out = await new Deno.Command("nvme", {
    args: ["connect-all", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420"],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`nvme connect-all: ${new TextDecoder().decode(out.stderr)}`);
  return await connected - start;
}

export async function benchConverge(nqns: string[], rounds = 5): Promise<Figure[]> {
  const raw: number[] = [];
  const startup: number[] = [];
  const converge: number[] = [];
  const all: number[] = [];
  for (let round = 0; round < rounds; round++) {
    raw.push(await observedRawWrites(nqns));
    await clean();
    const s = await stacdConverge(nqns);
    startup.push(s.startupMs);
    converge.push(s.convergeMs);
    await clean();
    all.push(await connectAll(nqns.length));
    await clean();
  }
  const n = nqns.length;
  const ratio = median(converge) / median(raw);
  return [
    { name: `stacd start-up, process start to ready (N=${n})`, value: median(startup), unit: "ms" },
    { name: `stacd ready to ${n} live`, value: median(converge), unit: "ms" },
    { name: `${n} raw writes (same run)`, value: median(raw), unit: "ms" },
    { name: `nvme connect-all, ${n} subsystems`, value: median(all), unit: "ms" },
    {
      name: `stacd converge / raw writes (N=${n})`,
      value: ratio,
      unit: "x",
      target: "<= 1.3",
      pass: ratio <= 1.3,
    },
    {
      name: `stacd converge / connect-all (N=${n})`,
      value: median(converge) / median(all),
      unit: "x",
      target: "< 1",
      pass: median(converge) < median(all),
    },
  ];
}
