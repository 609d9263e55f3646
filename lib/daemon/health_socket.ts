/**
 * The liveness check (docs/design.md#health-check): the daemon answers "ok" on a unix socket
 * in its runtime directory (mode 0600, root only); `stacd --health` connects
 * and expects the answer within 2 s. Costs nothing while idle: an accept
 * waiting on a socket makes no wake-ups.
 */

export const HEALTH_SOCKET = "health.sock";

export interface HealthServer {
  close(): void;
}

/** Serves the health socket until closed. `status()` gives the one-line answer. */
export async function serveHealth(runtimeDir: string, status: () => string): Promise<HealthServer> {
  const path = `${runtimeDir}/${HEALTH_SOCKET}`;
  await Deno.remove(path).catch(() => {});
  const listener = listenPrivate(path);
  (async () => {
    for await (const conn of listener) {
      conn.write(new TextEncoder().encode(`${status()}\n`))
        .catch(() => {})
        .finally(() => conn.close());
    }
  })().catch(() => {});
  return {
    close() {
      try {
        listener.close();
      } catch {
        // already closed
      }
      Deno.removeSync(path);
    },
  };
}

/**
 * A unix socket whose node is 0600 from the moment it exists: bound under
 * umask 0177 instead of chmod'ed after listen, which left a moment in which
 * anyone could connect. The umask is the process's: set and restored
 * around the one synchronous bind, and at worst it makes a file another
 * thread creates meanwhile more private, never less.
 */
export function listenPrivate(path: string): Deno.UnixListener {
  const old = Deno.umask(0o177);
  try {
    return Deno.listen({ transport: "unix", path });
  } finally {
    Deno.umask(old);
  }
}

/** Asks the running daemon; resolves true when it answered "ok..." within `timeoutMs`. */
export async function checkHealth(runtimeDir: string, timeoutMs = 2_000): Promise<boolean> {
  const path = `${runtimeDir}/${HEALTH_SOCKET}`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) =>
    timer = setTimeout(() => resolve(false), timeoutMs)
  );
  const ask = (async () => {
    try {
      const conn = await Deno.connect({ transport: "unix", path });
      try {
        const buffer = new Uint8Array(256);
        const n = await conn.read(buffer);
        return new TextDecoder().decode(buffer.subarray(0, n ?? 0)).startsWith("ok");
      } finally {
        conn.close();
      }
    } catch {
      return false;
    }
  })();
  try {
    return await Promise.race([ask, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
