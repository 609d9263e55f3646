/**
 * The last-known config (docs/design.md#last-known-config): the controllers stacd manages, saved
 * on every change of the set and at stop, so that a restarted stacd keeps
 * managing (and may later disconnect) the connections it made. Versioned
 * JSON, written atomically (temp file + rename), mode 0600. Holds no secret.
 */
import type { ManagedOrigin } from "../core/managed_controller.ts";
import { TID_FIELDS, type TransportId } from "../core/transport_id.ts";

export const LAST_KNOWN_FILE = "last-known-config";
const VERSION = 1;

export interface LastKnownEntry {
  tid: TransportId;
  origin: ManagedOrigin;
  device?: string;
}

/** Serialises entries; only identity, origin and device: never a key. */
export function encodeLastKnown(entries: readonly LastKnownEntry[]): string {
  return JSON.stringify(
    {
      version: VERSION,
      controllers: entries.map((e) => ({
        ...Object.fromEntries(TID_FIELDS.map((f) => [f, e.tid[f]])),
        origin: e.origin,
        device: e.device ?? "",
      })),
    },
    null,
    1,
  ) + "\n";
}

/** Parses a saved file; anything malformed is dropped (and counted), never thrown. */
export function decodeLastKnown(text: string): { entries: LastKnownEntry[]; dropped: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { entries: [], dropped: 1 };
  }
  const list = (doc as { version?: unknown; controllers?: unknown })?.controllers;
  if ((doc as { version?: unknown })?.version !== VERSION || !Array.isArray(list)) {
    return { entries: [], dropped: 1 };
  }
  const entries: LastKnownEntry[] = [];
  let dropped = 0;
  for (const item of list as unknown[]) {
    const record = item as Record<string, unknown>;
    const valid = typeof item === "object" && item !== null &&
      TID_FIELDS.every((f) => typeof record[f] === "string") &&
      ["configured", "discovered", "audited"].includes(record.origin as string);
    if (!valid) {
      dropped++;
      continue;
    }
    const tid = Object.fromEntries(
      TID_FIELDS.map((f) => [f, record[f] as string]),
    ) as unknown as TransportId;
    const device = typeof record.device === "string" && record.device ? record.device : undefined;
    entries.push({ tid, origin: record.origin as ManagedOrigin, device });
  }
  return { entries, dropped };
}

/** Where the file lives and how it is written: behind an interface for tests. */
export interface LastKnownStore {
  readonly path: string;
  load(): Promise<string | undefined>;
  save(text: string): Promise<void>;
}

/**
 * The file in `runtimeDir`, created 0700 when missing (outside systemd nobody
 * else does). Its calls are synchronous on purpose: the runtime directory is
 * a tmpfs where they take microseconds, and an async call would hand the
 * event loop to other start-up work between recording a pass and starting
 * its connects.
 */
export function fileStore(runtimeDir: string, name: string = LAST_KNOWN_FILE): LastKnownStore {
  const path = `${runtimeDir}/${name}`;
  return {
    path,
    load() {
      try {
        return Promise.resolve(Deno.readTextFileSync(path));
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return Promise.resolve(undefined);
        return Promise.reject(error);
      }
    },
    save(text) {
      const temp = `${path}.${Deno.pid}.tmp`;
      try {
        Deno.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
        // Created new (O_EXCL), never opened through whatever is there: a
        // symlink planted in its place must not make stacd write its target.
        // What a crash left behind (stacd is often PID 1 in a container) goes first.
        removeIfThere(temp);
        using file = Deno.openSync(temp, { write: true, createNew: true, mode: 0o600 });
        const bytes = new TextEncoder().encode(text);
        for (let n = 0; n < bytes.length;) n += file.writeSync(bytes.subarray(n));
        Deno.renameSync(temp, path);
        return Promise.resolve();
      } catch (error) {
        try {
          Deno.removeSync(temp);
        } catch {
          // never created
        }
        return Promise.reject(error);
      }
    },
  };
}

/** unlink(2), which removes a symlink itself; nothing there is fine. */
function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
