/**
 * The one way the config loaders read files, injected so that tests need
 * no real files.
 *
 * Reads are bounded: a config path naming a FIFO must not hang stacd (the
 * reads are synchronous, so it would stop the whole daemon), nor may
 * /dev/zero or a runaway file be read until the OOM killer comes.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from "node:fs";

/** Largest stacd.conf or sys.conf read; a 1,000-controller stacd.conf is about 100 KiB. */
export const CONFIG_FILE_MAX_BYTES = 1024 * 1024;

/**
 * Largest file a sys.conf `file://` value, /etc/nvme/hostnqn, hostid or
 * hostkey may be: each holds one NQN (223 bytes), UUID or key (< 100 bytes).
 */
export const VALUE_FILE_MAX_BYTES = 4 * 1024;

/** Reads a whole text file; undefined when the file does not exist. */
export interface TextFileReader {
  /**
   * Throws FileReadError on failures other than "not found": permission
   * denied, not a regular file, more than `maxBytes`.
   */
  readTextFile(path: string, maxBytes: number): string | undefined;
}

/** A file that exists but cannot be read (or must not be). */
export class FileReadError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`cannot read ${path}: ${reason}`);
    this.name = "FileReadError";
  }
}

/** Why a read failed, without the "cannot read PATH" a caller may add itself. */
export function readFailure(error: unknown): string {
  if (error instanceof FileReadError) return error.reason;
  return error instanceof Error ? error.message : String(error);
}

/**
 * The real file system. Bytes that are not UTF-8 become U+FFFD instead of
 * failing the read: a config file with one stray Latin-1 byte must still load.
 */
export const denoTextFileReader: TextFileReader = {
  readTextFile(path: string, maxBytes: number): string | undefined {
    let fd: number | undefined;
    try {
      // stat first: a device or FIFO is refused without being opened. The
      // open is non-blocking and fstat checks again what was opened, so a
      // FIFO swapped in between cannot block it either.
      checkRegular(path, statSync(path), maxBytes);
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      checkRegular(path, fstatSync(fd), maxBytes);
      return new TextDecoder().decode(readAtMost(path, fd, maxBytes));
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      if (error instanceof FileReadError) throw error;
      throw new FileReadError(path, readFailure(error));
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  },
};

function checkRegular(path: string, stats: Stats, maxBytes: number): void {
  if (!stats.isFile()) throw new FileReadError(path, `not a regular file (${fileKind(stats)})`);
  if (stats.size > maxBytes) throw tooBig(path, maxBytes);
}

/** Reads to the end, failing past `maxBytes`: a file may grow after fstat. */
function readAtMost(path: string, fd: number, maxBytes: number): Uint8Array {
  const buffer = new Uint8Array(maxBytes + 1);
  let length = 0;
  for (;;) {
    const n = readSync(fd, buffer, length, buffer.length - length, null);
    if (n === 0) return buffer.subarray(0, length);
    length += n;
    if (length > maxBytes) throw tooBig(path, maxBytes);
  }
}

function tooBig(path: string, maxBytes: number): FileReadError {
  const limit = maxBytes % 1024 ** 2 === 0
    ? `${maxBytes / 1024 ** 2} MiB`
    : maxBytes % 1024 === 0
    ? `${maxBytes / 1024} KiB`
    : `${maxBytes} bytes`;
  return new FileReadError(path, `larger than ${limit}, the limit for this file`);
}

function fileKind(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "not a file";
}
