/**
 * The stacd image run as the DaemonSet runs it: `podman run` with exactly
 * the options of container/run-options.json (container/run_options.ts's
 * podmanRunArgs, which tests/unit/manifest_test.ts holds to daemonset.yaml),
 * attached, so that stacd's log arrives line by line as `kubectl logs`
 * would show it.
 */
import { loadRunOptions, podmanRunArgs, type RunOptions } from "../../container/run_options.ts";
import { waitFor } from "./nvme_host.ts";
import type { CommandResult, Podman } from "./podman.ts";

export class StacdContainer implements AsyncDisposable {
  static readonly options: RunOptions = loadRunOptions();
  readonly name: string;
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly #podman: Podman;
  readonly #pump: Promise<void>;

  /** Starts the image named by run-options.json; `configDir` plays the ConfigMap volume. */
  constructor(
    podman: Podman,
    opts: { name: string; configDir: string; healthTimeoutSeconds?: number },
  ) {
    this.#podman = podman;
    this.name = opts.name;
    this.child = podman.spawn(podmanRunArgs(StacdContainer.options, { ...opts, rm: true }));
    this.#pump = Promise.all([this.#collect(this.child.stdout), this.#collect(this.child.stderr)])
      .then(() => {});
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      this.lines.push(...parts);
    }
    if (rest) this.lines.push(rest);
  }

  get log(): string {
    return this.lines.join("\n");
  }

  /** Waits until a log line matches `pattern` (generous: stacd starts slowly under TCG). */
  waitForLog(pattern: RegExp, timeoutMs = 120_000): Promise<string> {
    return waitFor(
      () => this.lines.find((l) => pattern.test(l)),
      `container log ${pattern}\n${this.log}`,
      timeoutMs,
    );
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
    const status = await this.child.status;
    await this.#pump;
    return status.code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#podman.run(["rm", "--force", "--time", "0", this.name]);
    await this.child.status;
    await this.#pump;
  }
}
