/**
 * The stacd image run as the DaemonSet runs it: `podman run` with exactly
 * the options of container/run-options.json (container/run_options.ts's
 * podmanRunArgs, which tests/unit/container/manifest_test.ts holds to daemonset.yaml),
 * attached, so that stacd's log arrives line by line as `kubectl logs`
 * would show it.
 */
import { loadRunOptions, podmanRunArgs, type RunOptions } from "../../container/run_options.ts";
import { LoggedProcess } from "./logged_process.ts";
import type { CommandResult, Podman } from "./podman.ts";

export class StacdContainer extends LoggedProcess {
  static readonly options: RunOptions = loadRunOptions();
  readonly name: string;
  readonly #podman: Podman;

  /** Starts the image named by run-options.json; `configDir` plays the ConfigMap volume. */
  constructor(
    podman: Podman,
    opts: { name: string; configDir: string; healthTimeoutSeconds?: number },
  ) {
    // Generous waits: stacd starts slowly under TCG.
    super(podman.spawn(podmanRunArgs(StacdContainer.options, { ...opts, rm: true })), 120_000);
    this.#podman = podman;
    this.name = opts.name;
  }

  /** `podman exec NAME args...`: a command in the running container, as a probe runs. */
  exec(args: string[]): Promise<CommandResult> {
    return this.#podman.run(["exec", this.name, ...args]);
  }

  /** The liveness probe's command (run-options.json's healthCommand), exit code. */
  async probe(): Promise<number> {
    return (await this.exec(StacdContainer.options.healthCommand)).code;
  }

  /** `podman kill --signal SIGNAL`: to stacd, the container's PID 1. */
  async signal(signal: string): Promise<void> {
    await this.#podman.ok(["kill", "--signal", signal, this.name]);
  }

  /** `podman stop` (SIGTERM, as the kubelet stops a pod); returns stacd's exit code. */
  async stop(): Promise<number> {
    const grace = "30"; // the DaemonSet's terminationGracePeriodSeconds
    await this.#podman.ok(["stop", "--time", grace, this.name]);
    return (await this.exited()).code;
  }

  override async [Symbol.asyncDispose](): Promise<void> {
    await this.#podman.run(["rm", "--force", "--time", "0", this.name]);
    await this.exited();
  }
}
