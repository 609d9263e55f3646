/**
 * The stdio and allocator functions of libc that the libnvme binding needs:
 * libnvme logs to a `FILE *` we hand it (an in-memory stream per controller,
 * so a failed connect's message is attributable) and returns malloc'd
 * buffers that we must free().
 */
import { openLibrary } from "./loader.ts";

export const libcStdioSymbols = {
  // FILE *open_memstream(char **ptr, size_t *sizeloc);
  open_memstream: { parameters: ["buffer", "buffer"], result: "pointer" },
  // int fflush(FILE *stream);
  fflush: { parameters: ["pointer"], result: "i32" },
  // int fclose(FILE *stream);
  fclose: { parameters: ["pointer"], result: "i32" },
  // void free(void *ptr);
  free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

export function openLibcStdio(): Deno.DynamicLibrary<typeof libcStdioSymbols> {
  return openLibrary("libc", ["libc.so.6"], libcStdioSymbols);
}
