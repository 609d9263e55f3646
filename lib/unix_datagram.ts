/**
 * One datagram to a unix socket path, through libc: what sd_notify and the
 * syslog sink send. Deno's own unix datagram sockets are behind
 * --unstable-net, and node:dgram has none.
 */
import { AF_UNIX, libc, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, sockaddrUn } from "../ffi/libc.ts";

/**
 * Sends `payload` as one datagram to the socket at `path` ("@name" for an
 * abstract socket). Returns whether it was sent; never throws, since
 * nobody listening (or no libc) must not take the daemon down.
 */
export function sendDatagram(path: string, payload: Uint8Array<ArrayBuffer>): boolean {
  try {
    const c = libc();
    const { address, length } = sockaddrUn(path);
    const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    try {
      return c.sendto(fd, payload, BigInt(payload.length), MSG_NOSIGNAL, address, length) >= 0;
    } finally {
      c.close(fd);
    }
  } catch {
    return false;
  }
}
