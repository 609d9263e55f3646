/**
 * Every timing of the control loop, in one place (upstream's values, in
 * milliseconds), and their test-only scaling.
 */

export const TIMERS = {
  /** Soak after a config reload or a stafd signal before recomputing. */
  configSoakMs: 1_500,
  /** Soak after stafd vanished and came back, so that it can refill its cache. */
  stafdReturnedSoakMs: 10_000,
  /** The audit looks 1 s after a udev `add`. */
  auditAfterAddMs: 1_000,
  /** Retry after a first failed connect, or after the kernel removed the device. */
  fastRetryMs: 3_000,
  /** Retry after later failures. */
  slowRetryMs: 60_000,
  /** A look at the kernel when nothing asked: the backstop for lost events (stacd's own). */
  resyncMs: 300_000,
  /**
   * How long a pass for a connect returning, a disposal ending or a udev
   * removal waits, so that a burst of them is one pass (stacd's own): 32
   * connects returning one by one must not each re-read sysfs while the
   * kernel still works on the others.
   */
  settleMs: 500,
} as const;

export type Timers = { -readonly [K in keyof typeof TIMERS]: number };

/**
 * The timers scaled by the test-only variable STACD_TEST_TIMER_SCALE (e.g.
 * 0.01 makes the 60 s retry 0.6 s); the defaults are upstream's.
 */
export function scaledTimers(
  scale = Number(Deno.env.get("STACD_TEST_TIMER_SCALE") ?? "1"),
): Timers {
  return scaled(TIMERS, scale);
}

/** `values` (milliseconds) times `scale`, rounded; a scale that is not a positive number is 1. */
export function scaled<T extends Readonly<Record<string, number>>>(
  values: T,
  scale = Number(Deno.env.get("STACD_TEST_TIMER_SCALE") ?? "1"),
): { -readonly [K in keyof T]: number } {
  const s = Number.isFinite(scale) && scale > 0 ? scale : 1;
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, Math.round(v * s)]),
  ) as { -readonly [K in keyof T]: number };
}
