/**
 * stacctl and stafctl: query and control a running stacd or stafd over
 * D-Bus, with the commands of nvme-stas's tools (ls, status, tron, troff;
 * stafctl also dlp and adlp). The same program as the daemons, chosen by
 * the invoked name (main.ts). Tables for people by default, --json for
 * scripts.
 */
import { parseArgs } from "node:util";
import { DBusError } from "../dbus/bus_connection.ts";
import { type ControllerDict, StacClient } from "../dbus/stac_client.ts";
import { DISCOVERY_NQN } from "../core/connect_request.ts";
import {
  controllerBlocks,
  controllersTable,
  entriesTable,
  jsonText,
  logPagesText,
  showValue,
  statusText,
  visible,
} from "./stacctl_format.ts";
import { COMPATIBLE_WITH, VERSION } from "../version.ts";

export const STACCTL_USAGE =
  `Usage: stacctl [-h] [-v] [--json] {ls [-d|--detailed], status, tron, troff}

STorage Appliance Connector control: shows and steers a running stacd
over D-Bus (the system bus, or DBUS_SYSTEM_BUS_ADDRESS when set).

Commands:
  ls [-d|--detailed]   List the I/O controllers stacd is connected (or trying
                       to connect) to; -d adds every detail
  status               stacd's runtime status and every controller's details
  tron                 Trace on: stacd logs at debug level (root only)
  troff                Trace off (root only)

Options:
  -h, --help           Print this help and exit
  -v, --version        Print the version and exit
      --json           Print JSON (for scripts) instead of tables
`;

export const STAFCTL_USAGE =
  `Usage: stafctl [-h] [-v] [--json] {ls [-d|--detailed], status, tron, troff,
               dlp -a TRADDR -s TRSVCID [-t TRTYPE] [-w HOST_TRADDR] [-f HOST_IFACE]
                   [-q HOST_NQN] [-n NQN],
               adlp [-d|--detailed]}

STorage Appliance Finder control: shows and steers a running stafd
over D-Bus (the system bus, or DBUS_SYSTEM_BUS_ADDRESS when set).

Commands:
  ls [-d|--detailed]   List the discovery controllers stafd is connected (or
                       trying to connect) to; -d adds every detail
  status               stafd's runtime status, every discovery controller's
                       details and log page
  tron                 Trace on: stafd logs at debug level (root only)
  troff                Trace off (root only)
  dlp                  Show one discovery controller's log page entries
  adlp [-d|--detailed] Show every discovery controller's log page entries

Options:
  -h, --help           Print this help and exit
  -v, --version        Print the version and exit
      --json           Print JSON (for scripts) instead of tables
`;

/** Upstream's words when the daemon cannot be reached, kept exactly: scripts may match them. */
export const UNREACHABLE = "Unable to communicate with stacd over D-Bus. Is stacd running?";

/** What a tool talks to, and how it calls itself. */
type Daemon = "stacd" | "stafd";
const TOOL: Record<Daemon, string> = { stacd: "stacctl", stafd: "stafctl" };
const COMMANDS: Record<Daemon, string[]> = {
  stacd: ["ls", "status", "tron", "troff"],
  stafd: ["ls", "status", "tron", "troff", "dlp", "adlp"],
};

/** D-Bus errors that mean "stacd is not there", rather than "stacd said no". */
const NOT_THERE = new Set([
  "org.freedesktop.DBus.Error.ServiceUnknown",
  "org.freedesktop.DBus.Error.NameHasNoOwner",
  "org.freedesktop.DBus.Error.NoReply",
  "org.freedesktop.DBus.Error.Disconnected",
  "org.freedesktop.DBus.Error.Timeout",
  "org.freedesktop.DBus.Error.TimedOut",
  "org.freedesktop.DBus.Error.UnknownObject",
]);

/** controller_info calls in flight at once (dbus-daemon refuses more than 128 per connection). */
const BATCH = 32;

/** Where output goes and how stacd is reached; tests replace them. */
export interface StacctlIo {
  out(text: string): void;
  err(text: string): void;
  /** Bus address; default DBUS_SYSTEM_BUS_ADDRESS, else the system bus. */
  address?: string;
  /** Limit for connecting and for each call. */
  timeoutMs?: number;
}

const consoleIo: StacctlIo = { out: (t) => console.log(t), err: (t) => console.error(t) };

type Parsed =
  | { command: string; detailed: boolean; json: boolean; dc: ControllerDict }
  | { exit: number };

/** dlp's options, as upstream's stafctl names them, and the dict key each fills. */
const DLP_OPTIONS = [
  ["transport", "t", "transport"],
  ["traddr", "a", "traddr"],
  ["trsvcid", "s", "trsvcid"],
  ["host-traddr", "w", "host-traddr"],
  ["host-iface", "f", "host-iface"],
  ["host-nqn", "q", "host-nqn"],
  ["nqn", "n", "subsysnqn"],
] as const;

function parse(args: string[], io: StacctlIo, daemon: Daemon): Parsed {
  const tool = TOOL[daemon];
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
        json: { type: "boolean" },
        detailed: { type: "boolean", short: "d" },
        ...(daemon === "stafd"
          ? Object.fromEntries(
            DLP_OPTIONS.map(([name, short]) => [name, { type: "string", short } as const]),
          )
          : {}),
      },
    });
  } catch (error) {
    io.err(`${tool}: ${(error as Error).message} (see --help)`);
    return { exit: 2 };
  }
  const { values, positionals } = parsed;
  if (values.help) return io.out(daemon === "stacd" ? STACCTL_USAGE : STAFCTL_USAGE), { exit: 0 };
  if (values.version) {
    return io.out(`${tool} ${VERSION} (${COMPATIBLE_WITH} compatible)`), { exit: 0 };
  }
  const [command, ...extra] = positionals;
  const usage = (why: string) => (io.err(`${tool}: ${why} (see --help)`), { exit: 2 });
  const commands = COMMANDS[daemon];
  if (command === undefined) return usage(`a command is required: ${commands.join(", ")}`);
  if (!commands.includes(command)) return usage(`unknown command "${command}"`);
  if (extra.length > 0) return usage(`unexpected argument "${extra[0]}"`);
  if (values.detailed && command !== "ls" && command !== "adlp") {
    return usage("-d/--detailed goes with ls or adlp only");
  }
  const given = values as Record<string, unknown>;
  const dc: ControllerDict = {
    transport: "tcp",
    subsysnqn: DISCOVERY_NQN,
    "host-traddr": "",
    "host-iface": "",
  };
  for (const [name, , key] of DLP_OPTIONS) {
    if (typeof given[name] !== "string") continue;
    if (command !== "dlp") return usage(`--${name} goes with dlp only`);
    dc[key] = given[name] as string;
  }
  if (command === "dlp" && (!dc.traddr || !dc.trsvcid)) {
    return usage("dlp needs -a/--traddr and -s/--trsvcid");
  }
  if (!["tcp", "rdma", "fc", "loop"].includes(dc.transport!)) {
    return usage(`-t/--transport must be tcp, rdma, fc or loop, not "${dc.transport}"`);
  }
  return { command, detailed: values.detailed ?? false, json: values.json ?? false, dc };
}

/**
 * Runs stacctl (or stafctl, for `daemon` stafd) with `args` (without the
 * program name); resolves with the exit status.
 */
export async function runStacctl(
  args: string[],
  io: StacctlIo = consoleIo,
  daemon: Daemon = "stacd",
): Promise<number> {
  const parsed = parse(args, io, daemon);
  if ("exit" in parsed) return parsed.exit;
  const { command, detailed, json } = parsed;
  const show = (value: unknown, text: () => string) => io.out(json ? jsonText(value) : text());
  let client: StacClient | undefined;
  try {
    const c = client = await StacClient.connect({
      address: io.address,
      timeoutMs: io.timeoutMs,
      daemon,
    });
    switch (command) {
      case "ls": {
        const list = await c.listControllers(detailed);
        const noun = daemon === "stacd" ? "I/O controllers" : "discovery controllers";
        show(list, () => detailed ? controllerBlocks(list, noun) : controllersTable(list, noun));
        break;
      }
      case "status": {
        const info = await c.processInfo();
        const list = await c.listControllers(true);
        // As upstream: each controller's list_controllers(true) dict updated with its
        // controller_info. In batches: the system bus allows 128 pending calls per connection.
        const controllers: Record<string, unknown>[] = [];
        for (let i = 0; i < list.length; i += BATCH) {
          const batch = list.slice(i, i + BATCH);
          const infos = await Promise.all(batch.map((ctrl) => c.controllerInfo(ctrl)));
          // stafctl's status also shows each discovery controller's log page.
          const pages = daemon === "stafd"
            ? await Promise.all(batch.map((ctrl) => c.logPages({ ...ctrl, "host-nqn": "" })))
            : [];
          batch.forEach((ctrl, j) =>
            controllers.push({ ...ctrl, ...infos[j], ...(pages[j] ? { log_pages: pages[j] } : {}) })
          );
        }
        const status = { ...info, controllers };
        show(status, () => statusText(status, daemon));
        break;
      }
      case "dlp": {
        const entries = await c.logPages({ "host-nqn": "", ...parsed.dc });
        show(entries, () => entriesTable(entries));
        break;
      }
      case "adlp": {
        const all = await c.allLogPages(detailed);
        show(all, () => logPagesText(all));
        break;
      }
      default: {
        await c.setTron(command === "tron");
        // Read back, as upstream does: shows what stacd now has.
        const tron = await c.getTron();
        show({ tron }, () => `tron = ${showValue(tron)}`);
      }
    }
    return 0;
  } catch (error) {
    // An error's text may quote what stacd (or the bus) sent.
    io.err(visible(explain(error, command, daemon)));
    return 1;
  } finally {
    await client?.close();
  }
}

function explain(error: unknown, command: string, daemon: Daemon): string {
  const tool = TOOL[daemon];
  const unreachable = UNREACHABLE.replaceAll("stacd", daemon);
  if (!(error instanceof DBusError)) {
    // Not a D-Bus error: connecting failed (no bus, no socket), or the reply made no sense.
    const text = (error as Error)?.message ?? String(error);
    return text.startsWith("Cannot connect") ? unreachable : `${tool}: ${text}`;
  }
  if (NOT_THERE.has(error.type)) return unreachable;
  if (error.type === "org.freedesktop.DBus.Error.AccessDenied") {
    return command === "tron" || command === "troff"
      ? `${tool}: permission denied: only root may turn ${daemon}'s tracing ${
        command === "tron" ? "on" : "off"
      }`
      : `${tool}: permission denied: ${error.text}`;
  }
  return `${tool}: ${daemon} answered with an error: ${error.type}: ${error.text}`;
}
