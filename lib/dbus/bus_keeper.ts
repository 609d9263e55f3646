/**
 * Keeps stacd's D-Bus service up as far as the bus allows (docs/design.md#without-a-system-bus):
 * without a system bus (containers) or while it restarts, stacd goes on
 * managing controllers, says once that the D-Bus API is off, and takes the
 * name again when the bus socket reappears. It watches the socket's
 * directory with inotify (Deno.watchFs) instead of retrying on a timer, so
 * an idle stacd without a bus never wakes up; only a socket that exists but
 * refuses is retried on a timer, a few times (about 8 s in all).
 */
import type { Logger } from "../logger.ts";
import { socketPath, SYSTEM_BUS_ADDRESS, systemBusAddress } from "./bus_socket.ts";

/** Something that runs on the bus and says when its connection ended. */
export interface BusService {
  readonly closed: Promise<string>;
  close(): Promise<void>;
}

export interface BusKeeper<S extends BusService> {
  /** The service while it is up. */
  readonly current: S | undefined;
  /** Resolves once the first attempt (success or not) is over. */
  readonly firstAttempt: Promise<void>;
  close(): Promise<void>;
}

/** The system bus socket path from DBUS_SYSTEM_BUS_ADDRESS, or the standard one. */
export function systemBusSocketPath(address = systemBusAddress()): string {
  try {
    return socketPath(address);
  } catch {
    return socketPath(SYSTEM_BUS_ADDRESS);
  }
}

export function keepOnBus<S extends BusService>(
  name: string,
  start: () => Promise<S>,
  options: { log: Logger; socketPath?: string; onUp?: (service: S) => void },
): BusKeeper<S> {
  const { log } = options;
  const socketPath = options.socketPath ?? systemBusSocketPath();
  let current: S | undefined;
  let watcher: Deno.FsWatcher | undefined;
  let stopped = false;
  let off = false; // the "API off" line is said once per outage

  const say = (reason: string) => {
    if (off) return log.debug(`${name}: still no D-Bus: ${reason}`);
    off = true;
    log.warning(
      `${name}: D-Bus API off (${reason}); the daemon goes on without it and returns when the bus does`,
    );
  };

  /** One try; true when the service is up. */
  const attempt = async (): Promise<boolean> => {
    try {
      const service = await start();
      if (stopped) {
        await service.close();
        return true;
      }
      current = service;
      if (off) log.info(`${name}: D-Bus API back on`);
      off = false;
      options.onUp?.(service);
      void service.closed.then((reason) => {
        if (current !== service || stopped) return;
        current = undefined;
        // The service itself has said that the API is off: one line per outage.
        off = true;
        log.debug(`${name}: lost the bus (${reason}); waiting for it to return`);
        void resume();
      });
      return true;
    } catch (error) {
      say((error as Error).message);
      return false;
    }
  };

  /**
   * Sleeps in inotify until the bus socket is (re)created, or `retryMs`
   * passed; false if stopped or unwatchable. A socket already there when the
   * watch begins counts unless it is `failed` (the one the last attempt
   * could not use): a bus that came back before the watch began would
   * otherwise never be seen, and a stale socket must not make a busy loop.
   */
  const socketCreated = async (
    failed: string | undefined,
    retryMs: number | undefined,
  ): Promise<boolean> => {
    const dir = existingParent(socketPath);
    try {
      watcher = Deno.watchFs(dir, { recursive: dir !== parentOf(socketPath) });
    } catch (error) {
      log.warning(`${name}: cannot watch ${dir} for the bus: ${(error as Error).message}`);
      return false;
    }
    const w = watcher;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let retry = false;
    try {
      const there = socketIdentity(socketPath);
      if (there !== undefined && there !== failed) return true;
      if (retryMs !== undefined) {
        timer = setTimeout(() => {
          retry = true;
          w.close();
        }, retryMs);
      }
      for await (const event of w) {
        if ((event.kind === "create" || event.kind === "modify") && exists(socketPath)) return true;
      }
      return retry; // else closed by close()
    } finally {
      clearTimeout(timer);
      w.close();
      if (watcher === w) watcher = undefined;
    }
  };

  const resume = async (): Promise<void> => {
    // A socket that exists but refuses is tried again a few times:
    // dbus-daemon creates it (bind) before it accepts (listen), and no
    // event marks the second step. A stale one is then left to inotify.
    let failed: string | undefined;
    let refusals = 0;
    while (!stopped && !watcher) {
      const retryMs = failed !== undefined && refusals <= REFUSED_RETRIES
        ? REFUSED_RETRY_MS * 2 ** (refusals - 1)
        : undefined;
      if (!await socketCreated(failed, retryMs) || stopped) return;
      const tried = socketIdentity(socketPath);
      if (await attempt()) return;
      refusals = tried !== undefined && tried === failed ? refusals + 1 : 1;
      failed = tried;
    }
  };

  const firstAttempt = attempt().then((up) => {
    if (!up) void resume();
  });
  return {
    get current() {
      return current;
    },
    firstAttempt,
    async close() {
      stopped = true;
      watcher?.close();
      await current?.close();
      current = undefined;
    },
  };
}

/** Retries of a socket that exists but refuses: 250 ms, doubling, about 8 s in all. */
const REFUSED_RETRIES = 5;
const REFUSED_RETRY_MS = 250;

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/** The socket's directory, or its nearest existing ancestor (/run/dbus may not exist yet). */
function existingParent(path: string): string {
  let dir = parentOf(path);
  while (dir !== "/" && !exists(dir)) dir = parentOf(dir);
  return dir;
}

/** Which socket file is at `path` (inode and change time); undefined if none. */
function socketIdentity(path: string): string | undefined {
  try {
    const s = Deno.statSync(path);
    return `${s.ino}:${s.ctime?.getTime()}`;
  } catch {
    return undefined;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
