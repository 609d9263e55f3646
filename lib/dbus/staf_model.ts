/**
 * What the D-Bus service shows of stafd (docs/design.md#stafd-on-d-bus), formatted as
 * nvme-stas 2.4.1's stafd formats it from the finder's snapshot: discovery
 * controller dicts (list_controllers, and each page's "discovery-controller"),
 * log page entries (get_log_pages, get_all_log_pages) in upstream's key
 * order, controller_info and process_info. Only public fields are copied:
 * upstream also showed a controller line's extra keys (dhchap-secret
 * included); no dict built here can hold a key.
 */
import type { Clock } from "../clock.ts";
import { DISCOVERY_ENTRY_KEYS, type DiscoveryLogEntry } from "../core/discovery_log.ts";
import { runningTimerText } from "../core/timer_text.ts";
import { makeTid, tidKey } from "../core/transport_id.ts";
import type { DcSnapshot, FinderSnapshot } from "../finder/finder.ts";
import type { ControllerQuery } from "./model.ts";
import { pyJson } from "./py_json.ts";
import {
  type CommonModel,
  hostProcessInfo,
  kernelSupportInfo,
  pyBool,
  SHOWN_ATTRIBUTES,
} from "./common_handlers.ts";

/** What stafd publishes for its D-Bus service. */
export interface StafdStatus {
  tron: boolean;
  host: { hostNqn: string; hostId?: string; hasHostKey: boolean; symname?: string };
  ignoreIface: boolean;
  finder: FinderSnapshot;
}

/** Everything org.nvmexpress.staf and org.nvmexpress.staf.debug expose. */
export interface StafModel extends CommonModel {
  /** get_log_pages(...): the entries of that DC; [] when unknown, as upstream. */
  logPages(query: ControllerQuery): Record<string, string>[];
  /** get_all_log_pages(detailed): the JSON text. */
  allLogPages(detailed: boolean): string;
}

export interface StafModelOptions {
  status: () => StafdStatus;
  setTron: (on: boolean) => void;
  clock: Clock;
  cacheFile: string;
  kernelOptions: ReadonlySet<string> | undefined;
}

/** A log page entry as upstream's stafd passes it on. */
export function entryDict(e: DiscoveryLogEntry): Record<string, string> {
  return Object.fromEntries(DISCOVERY_ENTRY_KEYS.map((k) => [k, e[k]]));
}

/** A page's entries as JSON text, kept while the page is (pages are frozen, replaced whole). */
const pageText = new WeakMap<readonly DiscoveryLogEntry[], string>();

function entriesJson(entries: readonly DiscoveryLogEntry[] | undefined): string {
  if (entries === undefined) return "[]";
  let text = pageText.get(entries);
  if (text === undefined) pageText.set(entries, text = pyJson(entries.map(entryDict)));
  return text;
}

export function createStafModel(options: StafModelOptions): StafModel {
  const { status, clock } = options;

  const idDict = (dc: DcSnapshot): Record<string, string> => ({
    traddr: dc.tid.traddr,
    trsvcid: dc.tid.trsvcid,
    transport: dc.tid.transport,
    subsysnqn: dc.tid.subsysnqn,
    "host-iface": dc.tid.hostIface,
    "host-traddr": dc.tid.hostTraddr,
    "host-nqn": dc.tid.hostNqn,
    device: dc.device ?? "nvme?",
  });

  const info = (dc: DcSnapshot): Record<string, string> => ({
    ...idDict(dc),
    "connect attempts": String(dc.attempts),
    "retry connect timer": runningTimerText(dc.retry, dc.lastDelayMs, clock.now()),
    origin: dc.origin,
    "log page entries": !dc.known ? "unknown" : String(dc.entries?.length ?? 0),
    "log page failures": String(dc.fetchFailures),
  });

  const details = (dc: DcSnapshot): Record<string, string> => ({
    ...info(dc),
    ...Object.fromEntries(SHOWN_ATTRIBUTES.map((a) => [a, dc.kernel?.[a] ?? ""])),
    connected: pyBool(dc.phase === "connected"),
  });

  const find = (query: ControllerQuery): DcSnapshot | undefined => {
    const s = status();
    const key = tidKey(makeTid(query, { hostNqn: s.host.hostNqn, ignoreIface: s.ignoreIface }));
    return s.finder.dcs.find((dc) => dc.key === key);
  };

  return {
    get tron() {
      return status().tron;
    },
    set tron(value: boolean) {
      options.setTron(value);
    },
    processInfo() {
      return {
        ...hostProcessInfo(status(), options.cacheFile),
        ...kernelSupportInfo(options.kernelOptions),
      };
    },
    listControllers(detailed) {
      return status().finder.dcs.map((dc) => detailed ? details(dc) : idDict(dc));
    },
    logPages(query) {
      return (find(query)?.entries ?? []).map(entryDict);
    },
    allLogPages(detailed) {
      // As pyJson would write the list of {"discovery-controller", "log-pages"}
      // objects; each page's text is made once per page read (entriesJson).
      const pages = status().finder.dcs.map((dc) =>
        `{"discovery-controller": ${pyJson(detailed ? details(dc) : idDict(dc))}, ` +
        `"log-pages": ${entriesJson(dc.entries)}}`
      );
      return `[${pages.join(", ")}]`;
    },
    controllerInfo(query) {
      const dc = find(query);
      return dc ? info(dc) : undefined;
    },
  };
}
