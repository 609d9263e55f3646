/**
 * Test helpers around the stafd follower: a recorder of what it hands to
 * the daemon that a test can wait on, and a logger whose lines the test
 * can read.
 */
import type { DiscoveredPage } from "../../lib/core/desired_set.ts";
import type { StafdReason } from "../../lib/dbus/stafd_follower.ts";
import { createLogger, type Logger } from "../../lib/logger.ts";
import { MemorySink } from "../memory_sink.ts";

/** One call of `onPages`. */
export interface PagesEvent {
  pages: DiscoveredPage[] | undefined;
  reason: StafdReason;
}

/** Records `onPages` calls; `next()` takes them in order. */
export class PagesRecorder {
  readonly events: PagesEvent[] = [];
  #taken = 0;
  #wake: (() => void) | undefined;

  /** Pass this as the follower's `onPages`. */
  readonly onPages = (pages: DiscoveredPage[] | undefined, reason: StafdReason): void => {
    this.events.push({ pages, reason });
    this.#wake?.();
  };

  /** Events recorded but not taken yet. */
  get untaken(): PagesEvent[] {
    return this.events.slice(this.#taken);
  }

  /**
   * The next event not taken yet, waiting up to `timeoutMs` for it.
   * @throws {Error} naming `what` and the events seen, on timeout.
   */
  async next(what = "an onPages call", timeoutMs = 10_000): Promise<PagesEvent> {
    const deadline = performance.now() + timeoutMs;
    while (this.events.length <= this.#taken) {
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(`Timed out waiting for ${what}; seen: ${summary(this.events)}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.events[this.#taken++]!;
  }

  /** Whether another event arrives within `ms` (taking it if so). */
  async another(ms: number): Promise<PagesEvent | undefined> {
    try {
      return await this.next("another event", ms);
    } catch {
      return undefined;
    }
  }
}

/** The subsystem NQNs of the `nvme` entries, sorted. */
export function nvmeNqns(pages: readonly DiscoveredPage[] | undefined): string[] | undefined {
  return pages?.flatMap((p) => p.entries.filter((e) => e.subtype === "nvme").map((e) => e.subnqn))
    .sort();
}

function summary(events: PagesEvent[]): string {
  return JSON.stringify(events.map((e) => [e.reason, nvmeNqns(e.pages)?.length ?? "unknown"]));
}

/** A logger at debug level whose lines land in `sink`. */
export function memoryLogger(): { log: Logger; sink: MemorySink } {
  const sink = new MemorySink();
  return { log: createLogger(sink, { tron: true }), sink };
}

/** Polls `probe` every 10 ms until it is true; throws after `timeoutMs`. */
export async function until(probe: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!probe()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
