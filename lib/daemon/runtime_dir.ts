/**
 * The runtime directory (docs/design.md#runtime-directory) holds the single-instance lock,
 * the last-known config and the health socket. stacd runs as root and
 * writes there, so the directory is trusted only if nobody but root can
 * change what is in it: whoever can could plant a symlink or swap a file.
 */

/** A runtime directory stacd must not use; the message says what to fix. */
export class UntrustedRuntimeDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UntrustedRuntimeDirError";
  }
}

/**
 * Creates `dir` (mode 0700) when missing, then checks that it is a
 * directory owned by `owner` (root) that neither group nor others may
 * write. A symlink is followed: only root can make one in /run.
 * @throws {UntrustedRuntimeDirError} when it is not.
 */
export function prepareRuntimeDir(dir: string, owner = 0): void {
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = Deno.statSync(dir);
  if (!info.isDirectory) throw new UntrustedRuntimeDirError(`${dir} is not a directory`);
  if (info.uid !== owner) {
    throw new UntrustedRuntimeDirError(
      `runtime directory ${dir} is owned by uid ${info.uid}, not ${owner}: not used ` +
        `(chown ${owner} ${dir}, or remove it)`,
    );
  }
  const mode = (info.mode ?? 0) & 0o7777;
  if (mode & 0o022) {
    throw new UntrustedRuntimeDirError(
      `runtime directory ${dir} is writable by group or others (mode ` +
        `${mode.toString(8).padStart(4, "0")}): not used (chmod 0700 ${dir})`,
    );
  }
}
