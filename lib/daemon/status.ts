/**
 * What stacd shows of itself (D-Bus, stacctl): an immutable value the
 * daemon publishes after every pass and every change of its own timers or
 * trace setting. Readers only format it: no sysfs reads, no reach into the
 * daemon. Never holds a key: only whether the host has one.
 */
import type { PassSnapshot } from "./reconciler.ts";
import type { TimerState } from "../core/timer_text.ts";
import type { SysConfig } from "../config/sys_conf.ts";
import type { Logger } from "../logger.ts";

export interface StacdStatus {
  readonly pass: PassSnapshot;
  /** The config soak timer while it runs (a reload, or stafd's answer waiting). */
  readonly soak?: TimerState;
  /** The soak the next change would get, shown while none runs. */
  readonly soakIdleMs: number;
  readonly host: {
    readonly hostNqn: string;
    readonly hostId?: string;
    readonly hasHostKey: boolean;
    readonly symname?: string;
  };
  /** ignore-iface, which controller_info() needs to name a controller as the set does. */
  readonly ignoreIface: boolean;
  readonly tron: boolean;
}

/** The latest published value: written by one publisher, read by any number of readers. */
export class Latest<T> {
  #value: T | undefined;

  set(value: T): void {
    this.#value = value;
  }

  /** Throws before the first publication: readers start after the publisher. */
  get(): T {
    if (this.#value === undefined) throw new Error("nothing published yet");
    return this.#value;
  }
}

/** What the status shows of the host: never its key, only whether it has one. */
export function hostStatus(sys: SysConfig): StacdStatus["host"] {
  return {
    hostNqn: sys.hostNqn,
    hostId: sys.hostId,
    hasHostKey: sys.hostKey !== undefined,
    symname: sys.hostSymname,
  };
}

/** Runs each stop step in order; one that fails is logged and the next still runs. */
export async function stopInOrder(
  steps: readonly [string, () => unknown][],
  log: Pick<Logger, "error">,
): Promise<void> {
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (error) {
      log.error(`Stopping the ${name} failed: ${(error as Error).message}`);
    }
  }
}
