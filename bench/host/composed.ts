/**
 * Starts bench/host/stacd_without_kernel.ts as its own process on a private
 * bus, for the benches that look at stacd from outside: its D-Bus latency,
 * memory, start-up and idle cost. The finder's benches start
 * bench/host/stafd_without_kernel.ts the same way (`program`).
 */
import { RUNTIME_FLAGS, STACD_RUN_ENV, V8_FLAGS } from "../../build/permissions.ts";
import { delay } from "./stats.ts";

const ENTRY = new URL("./stacd_without_kernel.ts", import.meta.url).pathname;

export interface ComposedStacd extends AsyncDisposable {
  pid: number;
  /** Its runtime directory: configs, log, last-known file, health socket. */
  dir: string;
  /** performance.now() just before the process was spawned. */
  spawnedAt: number;
  /** Resolves once every controller is connected; rejects if the process dies first. */
  ready: Promise<void>;
  /** SIGTERM, then waits for the exit; idempotent. */
  stop(): Promise<void>;
}

export interface ComposedOptions {
  controllers: number;
  /** The private bus, as DBUS_SYSTEM_BUS_ADDRESS. */
  busAddress: string;
  /** V8 flags; default stacd's own (build/permissions.ts). */
  v8Flags?: readonly string[];
  /**
   * Another composed program than stacd: its entry, its arguments after DIR
   * (in place of CONTROLLERS) and the name of its log file in DIR.
   */
  program?: { entry: string; args: readonly string[]; log: string };
}

/** Spawns the composed stacd (or `program`); its log goes to `${dir}/stacd.log` (or `log`). */
export async function spawnComposed(options: ComposedOptions): Promise<ComposedStacd> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-bench-" });
  const v8Flags = options.v8Flags ?? V8_FLAGS;
  const flags = v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : [];
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      ...RUNTIME_FLAGS,
      ...flags,
      options.program?.entry ?? ENTRY,
      dir,
      ...options.program?.args ?? [String(options.controllers)],
    ],
    env: { ...STACD_RUN_ENV, DBUS_SYSTEM_BUS_ADDRESS: options.busAddress, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  });
  const spawnedAt = performance.now();
  const child = command.spawn();
  let stderr = "";
  const ready = (async () => {
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    while (!stderr.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) {
        const logFile = `${dir}/${options.program?.log ?? "stacd.log"}`;
        const log = await Deno.readTextFile(logFile).catch(() => "");
        throw new Error(`composed program exited before ready: ${stderr}\n${log.slice(-2000)}`);
      }
      stderr += value;
    }
    // Keep draining: an error printed later must not block the process on a full pipe.
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        Deno.stderr.writeSync(new TextEncoder().encode(`composed stacd: ${value}`));
      }
    })().catch(() => {});
  })();
  ready.catch(() => {});
  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      const exited = await Promise.race([child.status.then(() => true), delay(10_000)]);
      if (!exited) child.kill("SIGKILL");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  return { pid: child.pid, dir, spawnedAt, ready, stop, [Symbol.asyncDispose]: stop };
}

/** The process's resident set (VmRSS) in MB. */
export function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/^VmRSS:\s*(\d+)\s*kB/m.exec(status)?.[1]);
  return kb / 1024;
}

/** The process's private anonymous memory (heaps, stacks) in MB: RSS without mapped files. */
export function anonymousMb(pid: number): number {
  const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
  return Number(/^Anonymous:\s*(\d+)\s*kB/m.exec(rollup)?.[1]) / 1024;
}
