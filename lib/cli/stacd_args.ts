/**
 * stacd's command line (docs/design.md#command-line), parsed with node:util's parseArgs: the
 * same options as nvme-stas's stacd, plus --dump-config and --health.
 */
import { parseArgs } from "node:util";
import { DEFAULT_STACD_CONF } from "../config/stacd_conf.ts";

export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "idl"; file: string }
  | { kind: "dump-config"; confFile: string }
  | { kind: "health" }
  | { kind: "daemon"; confFile: string; syslog: boolean; tron: boolean };

export const USAGE = `Usage: stacd [OPTIONS...]

STorage Appliance Connector: connects this host to NVMe-oF I/O controllers
found by stafd or listed in stacd.conf, and keeps those connections right.

Options:
  -h, --help              Print this help and exit
  -v, --version           Print the program and libnvme versions and exit
  -f, --conf-file=FILE    Configuration file (default: ${DEFAULT_STACD_CONF})
  -s, --syslog            Log to syslog/journal instead of stdout
      --tron              Trace on: debug logging until the next reload
      --idl=FILE          Write the D-Bus introspection XML to FILE and exit
      --dump-config       Print the effective configuration as JSON and exit
                          (secrets redacted; needs neither root nor NVMe)
      --health            Ask the running stacd if it is alive: exit 0 if it
                          answers within 2 s, 1 otherwise (liveness probes)
`;

/** Raised for a command line stacd cannot run; the message is one line for stderr. */
export class UsageError extends Error {
  override name = "UsageError";
}

export function parseCommandLine(args: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
        "conf-file": { type: "string", short: "f" },
        syslog: { type: "boolean", short: "s" },
        tron: { type: "boolean" },
        idl: { type: "string" },
        "dump-config": { type: "boolean" },
        health: { type: "boolean" },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const v = parsed.values;
  const confFile = v["conf-file"] ?? DEFAULT_STACD_CONF;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  if (v.idl !== undefined) {
    if (v.idl === "") throw new UsageError("--idl needs a file name");
    return { kind: "idl", file: v.idl };
  }
  if (v["dump-config"]) return { kind: "dump-config", confFile };
  if (v.health) return { kind: "health" };
  return { kind: "daemon", confFile, syslog: v.syslog ?? false, tron: v.tron ?? false };
}
