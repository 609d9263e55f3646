/**
 * Only one stacd manages a host (docs/design.md#single-instance): an exclusive flock on
 * `<runtime dir>/stacd.lock`, held for the life of the process (the kernel
 * drops it when the process dies, even on SIGKILL). The file holds the
 * owner's PID so that a second instance can name it.
 */
import {
  errnoText,
  lastErrno,
  libc,
  LOCK_EX,
  LOCK_NB,
  O_CLOEXEC,
  O_CREAT,
  O_NOFOLLOW,
  O_RDWR,
} from "../../ffi/libc.ts";
import { cstr } from "../../ffi/pointers.ts";

export class AlreadyRunningError extends Error {
  constructor(readonly pid: string, path: string, daemon = "stacd") {
    super(`${daemon} is already running (PID ${pid || "unknown"}, lock ${path})`);
    this.name = "AlreadyRunningError";
  }
}

export interface InstanceLock {
  readonly path: string;
  release(): void;
}

/** Takes `<daemon>.lock` or throws AlreadyRunningError at once. */
export function acquireInstanceLock(runtimeDir: string, daemon = "stacd"): InstanceLock {
  Deno.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  const path = `${runtimeDir}/${daemon}.lock`;
  const c = libc();
  // O_NOFOLLOW: a symlink in the lock's place must not make stacd truncate its target.
  const fd = c.open(cstr(path), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600);
  if (fd < 0) {
    const reason = errnoText(c, lastErrno(c)); // e.g. "Too many levels of symbolic links"
    throw new Error(`Cannot open ${path}: ${reason}`);
  }
  if (c.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    c.close(fd);
    let pid = "";
    try {
      pid = Deno.readTextFileSync(path).trim();
    } catch {
      // unreadable: the message says "unknown"
    }
    throw new AlreadyRunningError(pid, path, daemon);
  }
  const text = new TextEncoder().encode(`${Deno.pid}\n`);
  c.ftruncate(fd, 0n);
  c.write(fd, text, BigInt(text.length));
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      c.close(fd);
    },
  };
}
