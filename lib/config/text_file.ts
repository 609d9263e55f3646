/**
 * The one way the config loaders read files, injected so that tests (and
 * `--dump-config` on a machine without /etc/nvme) need no real files.
 */

/** Reads a whole text file; undefined when the file does not exist. */
export interface TextFileReader {
  /** Throws on failures other than "not found" (permission denied, a directory). */
  readTextFile(path: string): string | undefined;
}

/**
 * The real file system. Bytes that are not UTF-8 become U+FFFD instead of
 * failing the read: a config file with one stray Latin-1 byte must still load.
 */
export const denoTextFileReader: TextFileReader = {
  readTextFile(path: string): string | undefined {
    try {
      return new TextDecoder().decode(Deno.readFileSync(path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  },
};
