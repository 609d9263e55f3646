/**
 * sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. Does
 * nothing when the variable is unset (not under systemd, containers), and
 * never fails the daemon: systemd not listening is not stacd's problem.
 */
import { sendDatagram } from "../unix_datagram.ts";

export interface Notifier {
  /** Sends states such as "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...". */
  notify(...states: string[]): void;
}

/** A notifier for `socketPath` (default: $NOTIFY_SOCKET); a no-op without one. */
export function sdNotifier(socketPath = Deno.env.get("NOTIFY_SOCKET")): Notifier {
  if (!socketPath) return { notify() {} };
  return {
    notify(...states) {
      // An abstract socket has a leading "@" in the variable, as sendDatagram() takes it.
      sendDatagram(socketPath, new TextEncoder().encode(states.join("\n")));
    },
  };
}
