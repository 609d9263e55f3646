/**
 * stacd run the way an operator runs it (main.ts as a child process, as
 * root, with a config file), for the daemon's guest tests: its log is
 * collected line by line, signals are sent for real.
 */
import { STACD_RUN_ENV, STACD_RUN_FLAGS } from "../../build/permissions.ts";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import { LoggedProcess } from "./logged_process.ts";
import { controllers, waitFor } from "./nvme_host.ts";

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/**
 * Timers scaled down for tests (docs/design.md#timers): 3 s -> 150 ms, 60 s -> 3 s, soak 1.5 s ->
 * 75 ms.
 */
export const TEST_TIMER_SCALE = "0.05";

export interface StacdOptions {
  /** stacd by default; stafd runs the same program under that name. */
  program?: "stacd" | "stafd";
  confFile: string;
  runtimeDir: string;
  args?: string[];
  env?: Record<string, string>;
}

export class StacdProcess extends LoggedProcess {
  constructor(readonly options: StacdOptions) {
    super(
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...STACD_RUN_FLAGS,
          "--no-check",
          "--frozen",
          `${root}main.ts`,
          ...(options.program === "stafd" ? ["stafd"] : []),
          "-f",
          options.confFile,
          ...(options.args ?? []),
        ],
        env: {
          ...STACD_RUN_ENV,
          RUNTIME_DIRECTORY: options.runtimeDir,
          STACD_TEST_TIMER_SCALE: TEST_TIMER_SCALE,
          NO_COLOR: "1",
          ...options.env,
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn(),
    );
  }

  signal(signal: Deno.Signal): void {
    this.child.kill(signal);
  }

  /** Sends SIGTERM and returns the exit code. */
  async stop(): Promise<number> {
    this.kill("SIGTERM");
    return (await this.exited()).code;
  }

  /** A test that ends early kills stacd outright (connections stay, as they would). */
  override async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.exited();
  }
}

/** A stacd.conf with one controller line per NQN (127.0.0.1:4420). */
export function stacdConf(
  nqns: string[],
  extra: { global?: string; management?: string; controllers?: string } = {},
): string {
  return [
    "[Global]",
    extra.global ?? "",
    "[I/O controller connection management]",
    extra.management ?? "",
    "[Controllers]",
    ...nqns.map((n) => `controller = transport=tcp;traddr=127.0.0.1;trsvcid=4420;nqn=${n}`),
    extra.controllers ?? "",
    "",
  ].join("\n");
}

/**
 * The live I/O controllers' subsystem NQNs, sorted, with duplicates kept (so
 * a duplicate shows). Discovery controllers (stafd's) are not counted.
 */
export function liveNqns(): string[] {
  return controllers().filter((c) => c.state === "live" && c.subsysnqn !== DISCOVERY_NQN)
    .map((c) => c.subsysnqn).sort();
}

/** Waits until the live controllers are exactly `nqns` (each once). */
export function waitForLiveSet(nqns: string[], timeoutMs = 60_000): Promise<true> {
  const want = [...nqns].sort().join("\n");
  return waitFor(
    () => liveNqns().join("\n") === want || undefined,
    `live set = ${nqns.length} NQNs`,
    timeoutMs,
  );
}

/**
 * subsystem NQN -> device/cntlid of every controller, to prove a connection
 * survived (same device, same cntlid). A controller the kernel is still
 * creating (a connect in progress, e.g. one failing authentication) has no
 * subsystem yet (sysfs shows "(efault)") and no identity to compare: it is
 * left out.
 */
export function identities(): Map<string, string> {
  return new Map(
    controllers().filter((c) => c.subsysnqn.startsWith("nqn.")).map((c) => [
      c.subsysnqn,
      `${c.name}/${c.cntlid}`,
    ]),
  );
}
