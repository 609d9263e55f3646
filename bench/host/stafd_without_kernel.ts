/**
 * stafd for the host benchmarks, as bench/host/stacd_without_kernel.ts is
 * stacd: a BenchDiscoveryKernel (./bench_kernel.ts: connects succeed at once,
 * each discovery controller's page is made again on every read, nothing is
 * held) in place of libnvme and sysfs, composed in code. Two forms:
 *
 *   stafd   lib/finder/stafd_app.ts's assembly (startStafdApp): the finder,
 *           the configuration, the udev netlink monitor, the health socket
 *           and org.nvmexpress.staf on DBUS_SYSTEM_BUS_ADDRESS
 *   finder  the Finder alone (lib/finder/finder.ts) with the system clock
 *           and its page cache file, no bus, no udev, no health socket
 *
 *   deno run -A bench/host/stafd_without_kernel.ts DIR DCS ENTRIES stafd|finder
 *
 * Writes stafd.conf (DCS tcp discovery controllers) and sys.conf into DIR,
 * logs to DIR/stafd.log, and once every DC is connected and its page of
 * ENTRIES entries read writes "ready" to stderr. SIGTERM stops it.
 */
import { systemClock } from "../../lib/clock.ts";
import { loadStafdConfiguration } from "../../lib/config/load.ts";
import { acquireInstanceLock } from "../../lib/daemon/instance_lock.ts";
import { fileStore } from "../../lib/daemon/last_known_store.ts";
import { Finder, FINDER_TIMERS, type FinderSnapshot } from "../../lib/finder/finder.ts";
import { PAGE_CACHE_FILE, startStafdApp } from "../../lib/finder/stafd_app.ts";
import { UdevMonitor } from "../../lib/kernel/udev_monitor.ts";
import { createLogger } from "../../lib/logger.ts";
import { encodeDiscoveryPage } from "../../tests/discovery_page_bytes.ts";
import { BenchDiscoveryKernel } from "./bench_kernel.ts";
import { dcAddress, dcLine, discoveryEntries } from "./discovery_entries.ts";

const HOSTID = "11111111-2222-3333-4444-555555555555";
const HOSTNQN = `nqn.2014-08.org.nvmexpress:uuid:${HOSTID}`;

export type StafdForm = "stafd" | "finder";

/** How many DCs show a page of `entries` entries, from the finder's snapshot. */
const readDcs = (snapshot: FinderSnapshot, entries: number) =>
  snapshot.dcs.filter((dc) => dc.phase === "connected" && dc.entries?.length === entries).length;

async function main(dir: string, dcs: number, entries: number, form: StafdForm): Promise<void> {
  const confFile = `${dir}/stafd.conf`;
  const sysConfFile = `${dir}/sys.conf`;
  const lines = Array.from({ length: dcs }, (_, i) => dcLine(i));
  Deno.writeTextFileSync(confFile, `[Global]\n\n[Controllers]\n${lines.join("\n")}\n`);
  Deno.writeTextFileSync(sysConfFile, `[Host]\nnqn = ${HOSTNQN}\nid = ${HOSTID}\n`);

  const lock = acquireInstanceLock(dir, "stafd");
  const logFile = Deno.openSync(`${dir}/stafd.log`, { create: true, append: true });
  const text = new TextEncoder();
  const log = createLogger({ write: (_, line) => logFile.writeSync(text.encode(`${line}\n`)) });

  const dcOf = new Map(Array.from({ length: dcs }, (_, i) => [dcAddress(i), i]));
  const kernel = new BenchDiscoveryKernel((traddr) => {
    const dc = dcOf.get(traddr);
    return encodeDiscoveryPage(dc === undefined ? [] : discoveryEntries(dc, entries));
  });

  let ready: () => number;
  let stop: () => Promise<void>;
  if (form === "stafd") {
    const udev = UdevMonitor.open();
    const app = await startStafdApp({
      confFile,
      sysConfFile,
      tron: false,
      runtimeDir: dir,
      log,
      kernel,
      udev,
      describe: "bench kernel",
      dbus: true,
      health: true,
    });
    ready = () =>
      app.model.listControllers(true).filter((dc) =>
        dc.connected === "True" && dc["log page entries"] === String(entries)
      ).length;
    stop = () => app.stop();
  } else {
    const { config, sys } = loadStafdConfiguration({ confFile, sysConfFile });
    let snapshot: FinderSnapshot = { dcs: [] };
    const finder = new Finder({
      clock: systemClock,
      kernel,
      log,
      timers: FINDER_TIMERS,
      store: fileStore(dir, PAGE_CACHE_FILE),
      publish: (s) => snapshot = s,
    });
    await finder.start({ config, sys, resolved: new Map() });
    ready = () => readDcs(snapshot, entries);
    stop = () => finder.stop({ disconnect: false });
  }

  // Ready once every DC is connected and read (the fake kernel answers in a turn or two).
  while (ready() < dcs) await new Promise((resolve) => setTimeout(resolve, 1));
  Deno.stderr.writeSync(text.encode("ready\n"));

  const stopped = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", stopped.resolve);
  await stopped.promise;
  await stop();
  lock.release();
  logFile.close();
}

if (import.meta.main) {
  const [dir, dcs, entries, form] = Deno.args;
  if (
    !dir || !/^\d+$/.test(dcs ?? "") || !/^\d+$/.test(entries ?? "") ||
    (form !== "stafd" && form !== "finder")
  ) {
    console.error("usage: stafd_without_kernel.ts DIR DCS ENTRIES stafd|finder");
    Deno.exit(2);
  }
  await main(dir, Number(dcs), Number(entries), form);
  Deno.exit(0);
}
