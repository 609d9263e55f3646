/**
 * A unix datagram sender from libc, for sd_notify: Deno's own unix datagram
 * sockets are behind --unstable-net, and node:dgram has none.
 */
import { openLibrary } from "./loader.ts";

export const libcSocketSymbols = {
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // ssize_t sendto(int fd, const void *buf, size_t len, int flags,
  //                const struct sockaddr *dest_addr, socklen_t addrlen);
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): sa_family_t (2) + sun_path[108]. */
export const SOCKADDR_UN_SIZE = 110;

export function openLibcSocket(): Deno.DynamicLibrary<typeof libcSocketSymbols> {
  return openLibrary("libc", ["libc.so.6"], libcSocketSymbols);
}

/** struct sockaddr_un for `path` ("\0name" for an abstract socket). */
export function sockaddrUn(path: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length >= SOCKADDR_UN_SIZE - 2) throw new RangeError(`Socket path too long: ${path}`);
  const addr = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  return addr;
}
