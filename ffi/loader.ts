/**
 * Loading of the C libraries stacd drives. Libraries are opened when a
 * component asks for them (never at import), so `--help`, `--version` and the
 * pure core work on machines that lack them.
 */

/** Raised when none of the candidate paths of a library could be opened. */
export class LibraryNotFoundError extends Error {
  constructor(readonly library: string, readonly tried: readonly string[], cause: string) {
    super(`Cannot load ${library}: tried ${tried.join(", ")}: ${cause}`);
    this.name = "LibraryNotFoundError";
  }
}

/** Multiarch directories where Debian, Fedora and Alpine-like systems keep shared objects. */
const LIBRARY_DIRS = [
  "",
  "/usr/lib/x86_64-linux-gnu/",
  "/lib/x86_64-linux-gnu/",
  "/usr/lib/aarch64-linux-gnu/",
  "/usr/lib64/",
  "/usr/lib/",
];

/**
 * Opens the first loadable of `sonames` (bare names go through the dynamic
 * linker's search path first, then the usual library directories).
 */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  library: string,
  sonames: readonly string[],
  symbols: S,
): Deno.DynamicLibrary<S> {
  const tried: string[] = [];
  let lastError = "not found";
  for (const soname of sonames) {
    for (const dir of LIBRARY_DIRS) {
      const path = dir + soname;
      tried.push(path);
      try {
        return Deno.dlopen(path, symbols);
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error);
        // A library that is present but lacks a mandatory symbol is not a
        // path problem: say so at once instead of trying the other paths.
        if (/undefined symbol|Failed to register symbol/i.test(lastError)) {
          throw new LibraryNotFoundError(library, tried, lastError);
        }
      }
    }
  }
  throw new LibraryNotFoundError(library, tried, lastError);
}
