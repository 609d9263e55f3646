/**
 * Seeded randomness for the fuzz tests and the fault campaign: whatever a
 * random run finds must be replayable from the seed it printed.
 */

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The seed to replay from the environment variable `name`, else a fresh one
 * (also when the test may not read the environment).
 */
export function seedFrom(name: string): number {
  let given: string | undefined;
  try {
    given = Deno.env.get(name);
  } catch { /* no --allow-env: a fresh seed */ }
  if (given === undefined || given === "") {
    return crypto.getRandomValues(new Uint32Array(1))[0]!;
  }
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new RangeError(`Bad ${name} "${given}": a seed is an integer from 0 to 2^32 - 1`);
  }
  return seed;
}

/** The draws the fuzz tests use, from one seeded sequence. */
export function seededDraws(seed: number): {
  random: () => number;
  int: (n: number) => number;
  pick: <T>(items: readonly T[]) => T;
} {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  return { random, int, pick: <T>(items: readonly T[]): T => items[int(items.length)] as T };
}
