/**
 * The libc functions stacd calls, in one table opened once: waiting on file
 * descriptors (the udev monitor's poll with a wake pipe), the instance lock
 * (open with O_NOFOLLOW and a non-blocking flock, which Deno's own files
 * cannot ask for), unix datagrams (sd_notify, syslog: Deno's datagram
 * sockets are unstable), libnvme's log stream (a FILE over a memfd), and
 * errno. With the helpers that fill `struct pollfd` and `struct sockaddr_un`,
 * so that nothing outside `ffi/` touches `Deno.UnsafePointer`.
 */

import { openLibrary } from "./loader.ts";
import { readCString } from "./pointers.ts";

/** libc symbols, keyed by their C names. */
export const LIBC_SYMBOLS = {
  // int open(const char *pathname, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t pread(int fd, void *buf, size_t count, off_t offset);
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // int flock(int fd, int operation);
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // int pipe2(int pipefd[2], int flags);
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);
  // nonblocking: runs on a helper thread and returns a promise, so the event
  // loop sleeps in the kernel until a descriptor is ready (no timer).
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // ssize_t sendto(int fd, const void *buf, size_t len, int flags,
  //                const struct sockaddr *dest_addr, socklen_t addrlen);
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  // int memfd_create(const char *name, unsigned int flags);
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  // FILE *fdopen(int fd, const char *mode);
  fdopen: { parameters: ["i32", "buffer"], result: "pointer" },
  // int fflush(FILE *stream);
  fflush: { parameters: ["pointer"], result: "i32" },
  // int fclose(FILE *stream);  (closes the descriptor too)
  fclose: { parameters: ["pointer"], result: "i32" },
  // int *__errno_location(void);  (glibc and musl; the thread's errno)
  __errno_location: { parameters: [], result: "pointer" },
  // int ioctl(int fd, unsigned long request, void *arg);
  // nonblocking: an admin command to a remote discovery controller waits for
  // the target (up to the kernel's admin timeout).
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32", nonblocking: true },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libc. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let opened: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;

/**
 * libc, opened on first use and kept for the life of the process: libc is
 * mapped anyway, and a shared handle that is never closed cannot be closed
 * under a nonblocking call (poll) still running on its helper thread.
 * @throws {LibraryNotFoundError} listing every path tried.
 */
export function libc(): Libc {
  opened ??= openLibrary("libc", ["libc.so.6"], LIBC_SYMBOLS);
  return opened.symbols;
}

// Constants are the same on x86_64 and aarch64 (asm-generic) unless noted.

/** open(2) flags. */
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_NONBLOCK = 0o4000;
/** Close-on-exec, so spawned helpers inherit no descriptor of stacd's. */
export const O_CLOEXEC = 0o2000000;
/**
 * Fail (ELOOP) rather than follow a symlink planted in the file's place.
 * arm64 has its own value (arch/arm64/include/uapi/asm/fcntl.h, where
 * 0o400000 is O_LARGEFILE, a no-op there); x86_64 uses asm-generic's.
 */
export const O_NOFOLLOW = Deno.build.arch === "aarch64" ? 0o100000 : 0o400000;

/** flock(2) operations. */
export const LOCK_EX = 2;
export const LOCK_NB = 4;

/** memfd_create flag: not inherited by children (stacd runs none, but still). */
export const MFD_CLOEXEC = 1;

/** socket(2) and sendto(2) arguments. */
export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = O_CLOEXEC;
/** No SIGPIPE when the receiver is gone: the send fails instead. */
export const MSG_NOSIGNAL = 0x4000;

/** errno values stacd reacts to (asm-generic/errno*.h). */
export const Errno = { EAGAIN: 11, ENOBUFS: 105 } as const;

/** `struct pollfd { int fd; short events; short revents; }`: named offsets, 8 bytes. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;
/** poll(2) event bits (asm-generic/poll.h). */
export const POLLIN = 0x001;
/** Invalid descriptor (always reported): it was closed underneath. */
export const POLLNVAL = 0x020;

/** `struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }`: 110 bytes. */
export const SOCKADDR_UN = { size: 110, family: 0, path: 2 } as const;

/**
 * The calling thread's errno. Valid only right after a synchronous call that
 * failed: synchronous FFI calls run on the JS thread, so nothing in between
 * touches it. (Nonblocking calls run elsewhere; their errno is out of reach.)
 */
export function lastErrno(c: Pick<Libc, "__errno_location">): number {
  const location = c.__errno_location();
  return location === null ? 0 : new Deno.UnsafePointerView(location).getInt32();
}

/** strerror(3) text for `errno`, e.g. "No buffer space available". */
export function errnoText(c: Pick<Libc, "strerror">, errno: number): string {
  return readCString(c.strerror(errno)) ?? `errno ${errno}`;
}

/** Linux's highest errno (EHWPOISON), the end of the table errnoOfText() searches. */
const ERRNO_MAX = 133;
let errnoByText: Map<string, number> | undefined;

/**
 * The errno whose strerror(3) text is `text` ("Connection refused" is 111),
 * or undefined: how the errno of a failure that only left its text (in
 * libnvme's log) is recovered.
 */
export function errnoOfText(c: Pick<Libc, "strerror">, text: string): number | undefined {
  if (errnoByText === undefined) {
    errnoByText = new Map();
    for (let errno = 1; errno <= ERRNO_MAX; errno++) {
      const text = errnoText(c, errno);
      if (!errnoByText.has(text)) errnoByText.set(text, errno);
    }
  }
  return errnoByText.get(text);
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

/**
 * `struct sockaddr_un` for `path` and the length to pass with it. A leading
 * "@" names an abstract socket (as systemd writes them): its name starts
 * with a NUL and has no terminating one, so the length must be exact.
 * @throws {RangeError} when the path does not fit in sun_path.
 */
export function sockaddrUn(path: string): { address: Uint8Array<ArrayBuffer>; length: number } {
  const abstract = path.startsWith("@");
  const bytes = new TextEncoder().encode(abstract ? "\0" + path.slice(1) : path);
  const capacity = SOCKADDR_UN.size - SOCKADDR_UN.path;
  if (bytes.length >= capacity) throw new RangeError(`Socket path too long: ${path}`);
  const address = new Uint8Array(SOCKADDR_UN.size);
  new DataView(address.buffer).setUint16(SOCKADDR_UN.family, AF_UNIX, true);
  address.set(bytes, SOCKADDR_UN.path);
  return { address, length: SOCKADDR_UN.path + bytes.length + (abstract ? 0 : 1) };
}
