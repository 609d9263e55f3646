/**
 * The launcher of the one program that is stacd, stafd, stacctl and
 * stafctl, chosen by the name it is invoked by (argv0), or in a checkout by
 * the first argument (`main.ts stafd -f FILE`, `main.ts stacctl ls`; `ctl`
 * is stacctl). Parses the command line and owns the exit code; everything
 * else lives in lib/.
 */
import process from "node:process";
import {
  type Command,
  type DaemonName,
  parseCommandLine,
  usage,
  UsageError,
} from "./lib/cli/daemon_args.ts";
import { fail, runDaemon, runtimeDir } from "./lib/cli/run_daemon.ts";
import { loadConfiguration, loadStafdConfiguration } from "./lib/config/load.ts";
import { redactedConfig } from "./lib/config/stacd_conf.ts";
import { checkHealth } from "./lib/daemon/health_socket.ts";
import { Libnvme } from "./lib/kernel/libnvme.ts";
import { COMPATIBLE_WITH, VERSION } from "./lib/version.ts";
import { writeIdl } from "./lib/dbus/idl.ts";
import { runStacctl } from "./lib/cli/stacctl.ts";

const PROGRAMS = ["stacd", "stafd", "stacctl", "stafctl"] as const;
type Program = typeof PROGRAMS[number];

function printVersion(daemon: DaemonName): void {
  console.log(`${daemon} ${VERSION} (${COMPATIBLE_WITH} compatible)`);
  try {
    using nvme = Libnvme.open();
    const path = nvme.layout
      ? "verified layout"
      : "unverified layout: connects use /dev/nvme-fabrics";
    console.log(`libnvme ${nvme.version} (${path})`);
  } catch (error) {
    console.log(`libnvme not found: ${(error as Error).message}`);
  }
}

function dumpConfig(daemon: DaemonName, confFile: string): void {
  const load = daemon === "stafd" ? loadStafdConfiguration : loadConfiguration;
  const { config, sys, diagnostics } = load({ confFile });
  console.log(JSON.stringify(
    {
      file: confFile,
      ...redactedConfig(config),
      host: {
        nqn: sys.hostNqn,
        id: sys.hostId ?? null,
        key: sys.hostKey ? "<redacted>" : null,
        symname: sys.hostSymname ?? null,
      },
      diagnostics,
    },
    null,
    2,
  ));
}

async function runCommand(daemon: DaemonName, args: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(args, daemon);
  } catch (error) {
    if (error instanceof UsageError) fail(daemon, `${error.message} (see --help)`, 2);
    throw error;
  }
  switch (command.kind) {
    case "help":
      console.log(usage(daemon));
      return 0;
    case "version":
      printVersion(daemon);
      return 0;
    case "dump-config":
      try {
        dumpConfig(daemon, command.confFile);
      } catch (error) {
        fail(daemon, (error as Error).message);
      }
      return 0;
    case "health":
      return await checkHealth(runtimeDir(daemon)) ? 0 : 1;
    case "idl":
      try {
        await writeIdl(command.file, daemon);
      } catch (error) {
        fail(daemon, `--idl: cannot write ${command.file}: ${(error as Error).message}`);
      }
      return 0;
    case "daemon":
      return await runDaemon(daemon, command);
  }
}

async function main(): Promise<number> {
  const invoked = process.argv0.slice(process.argv0.lastIndexOf("/") + 1);
  let args = Deno.args;
  // Invoked as stafd, stacctl or stafctl: that program. Otherwise (stacd, the
  // compiled binary, or deno running main.ts) the first argument may name one.
  let program: Program = "stacd";
  if (invoked !== "stacd" && (PROGRAMS as readonly string[]).includes(invoked)) {
    program = invoked as Program;
  } else if ((PROGRAMS as readonly string[]).includes(args[0] ?? "")) {
    program = args[0] as Program;
    args = args.slice(1);
  } else if (args[0] === "ctl") {
    program = "stacctl";
    args = args.slice(1);
  }
  switch (program) {
    case "stacctl":
      return await runStacctl(args);
    case "stafctl":
      return await runStacctl(args, undefined, "stafd");
    default:
      return await runCommand(program, args);
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}
