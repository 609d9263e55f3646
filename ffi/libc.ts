/**
 * The libc functions behind waiting on file descriptors (the udev monitor's
 * poll with a wake pipe) and reading errno, with the helpers that fill
 * `struct pollfd` and read errno, so that nothing outside `ffi/` touches
 * `Deno.UnsafePointer` or `Deno.UnsafePointerView`.
 */

import { openLibrary } from "./loader.ts";
import { readCString } from "./pointers.ts";

/** `struct pollfd { int fd; short events; short revents; }`: named offsets, 8 bytes. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;

/** poll(2) event bits (asm-generic/poll.h, identical on every Linux architecture). */
export const POLLIN = 0x001;
/** Invalid descriptor (always reported): it was closed underneath. */
export const POLLNVAL = 0x020;

/** pipe2(2) flags (the same on x86-64 and aarch64: both take these from asm-generic/fcntl.h). */
export const O_NONBLOCK = 0o4000;
/** Close-on-exec, so spawned helpers do not inherit the wake pipe. */
export const O_CLOEXEC = 0o2000000;

/** errno values stacd reacts to (asm-generic/errno*.h). */
export const Errno = { EAGAIN: 11, ENOBUFS: 105 } as const;

/** libc symbols, keyed by their C names. */
export const LIBC_SYMBOLS = {
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);
  // nonblocking: runs on a helper thread and returns a promise, so the event
  // loop sleeps in the kernel until a descriptor is ready (no timer).
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  // int pipe2(int pipefd[2], int flags);
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int *__errno_location(void);  (glibc and musl; the thread's errno)
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libc. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** Opens libc; the caller closes the library once its last call has settled. */
export function openLibc(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS> {
  return openLibrary("libc", ["libc.so.6"], LIBC_SYMBOLS);
}

/**
 * The calling thread's errno. Valid only right after a synchronous call that
 * failed: synchronous FFI calls run on the JS thread, so nothing in between
 * touches it. (Nonblocking calls run elsewhere; their errno is out of reach.)
 */
export function lastErrno(c: Pick<Libc, "__errno_location">): number {
  const location = c.__errno_location();
  return location === null ? 0 : new Deno.UnsafePointerView(location).getInt32();
}

/** Builds a `struct pollfd[]` asking for POLLIN on each of `fds`. */
export function pollInSet(fds: readonly number[]): Uint8Array<ArrayBuffer> {
  const set = new Uint8Array(fds.length * POLLFD.size);
  const view = new DataView(set.buffer);
  fds.forEach((fd, i) => {
    view.setInt32(i * POLLFD.size + POLLFD.fd, fd, true);
    view.setInt16(i * POLLFD.size + POLLFD.events, POLLIN, true);
  });
  return set;
}

/** The `revents` the kernel reported for entry `index` of a poll set. */
export function pollRevents(set: Uint8Array<ArrayBuffer>, index: number): number {
  return new DataView(set.buffer).getInt16(index * POLLFD.size + POLLFD.revents, true);
}

/**
 * pipe2(2): returns `[readEnd, writeEnd]`.
 * @throws {Error} with the errno text when the kernel refuses (e.g. EMFILE).
 */
export function openPipe(c: Libc, flags: number): [number, number] {
  const fds = new Int32Array(2);
  if (c.pipe2(fds, flags) !== 0) {
    throw new Error(`Cannot create a pipe: ${errnoText(c, lastErrno(c))}`);
  }
  return [fds[0]!, fds[1]!];
}

/** strerror(3) text for `errno`, e.g. "No buffer space available". */
export function errnoText(c: Pick<Libc, "strerror">, errno: number): string {
  return readCString(c.strerror(errno)) ?? `errno ${errno}`;
}
