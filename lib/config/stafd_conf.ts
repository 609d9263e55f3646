/**
 * stafd.conf (docs/design.md#stafdconf), read as nvme-stas 2.4.1's stafd reads it: [Global]
 * (stacd.conf's options and pleo), [Service Discovery] zeroconf,
 * [Discovery controller connection management] persistent-connections and
 * zeroconf-connections-persistence, and [Controllers] naming discovery
 * controllers (the NQN defaults to the well-known discovery NQN). Same
 * dialect, validation and messages as stacd.conf (lib/config/conf_file.ts).
 */

import { booleanSpec, type OptionSpec } from "./conn_options.ts";
import {
  type ConfResult,
  type ConfSchema,
  type ListConfig,
  oneOf,
  parseConf,
  scalar,
  type ScalarOption,
  type ScalarOptions,
} from "./conf_file.ts";
import { parseDuration } from "./duration.ts";
import { type GlobalConfig, globalOptions } from "./global_options.ts";
import { CONFIG_FILE_MAX_BYTES, type TextFileReader } from "./text_file.ts";

/** Where stafd looks when no `-f` is given. */
export const DEFAULT_STAFD_CONF = "/etc/stas/stafd.conf";

/** The effective stafd configuration. */
export interface StafdConfig extends GlobalConfig, ListConfig {
  /** Ask a direct discovery controller for Port Local Entries Only (when it supports it). */
  pleo: boolean;
  /** DNS-SD/mDNS discovery of discovery controllers. */
  zeroconf: boolean;
  /** Whether DC connections outlive stafd (false: disconnected when stafd stops). */
  persistentConnections: boolean;
  /** Seconds a DC found by mDNS and then lost is kept; -1 for ever. */
  zeroconfPersistenceSec: number;
}

export type StafdConfigResult = ConfResult<StafdConfig>;

/** The configuration of a host without stafd.conf. */
export function defaultStafdConfig(): StafdConfig {
  return {
    tron: false,
    ignoreIface: false,
    ipFamily: [4, 6],
    // A discovery controller's keep-alive: the kernel's default for one is 0
    // (none), upstream's stafd asks for 30 s so that a lost DC is noticed.
    connection: { hdrDigest: false, dataDigest: false, kato: 30 },
    pleo: true,
    zeroconf: true,
    persistentConnections: true,
    zeroconfPersistenceSec: 72 * 3600,
    controllers: [],
    excluded: [],
  };
}

/** Both places persistent-connections may be given, until they are merged. */
interface Legacy {
  legacyPersistent?: boolean;
  sectionPersistent?: boolean;
}

type Read = StafdConfig & Legacy;

const enabledSpec = oneOf(new Map([["enabled", true], ["disabled", false]]));
const durationSpec: OptionSpec<number> = {
  parse: (text) => {
    const seconds = parseDuration(text);
    return seconds !== undefined && seconds >= -1 ? seconds : undefined;
  },
  expected: `-1, 0, seconds or a time span such as "3 days 5 hours"`,
};

/**
 * Upstream's older place for persistent-connections, still read: where
 * both are given, either one true makes the connections persistent.
 */
const legacyPersistent: ScalarOption<Read> = {
  expected: booleanSpec.expected,
  apply(config, text, note) {
    const value = booleanSpec.parse(text);
    if (value === undefined) return false;
    note(
      "info",
      "deprecated here; read as [Discovery controller connection management] persistent-connections",
    );
    config.legacyPersistent = value;
    return true;
  },
};

/** stafd.conf's sections and their single-valued options. */
const STAFD_OPTIONS: ScalarOptions<Read> = new Map([
  [
    "Global",
    new Map<string, ScalarOption<Read>>([
      ...globalOptions<Read>(),
      ["pleo", scalar(enabledSpec, (c, v) => c.pleo = v)],
      ["persistent-connections", legacyPersistent],
    ]),
  ],
  ["Service Discovery", new Map([["zeroconf", scalar(enabledSpec, (c, v) => c.zeroconf = v)]])],
  [
    "Discovery controller connection management",
    new Map([
      ["persistent-connections", scalar(booleanSpec, (c, v) => c.sectionPersistent = v)],
      [
        "zeroconf-connections-persistence",
        scalar(durationSpec, (c, v) => c.zeroconfPersistenceSec = v),
      ],
    ]),
  ],
]);

const STAFD_SCHEMA: ConfSchema<Read> = {
  defaults: defaultStafdConfig,
  scalars: STAFD_OPTIONS,
  controllers: "discovery",
};

/** Validates stafd.conf's text; `undefined` text means the file does not exist. */
export function parseStafdConfig(text: string | undefined, file: string): StafdConfigResult {
  const { config, diagnostics } = parseConf(STAFD_SCHEMA, text, file);
  const { legacyPersistent, sectionPersistent, ...rest } = config;
  if (legacyPersistent !== undefined || sectionPersistent !== undefined) {
    rest.persistentConnections = Boolean(sectionPersistent || legacyPersistent);
  }
  return { config: rest, diagnostics };
}

/**
 * Reads `file` through `reader`; a missing file gives the defaults. Throws
 * FileReadError when the file exists but cannot be read.
 */
export function loadStafdConfig(
  reader: TextFileReader,
  file: string = DEFAULT_STAFD_CONF,
): StafdConfigResult {
  return parseStafdConfig(reader.readTextFile(file, CONFIG_FILE_MAX_BYTES), file);
}
