/**
 * Discovery doing the connecting (issue 17's measure): N subsystems linked
 * to a discovery controller's port on the target, to all N live on the
 * host, with the shipping timers. Measured for our stafd + stacd over a
 * real dbus-daemon, for the one-process mode (stacd --finder), and where
 * nvme-stas is installed (the Debian 13 root) for upstream's stafd +
 * stacd 2.4.1; set against the kernel's own time for N connects in the
 * same run. Each side's time includes stacd's 1.5 s soak (upstream's too):
 * the ratio takes it out.
 */
import { STAC_POLICY, STAF_POLICY, startPrivateBus } from "../../tests/dbus/private_bus.ts";
import { LoggedProcess } from "../../tests/guest/logged_process.ts";
import { stacdConf, StacdProcess } from "../../tests/guest/stacd_process.ts";
import { NvmetTarget } from "../../tests/guest/target.ts";
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
const PORT = 1;
/** The subsystem that keeps the port listening (nvmet listens once one is linked). */
const ANCHOR = "nqn.2026-12.io.bench:anchor";
const DEBIAN_POLICIES = [
  "/usr/share/dbus-1/system.d/org.nvmexpress.stac.conf",
  "/usr/share/dbus-1/system.d/org.nvmexpress.staf.conf",
];

type Side = "ours" | "one process" | "upstream";

/** Starts one side's daemons; resolves once they are up and the anchor is connected. */
async function startSide(side: Side, dir: string, bus: string) {
  const env = { DBUS_SYSTEM_BUS_ADDRESS: bus, STACD_TEST_TIMER_SCALE: "1" };
  await Deno.writeTextFile(
    `${dir}/stafd.conf`,
    "[Service Discovery]\nzeroconf = disabled\n" +
      "[Controllers]\ncontroller = transport=tcp;traddr=127.0.0.1;trsvcid=4420\n",
  );
  await Deno.writeTextFile(`${dir}/stacd.conf`, stacdConf([]));
  const procs: AsyncDisposable[] = [];
  const anchored = waitForConnected(1, 120_000);
  if (side === "upstream") {
    for (const daemon of ["stafd", "stacd"]) {
      procs.push(
        new LoggedProcess(
          new Deno.Command("python3", {
            args: [`/usr/sbin/${daemon}`, "-f", `${dir}/${daemon}.conf`],
            env: { ...env, RUNTIME_DIRECTORY: `${dir}/${daemon}-run` },
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).spawn(),
        ),
      );
    }
  } else if (side === "ours") {
    procs.push(
      new StacdProcess({
        program: "stafd",
        confFile: `${dir}/stafd.conf`,
        runtimeDir: `${dir}/stafd-run`,
        env,
      }),
      new StacdProcess({ confFile: `${dir}/stacd.conf`, runtimeDir: `${dir}/run`, env }),
    );
  } else {
    procs.push(
      new StacdProcess({
        confFile: `${dir}/stacd.conf`,
        runtimeDir: `${dir}/run`,
        env,
        args: ["--finder", "--stafd-conf", `${dir}/stafd.conf`],
      }),
    );
  }
  await anchored;
  // Past the soaks of the start, as on a running host.
  await new Promise((r) => setTimeout(r, 3 * SOAK_MS));
  return {
    /** The daemons' logs, for a failure's message. */
    logs: () => procs.map((p) => (p as unknown as { log?: string }).log ?? "").join("\n----\n"),
    async [Symbol.asyncDispose]() {
      for (const p of procs.reverse()) await p[Symbol.asyncDispose]();
    },
  };
}

/** Links `nqns` to the DC's port, timing until all are live; then unlinks them, timing until gone. */
async function round(
  target: NvmetTarget,
  nqns: string[],
): Promise<{ add: number; remove: number }> {
  let start = performance.now();
  const connected = waitForConnected(nqns.length);
  for (const nqn of nqns) target.linkSubsystem(PORT, nqn);
  const add = await connected - start;
  start = performance.now();
  const removed = waitForRemoved(nqns.length);
  for (const nqn of nqns) target.unlinkSubsystem(PORT, nqn);
  const remove = await removed - start;
  return { add, remove };
}

export async function benchDiscover(nqns: string[], rounds = 3): Promise<Figure[]> {
  const n = nqns.length;
  const target = new NvmetTarget();
  // The kernel's time first, with the subsystems linked as createTarget left them.
  const raw: number[] = [];
  for (let i = 0; i < rounds; i++) {
    raw.push(await observedRawWrites(nqns));
    await clean();
  }
  // Then this bench links them itself, on a port kept listening by the anchor.
  target.createSubsystem(ANCHOR);
  target.linkSubsystem(PORT, ANCHOR);
  for (const nqn of nqns) target.unlinkSubsystem(PORT, nqn);
  const upstream = (() => {
    try {
      return Deno.statSync("/usr/sbin/stafd").isFile;
    } catch {
      return false;
    }
  })();
  const sides: Side[] = upstream ? ["ours", "one process", "upstream"] : ["ours", "one process"];
  const figures: Figure[] = [
    { name: `${n} raw connects (same run)`, value: median(raw), unit: "ms" },
  ];
  try {
    for (const side of sides) {
      await using bus = await startPrivateBus({
        policies: side === "upstream" ? DEBIAN_POLICIES : [STAC_POLICY, STAF_POLICY],
      });
      const dir = await Deno.makeTempDir({ prefix: "bench-discover-" });
      const adds: number[] = [];
      const removes: number[] = [];
      let failed = "";
      {
        await using daemons = await startSide(side, dir, bus.address);
        for (let i = 0; i < rounds && !failed; i++) {
          const r = await round(target, nqns).catch((error) => {
            // Recorded, not thrown: what a side cannot do is a result too.
            failed = (error as Error).message;
            console.log(`bench: discover (${side}) failed: ${failed}\n${daemons.logs()}`);
            return undefined;
          });
          if (r) adds.push(r.add), removes.push(r.remove);
        }
      }
      await clean();
      for (const nqn of nqns) {
        try {
          target.unlinkSubsystem(PORT, nqn);
        } catch { /* not linked */ }
      }
      await Deno.remove(dir, { recursive: true });
      if (failed) {
        figures.push({
          name: `discover (${side}): +${n} on the target to ${n} live (${failed})`,
          value: Number.NaN,
          unit: "ms",
        });
        continue;
      }
      figures.push(
        {
          name: `discover (${side}): +${n} on the target to ${n} live`,
          value: median(adds),
          unit: "ms",
        },
        {
          name: `discover (${side}): -${n} on the target to ${n} gone`,
          value: median(removes),
          unit: "ms",
        },
        {
          name: `discover (${side}) add after the ${SOAK_MS} ms soak / raw (N=${n})`,
          value: (median(adds) - SOAK_MS) / median(raw),
          unit: "x",
          target: side === "upstream" ? undefined : "<= 1.3",
          pass: side === "upstream" ? undefined : (median(adds) - SOAK_MS) / median(raw) <= 1.3,
        },
      );
    }
  } finally {
    target.removeSubsystem(ANCHOR);
    await clean();
  }
  return figures;
}
