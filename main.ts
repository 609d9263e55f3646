/**
 * stacd's launcher: parses the command line, checks the preconditions,
 * builds the components, maps signals, owns the exit code. Everything else
 * lives in lib/.
 */
import process from "node:process";
import { type Command, parseCommandLine, USAGE, UsageError } from "./lib/cli/stacd_args.ts";
import { type App, hasBootConnections, startApp } from "./lib/daemon/app.ts";
import { HostNqnError } from "./lib/config/sys_conf.ts";
import { FileReadError } from "./lib/config/text_file.ts";
import { redactedConfig } from "./lib/config/stacd_conf.ts";
import { loadConfiguration } from "./lib/config/load.ts";
import { checkHealth } from "./lib/daemon/health_socket.ts";
import { acquireInstanceLock, AlreadyRunningError } from "./lib/daemon/instance_lock.ts";
import { Libnvme } from "./lib/kernel/libnvme.ts";
import { RealKernel } from "./lib/kernel/real_kernel.ts";
import { createLogger, stdoutSink, syslogSink } from "./lib/logger.ts";
import { prepareRuntimeDir, UntrustedRuntimeDirError } from "./lib/daemon/runtime_dir.ts";
import { UdevMonitor } from "./lib/kernel/udev_monitor.ts";
import { COMPATIBLE_WITH, VERSION } from "./lib/version.ts";
import { FABRICS_DEVICE } from "./lib/kernel/fabrics_device.ts";
import { writeIdl } from "./lib/dbus/idl.ts";
import { runStacctl } from "./lib/cli/stacctl.ts";

/** $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=) or /run/stacd. */
function runtimeDir(): string {
  return Deno.env.get("RUNTIME_DIRECTORY")?.split(":")[0] || "/run/stacd";
}

function fail(message: string, code = 1): never {
  console.error(`stacd: ${message}`);
  Deno.exit(code);
}

function printVersion(): void {
  console.log(`stacd ${VERSION} (${COMPATIBLE_WITH} compatible)`);
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

function dumpConfig(confFile: string): void {
  const { config, sys, diagnostics } = loadConfiguration({ confFile });
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

async function runDaemon(command: Extract<Command, { kind: "daemon" }>): Promise<number> {
  if (Deno.uid() !== 0) fail("must run as root");
  try {
    Deno.statSync(FABRICS_DEVICE);
  } catch {
    fail(`${FABRICS_DEVICE} not found: load the nvme-fabrics and nvme-tcp modules`);
  }
  const dir = runtimeDir();
  let lock;
  try {
    prepareRuntimeDir(dir);
    lock = acquireInstanceLock(dir);
  } catch (error) {
    const known = error instanceof AlreadyRunningError || error instanceof UntrustedRuntimeDirError;
    fail(known ? error.message : `cannot lock ${dir}: ${error}`);
  }
  const log = createLogger(
    command.syslog && !Deno.env.get("JOURNAL_STREAM") ? syslogSink() : stdoutSink(),
    {
      tron: command.tron,
    },
  );
  let nvme: Libnvme;
  let udev: UdevMonitor;
  try {
    nvme = Libnvme.open();
    udev = UdevMonitor.open();
  } catch (error) {
    fail((error as Error).message);
  }
  // Signals are taken from the start: SIGHUP's default action would kill a
  // stacd still starting up. A reload asked for then is done once it runs.
  const stopped = Promise.withResolvers<void>();
  let app: App | undefined;
  let reloadAsked = false;
  Deno.addSignalListener("SIGTERM", stopped.resolve);
  Deno.addSignalListener("SIGINT", stopped.resolve);
  Deno.addSignalListener("SIGHUP", () => {
    // Daemon.reload() keeps the running configuration on errors; this is the
    // last guard: an exception in a signal listener would end stacd.
    try {
      app ? app.reload() : reloadAsked = true;
    } catch (error) {
      log.error(`Reload failed: ${(error as Error).message}`);
    }
  });
  try {
    const kernel = new RealKernel(nvme, { warn: (message) => log.warning(message) });
    if (kernel.connectPath === "fabrics-device") {
      log.warning(
        `libnvme ${nvme.version}: struct layout not verified; connecting through ${FABRICS_DEVICE}`,
      );
    }
    app = await startApp({
      confFile: command.confFile,
      tron: command.tron,
      runtimeDir: dir,
      log,
      kernel,
      udev,
      describe: `libnvme ${nvme.version}, udev source: ${udev.source}`,
      kernelSupport: kernel.support(),
      bootConnections: hasBootConnections(),
    });
  } catch (error) {
    // Nothing is connected or disconnected yet: a host that cannot tell its
    // identity or read its configuration stops here, with the reason.
    if (error instanceof HostNqnError || error instanceof FileReadError) fail(error.message);
    throw error;
  }
  if (reloadAsked) app.reload();

  await stopped.promise;
  log.info("Stopping stacd (connections are kept)");
  await app.stop();
  lock.release();
  nvme.close();
  return 0;
}

async function main(): Promise<number> {
  const name = process.argv0.slice(process.argv0.lastIndexOf("/") + 1);
  if (name === "stacctl") return await runStacctl(Deno.args);
  if (Deno.args[0] === "ctl") return await runStacctl(Deno.args.slice(1));
  let command: Command;
  try {
    command = parseCommandLine(Deno.args);
  } catch (error) {
    if (error instanceof UsageError) fail(`${error.message} (see --help)`, 2);
    throw error;
  }
  switch (command.kind) {
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      printVersion();
      return 0;
    case "dump-config":
      try {
        dumpConfig(command.confFile);
      } catch (error) {
        fail((error as Error).message);
      }
      return 0;
    case "health":
      return await checkHealth(runtimeDir()) ? 0 : 1;
    case "idl":
      try {
        await writeIdl(command.file);
      } catch (error) {
        fail(`--idl: cannot write ${command.file}: ${(error as Error).message}`);
      }
      return 0;
    case "daemon":
      return await runDaemon(command);
  }
  return 1;
}

if (import.meta.main) {
  Deno.exit(await main());
}
