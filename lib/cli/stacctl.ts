/**
 * stacctl: queries and controls a running stacd over D-Bus, with the
 * commands of nvme-stas's stacctl (ls, status, tron, troff). The same
 * program as stacd, chosen by the invoked name (main.ts). Tables for people
 * by default, --json for scripts.
 */
import { parseArgs } from "node:util";
import { DBusError } from "../dbus/bus_connection.ts";
import { StacClient } from "../dbus/stac_client.ts";
import {
  controllerBlocks,
  controllersTable,
  jsonText,
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

/** Upstream's words when stacd cannot be reached, kept exactly: scripts may match them. */
export const UNREACHABLE = "Unable to communicate with stacd over D-Bus. Is stacd running?";

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

type Parsed = { command: string; detailed: boolean; json: boolean } | { exit: number };

function parse(args: string[], io: StacctlIo): Parsed {
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
      },
    });
  } catch (error) {
    io.err(`stacctl: ${(error as Error).message} (see --help)`);
    return { exit: 2 };
  }
  const { values, positionals } = parsed;
  if (values.help) return io.out(STACCTL_USAGE), { exit: 0 };
  if (values.version) {
    return io.out(`stacctl ${VERSION} (${COMPATIBLE_WITH} compatible)`), { exit: 0 };
  }
  const [command, ...extra] = positionals;
  const usage = (why: string) => (io.err(`stacctl: ${why} (see --help)`), { exit: 2 });
  if (command === undefined) return usage("a command is required: ls, status, tron or troff");
  if (!["ls", "status", "tron", "troff"].includes(command)) {
    return usage(`unknown command "${command}"`);
  }
  if (extra.length > 0) return usage(`unexpected argument "${extra[0]}"`);
  if (values.detailed && command !== "ls") return usage("-d/--detailed goes with ls only");
  return { command, detailed: values.detailed ?? false, json: values.json ?? false };
}

/** Runs stacctl with `args` (without the program name); resolves with the exit status. */
export async function runStacctl(args: string[], io: StacctlIo = consoleIo): Promise<number> {
  const parsed = parse(args, io);
  if ("exit" in parsed) return parsed.exit;
  const { command, detailed, json } = parsed;
  const show = (value: unknown, text: () => string) => io.out(json ? jsonText(value) : text());
  let client: StacClient | undefined;
  try {
    const c = client = await StacClient.connect({ address: io.address, timeoutMs: io.timeoutMs });
    switch (command) {
      case "ls": {
        const list = await c.listControllers(detailed);
        show(list, () => detailed ? controllerBlocks(list) : controllersTable(list));
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
          batch.forEach((ctrl, j) => controllers.push({ ...ctrl, ...infos[j] }));
        }
        const status = { ...info, controllers };
        show(status, () => statusText(status));
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
    io.err(visible(explain(error, command)));
    return 1;
  } finally {
    await client?.close();
  }
}

function explain(error: unknown, command: string): string {
  if (!(error instanceof DBusError)) {
    // Not a D-Bus error: connecting failed (no bus, no socket), or the reply made no sense.
    const text = (error as Error)?.message ?? String(error);
    return text.startsWith("Cannot connect") ? UNREACHABLE : `stacctl: ${text}`;
  }
  if (NOT_THERE.has(error.type)) return UNREACHABLE;
  if (error.type === "org.freedesktop.DBus.Error.AccessDenied") {
    return command === "tron" || command === "troff"
      ? `stacctl: permission denied: only root may turn stacd's tracing ${
        command === "tron" ? "on" : "off"
      }`
      : `stacctl: permission denied: ${error.text}`;
  }
  return `stacctl: stacd answered with an error: ${error.type}: ${error.text}`;
}
