/**
 * Timers as upstream's D-Bus replies show them (nvme-stas staslib/gutil.py,
 * GTimer.__str__), which stacctl prints and tools parse: the interval and,
 * while the timer runs, the seconds left, both as Python prints a float.
 */

/**
 * `60.0s [off]` when stopped; `1.5s [0.734211s]` while running, with
 * `remainingMs` left (`1.5s [0s]` once due but not yet fired).
 */
export function timerText(intervalMs: number, remainingMs?: number): string {
  if (remainingMs === undefined) return `${pyFloat(intervalMs / 1000)}s [off]`;
  // Upstream reads GLib's monotonic time in microseconds, and an int 0 once due.
  const us = Math.round(remainingMs * 1000);
  return `${pyFloat(intervalMs / 1000)}s [${us > 0 ? pyFloat(us / 1e6) : "0"}s]`;
}

/** A number as Python's repr() prints a float: "60.0", "1.5", "1.5e-05". */
export function pyFloat(value: number): string {
  if (Number.isInteger(value)) return `${value}.0`;
  // Both print the shortest text that reads back the same; Python switches
  // to an exponent below 1e-4, with at least two exponent digits.
  if (Math.abs(value) >= 1e-4) return String(value);
  return value.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
}

/** A running timer: the delay it was set for, and when it fires (clock time). */
export interface TimerState {
  delayMs: number;
  dueMs: number;
}

/** A running timer as {@linkcode timerText} shows it at `nowMs`; `idleMs` when none runs. */
export function runningTimerText(
  timer: TimerState | undefined,
  idleMs: number,
  nowMs: number,
): string {
  return timer ? timerText(timer.delayMs, timer.dueMs - nowMs) : timerText(idleMs);
}

/** Upstream's terminator audit period (CtrlTerminator.DISPOSAL_AUDIT_PERIOD_SEC). */
export const TERMINATOR_AUDIT_MS = 30_000;

/**
 * process_info's `terminator.audit timer`. Upstream's terminator checks
 * every 30 s whether the connects that hold up a disposal are over; stacd's
 * disposal itself waits for them, and the timer shows, as upstream's would,
 * the seconds left in the current 30 s while one waits.
 */
export function terminatorTimerText(
  terminator: { waiting: number; sinceMs: number },
  nowMs: number,
): string {
  if (terminator.waiting === 0) return timerText(TERMINATOR_AUDIT_MS);
  const elapsed = (nowMs - terminator.sinceMs) % TERMINATOR_AUDIT_MS;
  return timerText(TERMINATOR_AUDIT_MS, TERMINATOR_AUDIT_MS - elapsed);
}
