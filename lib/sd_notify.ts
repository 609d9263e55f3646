/**
 * sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. Does
 * nothing when the variable is unset (not under systemd, containers), and
 * never fails the daemon: systemd not listening is not stacd's problem.
 */
import { AF_UNIX, libc, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, sockaddrUn } from "../ffi/libc.ts";

export interface Notifier {
  /** Sends states such as "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...". */
  notify(...states: string[]): void;
}

/** A notifier for `socketPath` (default: $NOTIFY_SOCKET); a no-op without one. */
export function sdNotifier(socketPath = Deno.env.get("NOTIFY_SOCKET")): Notifier {
  if (!socketPath) return { notify() {} };
  return {
    notify(...states) {
      const payload = new TextEncoder().encode(states.join("\n"));
      try {
        const c = libc();
        // An abstract socket is written with a leading "@" in the variable.
        const { address, length } = sockaddrUn(socketPath);
        const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return;
        c.sendto(fd, payload, BigInt(payload.length), MSG_NOSIGNAL, address, length);
        c.close(fd);
      } catch {
        // No libc socket: nothing to tell systemd.
      }
    },
  };
}
