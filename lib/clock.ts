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
