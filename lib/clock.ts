/**
 * Time behind a narrow interface so that the retry and soak rules are unit
 * tested with a fake clock, fast and deterministic.
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls `fn` once after `ms`; the returned timer cancels it. */
  after(ms: number, fn: () => void): Timer;
}

/** The real clock. Timers are unref'd nowhere: a pending retry keeps stacd alive by design. */
export const systemClock: Clock = {
  now: () => performance.now(),
  after(ms, fn) {
    const id = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(id) };
  },
};

/** A deadline: `expired` rejects with `error()` after `ms` on `clock`, unless cancelled first. */
export interface Deadline {
  readonly expired: Promise<never>;
  cancel(): void;
}

export function deadline(clock: Clock, ms: number, error: () => Error): Deadline {
  let timer: Timer | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = clock.after(ms, () => reject(error()));
  });
  expired.catch(() => {}); // a cancelled or unraced deadline is not an unhandled rejection
  return { expired, cancel: () => timer?.cancel() };
}

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
