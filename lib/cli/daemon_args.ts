/**
 * The daemons' command line (docs/design.md#command-line), parsed with node:util's parseArgs:
 * the same options as nvme-stas's stacd and stafd, plus --dump-config and
 * --health. The two daemons differ only in their configuration file and
 * their words.
 */
import { parseArgs } from "node:util";
import { DEFAULT_STACD_CONF } from "../config/stacd_conf.ts";
import { DEFAULT_STAFD_CONF } from "../config/stafd_conf.ts";

/** The program's daemons. */
export type DaemonName = "stacd" | "stafd";

export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "idl"; file: string }
  | { kind: "dump-config"; confFile: string }
  | { kind: "health" }
  | {
    kind: "daemon";
    confFile: string;
    syslog: boolean;
    tron: boolean;
    /** stacd only: run the finder in this process, with this stafd.conf (the one-process mode). */
    finderConf?: string;
  };

const ABOUT: Record<DaemonName, { conf: string; about: string }> = {
  stacd: {
    conf: DEFAULT_STACD_CONF,
    about: `STorage Appliance Connector: connects this host to NVMe-oF I/O controllers
found by stafd or listed in stacd.conf, and keeps those connections right.`,
  },
  stafd: {
    conf: DEFAULT_STAFD_CONF,
    about: `STorage Appliance Finder: connects this host to NVMe-oF discovery controllers
listed in stafd.conf or referred to by them, reads their discovery log pages
and serves them to stacd over D-Bus.`,
  },
};

/** The --help text of `daemon`. */
export function usage(daemon: DaemonName): string {
  const { conf, about } = ABOUT[daemon];
  return `Usage: ${daemon} [OPTIONS...]

${about}

Options:
  -h, --help              Print this help and exit
  -v, --version           Print the program and libnvme versions and exit
  -f, --conf-file=FILE    Configuration file (default: ${conf})
  -s, --syslog            Log to syslog/journal instead of stdout
      --tron              Trace on: debug logging until the next reload
      --idl=FILE          Write the D-Bus introspection XML to FILE and exit
      --dump-config       Print the effective configuration as JSON and exit
                          (secrets redacted; needs neither root nor NVMe)
      --health            Ask the running ${daemon} if it is alive: exit 0 if it
                          answers within 2 s, 1 otherwise (liveness probes)
${daemon === "stacd" ? ONE_PROCESS : ""}`;
}

const ONE_PROCESS =
  `      --finder            Run stafd's finder in this process and connect what it
                          discovers (one process, no D-Bus needed: containers)
      --stafd-conf=FILE   The finder's configuration (default: ${DEFAULT_STAFD_CONF})
`;

/** Raised for a command line the daemon cannot run; the message is one line for stderr. */
export class UsageError extends Error {
  override name = "UsageError";
}

export function parseCommandLine(args: string[], daemon: DaemonName = "stacd"): Command {
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
        ...(daemon === "stacd"
          ? { finder: { type: "boolean" }, "stafd-conf": { type: "string" } } as const
          : {}),
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const v = parsed.values;
  const confFile = v["conf-file"] ?? ABOUT[daemon].conf;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  if (v.idl !== undefined) {
    if (v.idl === "") throw new UsageError("--idl needs a file name");
    return { kind: "idl", file: v.idl };
  }
  if (v["dump-config"]) return { kind: "dump-config", confFile };
  if (v.health) return { kind: "health" };
  const finder = v as { finder?: boolean; "stafd-conf"?: string };
  if (finder["stafd-conf"] !== undefined && !finder.finder) {
    throw new UsageError("--stafd-conf is for --finder");
  }
  return {
    kind: "daemon",
    confFile,
    syslog: v.syslog ?? false,
    tron: v.tron ?? false,
    ...(finder.finder ? { finderConf: finder["stafd-conf"] ?? DEFAULT_STAFD_CONF } : {}),
  };
}
