/**
 * The stdio, file and allocator functions of libc that the libnvme binding
 * needs: libnvme logs to a `FILE *` we hand it (one per controller, so a
 * failed connect's message is attributable) and returns malloc'd buffers
 * that we must free(). That FILE must have a real file descriptor: libnvme
 * 1.3 writes through the FILE, newer versions (1.13) take its fileno() and
 * write to the descriptor, and refuse a FILE without one (open_memstream).
 * A memfd serves both.
 */
import { openLibrary } from "./loader.ts";

export const libcStdioSymbols = {
  // int memfd_create(const char *name, unsigned int flags);
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  // FILE *fdopen(int fd, const char *mode);
  fdopen: { parameters: ["i32", "buffer"], result: "pointer" },
  // ssize_t pread(int fd, void *buf, size_t count, off_t offset);
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int fflush(FILE *stream);
  fflush: { parameters: ["pointer"], result: "i32" },
  // int fclose(FILE *stream);  (closes the descriptor too)
  fclose: { parameters: ["pointer"], result: "i32" },
  // void free(void *ptr);
  free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** memfd_create flag: not inherited by children (stacd runs none, but still). */
export const MFD_CLOEXEC = 1;

export function openLibcStdio(): Deno.DynamicLibrary<typeof libcStdioSymbols> {
  return openLibrary("libc", ["libc.so.6"], libcStdioSymbols);
}
