/**
 * A child process whose stdout and stderr are collected line by line, the
 * way the guest tests watch daemons (stacd, upstream's stafd, a container):
 * by what they log.
 */
import { waitFor } from "./nvme_host.ts";

export class LoggedProcess implements AsyncDisposable {
  readonly lines: string[] = [];
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
    }
    if (rest) this.lines.push(rest);
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
