/**
 * open(2) and flock(2) from libc: Deno's FsFile has no non-blocking lock,
 * and the single-instance lock must fail at once, not wait. open() here
 * also takes O_NOFOLLOW, which Deno.open cannot ask for.
 */
import { openLibrary } from "./loader.ts";

export const libcFileSymbols = {
  // int open(const char *pathname, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int flock(int fd, int operation);
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int *__errno_location(void);  (why open() failed, read right after it)
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_CLOEXEC = 0o2000000;
/**
 * Fail (ELOOP) rather than follow a symlink planted in the file's place.
 * arm64 has its own value (arch/arm64/include/uapi/asm/fcntl.h, where
 * 0o400000 is O_LARGEFILE, a no-op there); x86-64 uses asm-generic's.
 */
export const O_NOFOLLOW = Deno.build.arch === "aarch64" ? 0o100000 : 0o400000;
export const LOCK_EX = 2;
export const LOCK_NB = 4;

export function openLibcFile(): Deno.DynamicLibrary<typeof libcFileSymbols> {
  return openLibrary("libc", ["libc.so.6"], libcFileSymbols);
}
