/**
 * Replies computed for the calls of one event-loop turn, reused by the
 * same calls in that turn. The bus socket dispatches every call of a read
 * in one synchronous run, and nothing else can change stacd's state until
 * that run yields: within it, equal calls have equal replies, so a flood
 * of 400 list_controllers(true) in one read costs one. The entries are
 * dropped when the run yields, so no reply outlives the state it shows.
 */
export class TurnCache<T> {
  readonly #entries = new Map<string, T>();

  get(key: string): T | undefined {
    return this.#entries.get(key);
  }

  set(key: string, value: T): void {
    // Microtasks run only once the synchronous dispatch run is over.
    if (this.#entries.size === 0) queueMicrotask(() => this.#entries.clear());
    this.#entries.set(key, value);
  }
}
