/** Small statistics for the host benchmarks. */

/** The middle value (the upper one of the two for an even count). */
export const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The value below which `p` (0..1) of the values lie. */
export const percentile = (xs: readonly number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
