/**
 * The effective configuration as `--dump-config` shows it: plain JSON in the
 * file's own option names, `null` for "kernel default", and no secret.
 */

import { CONNECTION_OPTIONS, type ConnectionOptions } from "./conn_options.ts";
import type { ControllerEntry } from "./controller_entry.ts";
import { mayHoldSecret, REDACTED } from "./diagnostics.ts";
import type { ListConfig } from "./conf_file.ts";
import type { GlobalConfig } from "./global_options.ts";
import type { StacdConfig } from "./stacd_conf.ts";
import type { StafdConfig } from "./stafd_conf.ts";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `config` as JSON-able data with every DH-HMAC-CHAP key replaced by "<redacted>". */
export function redactedConfig(config: StacdConfig | StafdConfig): { [key: string]: Json } {
  const sections: { [key: string]: Json } = "disconnectScope" in config
    ? {
      "I/O controller connection management": {
        "disconnect-scope": config.disconnectScope,
        "disconnect-trtypes": config.disconnectTrtypes.join("+"),
        "connect-attempts-on-ncc": config.connectAttemptsOnNcc,
      },
    }
    : {
      "Service Discovery": { zeroconf: config.zeroconf ? "enabled" : "disabled" },
      "Discovery controller connection management": {
        "persistent-connections": config.persistentConnections,
        "zeroconf-connections-persistence": config.zeroconfPersistenceSec,
      },
    };
  return {
    Global: {
      tron: config.tron,
      "ignore-iface": config.ignoreIface,
      "ip-family": config.ipFamily.map((f) => `ipv${f}`).join("+"),
      ...connectionJson(config.connection, true),
      ...("pleo" in config ? { pleo: config.pleo ? "enabled" : "disabled" } : {}),
    },
    ...sections,
    Controllers: {
      controller: config.controllers.map(controllerJson),
      exclude: config.excluded.map(({ line, match, invalid }) => ({
        line,
        ...fileFields(match),
        ...(invalid === undefined ? {} : { invalid }),
      })),
    },
  };
}

/** Whether any controller entry carries a key (then the file must not be readable by others). */
export function holdsSecrets(config: GlobalConfig & ListConfig): boolean {
  return config.controllers.some((c) =>
    c.dhchapSecret !== undefined || c.dhchapCtrlSecret !== undefined
  );
}

function controllerJson(entry: ControllerEntry): Json {
  const secrets: { [key: string]: Json } = {};
  if (entry.dhchapSecret !== undefined) secrets["dhchap-secret"] = REDACTED;
  if (entry.dhchapCtrlSecret !== undefined) secrets["dhchap-ctrl-secret"] = REDACTED;
  return {
    line: entry.line,
    ...fileFields(entry.fields),
    ...secrets,
    ...connectionJson(entry.options, false),
    ...(entry.invalid === undefined ? {} : { invalid: entry.invalid }),
  };
}

/** Options by their file names; unset ones as null (global) or left out (overrides). */
function connectionJson(options: ConnectionOptions, withNulls: boolean): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const [name, spec] of CONNECTION_OPTIONS) {
    const value = options[spec.field];
    if (value !== undefined) out[name] = value;
    else if (withNulls) out[name] = null;
  }
  return out;
}

/** Identity fields under the names the file uses for them. */
const FILE_NAMES = new Map([
  ["subsysnqn", "nqn"],
  ["hostTraddr", "host-traddr"],
  ["hostIface", "host-iface"],
  ["hostNqn", "host-nqn"],
]);

function fileFields(record: { [key: string]: string | undefined }): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(record)) {
    // A key that ended up in the wrong field is still a key.
    if (value !== undefined) {
      out[FILE_NAMES.get(key) ?? key] = mayHoldSecret(value) ? REDACTED : value;
    }
  }
  return out;
}
