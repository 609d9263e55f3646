/**
 * stacd.conf (docs/design.md#configuration-files): from what the INI reader found to a typed,
 * validated StacdConfig (lib/config/conf_file.ts reads it; the options are
 * in stacd_options.ts).
 */

import { type ConfResult, type ConfSchema, type ListConfig, parseConf } from "./conf_file.ts";
import type { GlobalConfig } from "./global_options.ts";
import { STACD_OPTIONS } from "./stacd_options.ts";
import { CONFIG_FILE_MAX_BYTES, type TextFileReader } from "./text_file.ts";

export type { ControllerEntry, ExcludeEntry } from "./controller_entry.ts";
export type { ConnectionOptions } from "./conn_options.ts";
export { holdsSecrets, redactedConfig } from "./redacted_config.ts";

/** Where stacd looks when no `--conf-file` is given. */
export const DEFAULT_STACD_CONF = "/etc/stas/stacd.conf";

/** What happens to a controller that leaves the desired set. */
export type DisconnectScope =
  | "only-stas-connections"
  | "all-connections-matching-disconnect-trtypes"
  | "no-disconnect";

/** Transports `disconnect-trtypes` may name. */
export type DisconnectTrtype = "tcp" | "rdma" | "fc";

/** The effective stacd configuration. */
export interface StacdConfig extends GlobalConfig, ListConfig {
  disconnectScope: DisconnectScope;
  disconnectTrtypes: readonly DisconnectTrtype[];
  /** 0 = never stop retrying a controller whose log page entry has NCC set. */
  connectAttemptsOnNcc: number;
}

/** A config and everything worth telling about the file it came from. */
export type StacdConfigResult = ConfResult<StacdConfig>;

/** The configuration of a host without stacd.conf. */
export function defaultStacdConfig(): StacdConfig {
  return {
    tron: false,
    ignoreIface: false,
    ipFamily: [4, 6],
    connection: { hdrDigest: false, dataDigest: false },
    disconnectScope: "only-stas-connections",
    disconnectTrtypes: ["tcp"],
    connectAttemptsOnNcc: 0,
    controllers: [],
    excluded: [],
  };
}

const STACD_SCHEMA: ConfSchema<StacdConfig> = {
  defaults: defaultStacdConfig,
  scalars: STACD_OPTIONS,
  controllers: "io",
};

/**
 * Reads `file` through `reader`; a missing file gives the defaults. Throws
 * FileReadError when the file exists but cannot be read: defaults in its
 * place would disconnect every configured controller.
 */
export function loadStacdConfig(
  reader: TextFileReader,
  file: string = DEFAULT_STACD_CONF,
): StacdConfigResult {
  return parseStacdConfig(reader.readTextFile(file, CONFIG_FILE_MAX_BYTES), file);
}

/** Validates stacd.conf's text; `undefined` text means the file does not exist. */
export function parseStacdConfig(text: string | undefined, file: string): StacdConfigResult {
  return parseConf(STACD_SCHEMA, text, file);
}
