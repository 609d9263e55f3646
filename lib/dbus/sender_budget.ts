/**
 * What one caller may hold of stacd's D-Bus connection at a time. All
 * callers' replies share one socket to the bus, so a caller that floods
 * calls, or never reads its replies, must be refused past its share while
 * the others are served. A call is in flight from its arrival until its
 * reply has left our outbox (handed to the socket); what a caller holds
 * is forgotten once nothing of it is in flight, so the table stays as
 * small as the traffic in progress.
 */

/**
 * Calls in flight per caller: twice what our stacctl sends at once (its
 * status asks controller_info in batches of 32); upstream's stacctl sends
 * one at a time. dbus-daemon itself lets a connection have 128 calls
 * awaiting replies.
 */
export const MAX_CALLS_IN_FLIGHT = 64;

/**
 * Reply bytes per caller waiting in our outbox: one list_controllers(true)
 * reply with 1,000 controllers (~0.7 MiB) and change. Every caller's reply
 * waits behind what is queued before it on our one socket, so this is
 * also what one caller can make the others wait for.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024;

/**
 * Reply bytes in our outbox from all callers together: beyond it the bus is
 * not reading us, and computing more replies would only grow our memory.
 */
export const MAX_OUTBOX_BYTES = 16 * 1024 * 1024;

/** The D-Bus error a caller gets past its budget. */
export const LIMITS_EXCEEDED = "org.freedesktop.DBus.Error.LimitsExceeded";

/** One admitted call: say what its reply queued, and when it left the outbox. */
export interface Admitted {
  /** Counts `bytes` against the caller; returns the callback for when they are written. */
  queued(bytes: number): () => void;
  /** The call ends without its reply written (none wanted, or it could not be sent). */
  done(): void;
}

interface Held {
  calls: number;
  bytes: number;
}

export class SenderBudget {
  readonly #held = new Map<string, Held>();

  /** How many callers have something in flight now. */
  get callers(): number {
    return this.#held.size;
  }

  /** Admits a call from `sender`, or returns why it is refused (over its budget). */
  admit(sender: string): Admitted | string {
    const held = this.#held.get(sender) ?? { calls: 0, bytes: 0 };
    if (held.calls >= MAX_CALLS_IN_FLIGHT) {
      return `${held.calls} calls of ${sender} are already in progress`;
    }
    if (held.bytes >= MAX_QUEUED_BYTES) {
      return `${held.bytes} bytes of replies to ${sender} are not yet taken`;
    }
    held.calls++;
    this.#held.set(sender, held);
    let settled = false;
    let queued = 0; // what this call counts against the caller, released when it settles
    const settle = () => {
      if (settled) return;
      settled = true;
      held.calls--;
      held.bytes -= queued;
      if (held.calls === 0) this.#held.delete(sender);
    };
    return {
      queued: (bytes) => {
        held.bytes += bytes;
        queued += bytes;
        return settle;
      },
      done: settle,
    };
  }
}
