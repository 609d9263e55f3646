/**
 * A child process whose stdout and stderr are collected line by line, the
 * way the guest tests watch daemons (stacd, upstream's stafd, a container):
 * by what they log.
 */
import { waitFor } from "./nvme_host.ts";

export class LoggedProcess implements AsyncDisposable {
  readonly lines: string[] = [];
  /** When each line arrived (performance.now()), for timings taken from the log. */
  readonly arrivals: number[] = [];
  readonly #pump: Promise<void>;

  /** `child` must have piped stdout and stderr; `waitMs` is waitForLog's default. */
  constructor(readonly child: Deno.ChildProcess, readonly waitMs = 30_000) {
    this.#pump = Promise.all([this.#collect(child.stdout), this.#collect(child.stderr)])
      .then(() => {});
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      this.lines.push(...parts);
      this.arrivals.push(...parts.map(() => performance.now()));
    }
    if (rest) {
      this.lines.push(rest);
      this.arrivals.push(performance.now());
    }
  }

  get log(): string {
    return this.lines.join("\n");
  }

  /** Waits until a log line matches `pattern`. */
  waitForLog(pattern: RegExp, timeoutMs = this.waitMs): Promise<string> {
    return waitFor(
      () => this.lines.find((l) => pattern.test(l)),
      `log ${pattern}\n${this.log}`,
      timeoutMs,
    );
  }

  /** When the first line matching `pattern` arrived; undefined if none did. */
  arrivalOf(pattern: RegExp): number | undefined {
    const i = this.lines.findIndex((l) => pattern.test(l));
    return i < 0 ? undefined : this.arrivals[i];
  }

  /** The exit status, once every line of output is in. */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.child.status;
    await this.#pump;
    return status;
  }

  /** Sends `signal` unless the process is gone already. */
  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGTERM");
    await this.exited();
  }
}
