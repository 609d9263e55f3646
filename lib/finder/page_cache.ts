/**
 * The finder's page cache (docs/design.md#the-finder): the DCs it manages and their last log
 * pages, saved whenever they change and at stop, so that a restarted stafd
 * serves the pages at once (as upstream's last-known config does) instead
 * of answering "nothing" until every DC is read again: stacd would take
 * that for an empty answer. Versioned JSON in the runtime directory, mode
 * 0600 (lib/daemon/last_known_store.ts writes it). Holds no secret: only
 * identities and log page entries.
 */
import type { Origin } from "../core/desired_set.ts";
import { DISCOVERY_ENTRY_KEYS, type DiscoveryLogEntry } from "../core/discovery_log.ts";
import { printableTid, TID_FIELDS, tidKey, type TransportId } from "../core/transport_id.ts";

const VERSION = 1;
const ORIGINS: readonly Origin[] = ["configured", "referral", "discovered"];
/** Bounds on a cache someone else may have written into the runtime directory. */
const MAX_DCS = 1024;
const MAX_ENTRIES = 4096;
const MAX_TEXT = 1024;

export interface PageCacheEntry {
  key: string;
  id: string;
  tid: TransportId;
  origin: Origin;
  entries: readonly DiscoveryLogEntry[];
}

export function encodePageCache(dcs: readonly PageCacheEntry[]): string {
  return JSON.stringify({
    version: VERSION,
    dcs: dcs.map((dc) => ({
      ...Object.fromEntries(TID_FIELDS.map((f) => [f, dc.tid[f]])),
      origin: dc.origin,
      entries: dc.entries.map((e) =>
        Object.fromEntries(DISCOVERY_ENTRY_KEYS.map((f) => [f, e[f]]))
      ),
    })),
  }) + "\n";
}

/** Parses a saved cache; anything malformed is dropped (and counted), never thrown. */
export function decodePageCache(text: string): { entries: PageCacheEntry[]; dropped: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { entries: [], dropped: 1 };
  }
  const list = (doc as { dcs?: unknown })?.dcs;
  if ((doc as { version?: unknown })?.version !== VERSION || !Array.isArray(list)) {
    return { entries: [], dropped: 1 };
  }
  const entries: PageCacheEntry[] = [];
  let dropped = Math.max(0, list.length - MAX_DCS);
  for (const item of list.slice(0, MAX_DCS) as unknown[]) {
    const dc = readDc(item);
    if (dc) entries.push(dc);
    else dropped++;
  }
  return { entries, dropped };
}

function readDc(item: unknown): PageCacheEntry | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const record = item as Record<string, unknown>;
  if (!TID_FIELDS.every((f) => isText(record[f]))) return undefined;
  if (!ORIGINS.includes(record.origin as Origin)) return undefined;
  const list = record.entries;
  if (!Array.isArray(list) || list.length > MAX_ENTRIES) return undefined;
  const entries: DiscoveryLogEntry[] = [];
  for (const raw of list as unknown[]) {
    const e = raw as Record<string, unknown>;
    if (
      typeof raw !== "object" || raw === null || !DISCOVERY_ENTRY_KEYS.every((f) => isText(e[f]))
    ) {
      return undefined;
    }
    entries.push(
      Object.fromEntries(
        DISCOVERY_ENTRY_KEYS.map((f) => [f, e[f]]),
      ) as unknown as DiscoveryLogEntry,
    );
  }
  const tid = Object.fromEntries(TID_FIELDS.map((f) => [f, record[f]])) as unknown as TransportId;
  return { key: tidKey(tid), id: printableTid(tid), tid, origin: record.origin as Origin, entries };
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function isText(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_TEXT && !CONTROL.test(value);
}
