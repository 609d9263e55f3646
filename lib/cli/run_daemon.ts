/**
 * Running a daemon, stacd or stafd (docs/design.md#command-line): the
 * preconditions (root, /dev/nvme-fabrics, a trusted runtime directory and
 * its instance lock), the logger, libnvme and udev, the signals, and the
 * exit code. What runs is lib/daemon/app.ts (stacd, with the finder inside
 * in the one-process mode) or lib/finder/stafd_app.ts (stafd).
 */
import { HostNqnError } from "../config/sys_conf.ts";
import { FileReadError } from "../config/text_file.ts";
import { hasBootConnections, startApp } from "../daemon/app.ts";
import { acquireInstanceLock, AlreadyRunningError } from "../daemon/instance_lock.ts";
import { prepareRuntimeDir, UntrustedRuntimeDirError } from "../daemon/runtime_dir.ts";
import { startStafdApp } from "../finder/stafd_app.ts";
import { FABRICS_DEVICE } from "../kernel/fabrics_device.ts";
import { Libnvme } from "../kernel/libnvme.ts";
import { RealKernel } from "../kernel/real_kernel.ts";
import { UdevMonitor } from "../kernel/udev_monitor.ts";
import { createLogger, stdoutSink, syslogSink } from "../logger.ts";
import type { Command, DaemonName } from "./daemon_args.ts";

type DaemonCommand = Extract<Command, { kind: "daemon" }>;

/** $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=) or /run/<daemon>. */
export function runtimeDir(daemon: DaemonName): string {
  return Deno.env.get("RUNTIME_DIRECTORY")?.split(":")[0] || `/run/${daemon}`;
}

/** Prints `daemon: message` to stderr and exits. */
export function fail(daemon: DaemonName, message: string, code = 1): never {
  console.error(`${daemon}: ${message}`);
  Deno.exit(code);
}

/** Runs `daemon` until SIGTERM or SIGINT; returns the exit code. */
export async function runDaemon(daemon: DaemonName, command: DaemonCommand): Promise<number> {
  const die: (message: string) => never = (message) => fail(daemon, message);
  if (Deno.uid() !== 0) die("must run as root");
  try {
    Deno.statSync(FABRICS_DEVICE);
  } catch {
    die(`${FABRICS_DEVICE} not found: load the nvme-fabrics and nvme-tcp modules`);
  }
  const dir = runtimeDir(daemon);
  let lock;
  try {
    prepareRuntimeDir(dir);
    lock = acquireInstanceLock(dir, daemon);
  } catch (error) {
    const known = error instanceof AlreadyRunningError || error instanceof UntrustedRuntimeDirError;
    die(known ? (error as Error).message : `cannot lock ${dir}: ${error}`);
  }
  const log = createLogger(
    command.syslog && !Deno.env.get("JOURNAL_STREAM") ? syslogSink(daemon) : stdoutSink(),
    { tron: command.tron },
  );
  let nvme: Libnvme;
  let udev: UdevMonitor;
  // The one-process mode's finder follows udev on its own socket.
  let finderUdev: UdevMonitor | undefined;
  try {
    nvme = Libnvme.open();
    udev = UdevMonitor.open();
    if (command.finderConf) finderUdev = UdevMonitor.open();
  } catch (error) {
    die((error as Error).message);
  }
  // Signals are taken from the start: SIGHUP's default action would kill a
  // daemon still starting up. A reload asked for then is done once it runs.
  const stopped = Promise.withResolvers<void>();
  let app: { reload(): void; stop(): Promise<void> } | undefined;
  let reloadAsked = false;
  Deno.addSignalListener("SIGTERM", stopped.resolve);
  Deno.addSignalListener("SIGINT", stopped.resolve);
  Deno.addSignalListener("SIGHUP", () => {
    // reload() keeps the running configuration on errors; this is the last
    // guard: an exception in a signal listener would end the daemon.
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
    const common = {
      confFile: command.confFile,
      tron: command.tron,
      runtimeDir: dir,
      log,
      kernel,
      udev,
      describe: `libnvme ${nvme.version}, udev source: ${udev.source}`,
      kernelSupport: kernel.support(),
    };
    app = daemon === "stafd"
      ? await startStafdApp({ ...common, dbus: true, health: true })
      : await startApp({
        ...common,
        bootConnections: hasBootConnections(),
        finder: command.finderConf && finderUdev
          ? { confFile: command.finderConf, udev: finderUdev }
          : undefined,
      });
  } catch (error) {
    // Nothing is connected or disconnected yet: a host that cannot tell its
    // identity or read its configuration stops here, with the reason.
    if (error instanceof HostNqnError || error instanceof FileReadError) die(error.message);
    throw error;
  }
  if (reloadAsked) app.reload();

  await stopped.promise;
  log.info(daemon === "stacd" ? "Stopping stacd (connections are kept)" : "Stopping stafd");
  await app.stop();
  lock.release();
  nvme.close();
  return 0;
}
