/**
 * A fake clock for tests: time moves only when a test says so, so the retry
 * and soak rules run fast and deterministically.
 */
import type { Clock, Timer } from "../lib/clock.ts";

/** A clock that moves only when told to; timers fire in time order. */
export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): Timer {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return { cancel: () => this.#timers.delete(id) };
  }

  /** Number of timers still pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Advances time by `ms`, firing every timer due on the way (and the ones they start). */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      const next = [...this.#timers.entries()]
        .filter(([, t]) => t.at <= end)
        .sort(([a, x], [b, y]) => x.at - y.at || a - b)[0];
      if (!next) break;
      const [id, timer] = next;
      this.#timers.delete(id);
      this.#now = timer.at;
      timer.fn();
      // Let promise chains started by the timer settle before the next one.
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
    this.#now = end;
  }
}
