import type { LogSink } from "../lib/logger.ts";

/** Collects the log lines in memory, for tests to read. */
export class MemorySink implements LogSink {
  readonly lines: { priority: number; line: string }[] = [];
  write(priority: number, line: string): void {
    this.lines.push({ priority, line });
  }
  text(): string {
    return this.lines.map((l) => l.line).join("\n");
  }
}
