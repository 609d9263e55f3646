/**
 * A 1,000-entry discovery log page through the finder, on the host: from
 * the raw bytes a discovery controller returns to the JSON text a D-Bus
 * caller of get_all_log_pages(true) gets, then stacd's reader of that text.
 * One configured DC, connected; each run is what a "discovery log page
 * changed" AEN causes, with the page changed (one subsystem's NQN), so that
 * the finder also saves its page cache (a file, on tmpfs as /run is):
 *
 *   AEN pass     udev's AEN event to the read issued: the finder's pass 1
 *                (kernel list, desired set over the page it has, cache
 *                compared, snapshot published); informative
 *   validate     the page's bytes handed to the finder to its next pass:
 *                decodeDiscoveryPage and the pass requested
 *   apply        that pass: the page applied, desired set, page cache
 *                saved, the snapshot published
 *   JSON         the staf model's get_all_log_pages(true): the text
 *   (parse)      stacd's parseLogPages of that text, reported apart
 *
 * The target is on validate + apply + JSON (the bytes to the text). The
 * kernel's read itself (an ioctl) is not in it: the fake kernel answers with
 * bytes made beforehand. CPU time of the process (getrusage: the JS thread
 * and V8's helpers), median of RUNS runs after WARMUP; wall-clock medians
 * are printed beside them.
 *
 *   deno run -A bench/host/finder_page.ts
 */
import process from "node:process";
import { systemClock } from "../../lib/clock.ts";
import { parseStafdConfig } from "../../lib/config/stafd_conf.ts";
import type { DiscoveryKernel } from "../../lib/core/kernel_api.ts";
import { fileStore } from "../../lib/daemon/last_known_store.ts";
import { createStafModel, type StafdStatus } from "../../lib/dbus/staf_model.ts";
import { parseLogPages } from "../../lib/dbus/stafd_pages.ts";
import { Finder, FINDER_TIMERS, type FinderSnapshot } from "../../lib/finder/finder.ts";
import { PAGE_CACHE_FILE } from "../../lib/finder/stafd_app.ts";
import { createLogger } from "../../lib/logger.ts";
import { encodeDiscoveryPage } from "../../tests/discovery_page_bytes.ts";
import { sysConfig } from "../../tests/unit/fakes.ts";
import type { Figure } from "../guest/common.ts";
import { BenchKernel } from "./bench_kernel.ts";
import { dcAddress, dcLine, discoveryEntries } from "./discovery_entries.ts";
import { delay, median } from "./stats.ts";

const ENTRIES = 1_000;
const RUNS = 25;
const WARMUP = 5;
const TARGET_MS = 50;

/** CPU time of the process and wall-clock time, in ms. */
interface Mark {
  cpu: number;
  wall: number;
}

function mark(): Mark {
  const u = process.cpuUsage();
  return { cpu: (u.user + u.system) / 1000, wall: performance.now() };
}

const since = (a: Mark, b: Mark): Mark => ({ cpu: b.cpu - a.cpu, wall: b.wall - a.wall });

/** A kernel whose log page reads wait until the bench answers them. */
class HeldKernel extends BenchKernel implements DiscoveryKernel {
  #pending: PromiseWithResolvers<Uint8Array> | undefined;
  #asked = Promise.withResolvers<void>();

  discoveryLog(_device: string): Promise<Uint8Array> {
    this.#pending = Promise.withResolvers();
    this.#asked.resolve();
    return this.#pending.promise;
  }

  /** Resolves once the finder has asked for a page. */
  async asked(): Promise<void> {
    await this.#asked.promise;
    this.#asked = Promise.withResolvers();
  }

  answer(bytes: Uint8Array): void {
    const pending = this.#pending;
    if (!pending) throw new Error("no read in flight");
    this.#pending = undefined;
    pending.resolve(bytes);
  }
}

/** One run's steps. */
interface Steps {
  aen: Mark;
  validate: Mark;
  apply: Mark;
  json: Mark;
  parse: Mark;
}

export async function benchFinderPage(): Promise<Figure[]> {
  // The page cache goes where stafd keeps it: a tmpfs (/run), here /dev/shm when there is one.
  const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
  const dir = await Deno.makeTempDir({
    prefix: "finder-bench-",
    dir: shm ? "/dev/shm" : undefined,
  });
  try {
    return await measure(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function measure(dir: string): Promise<Figure[]> {
  // Two versions of the page, alternated: each AEN brings a changed page.
  const bytes = [0, 1].map((g) => encodeDiscoveryPage(discoveryEntries(0, ENTRIES, g), BigInt(g)));
  const { config, diagnostics } = parseStafdConfig(
    `[Global]\n\n[Controllers]\n${dcLine(0)}\n`,
    `${dir}/stafd.conf`,
  );
  const bad = diagnostics.find((d) => d.level === "error");
  if (bad) throw new Error(bad.message);

  // Marks taken where the finder reaches them: the start of a pass (its debug line) and publish.
  let onPass: ((line: string) => void) | undefined;
  let onPublish: ((snapshot: FinderSnapshot) => void) | undefined;
  const log = createLogger({ write: (_, line) => onPass?.(line) }, { tron: true });
  const kernel = new HeldKernel();
  let snapshot: FinderSnapshot = { dcs: [] };
  const finder = new Finder({
    clock: systemClock,
    kernel,
    log,
    timers: FINDER_TIMERS,
    store: fileStore(dir, PAGE_CACHE_FILE),
    publish: (s) => {
      snapshot = s;
      onPublish?.(s);
    },
  });
  const sys = sysConfig();
  const status = (): StafdStatus => ({
    tron: false,
    host: { hostNqn: sys.hostNqn, hostId: sys.hostId, hasHostKey: false },
    ignoreIface: config.ignoreIface,
    finder: snapshot,
  });
  const model = createStafModel({
    status,
    setTron: () => {},
    clock: systemClock,
    cacheFile: `${dir}/${PAGE_CACHE_FILE}`,
    kernelOptions: undefined,
  });
  const nextPublish = () =>
    new Promise<Mark>((resolve) => {
      onPublish = () => {
        const m = mark();
        onPublish = undefined;
        resolve(m);
      };
    });
  const nextPass = (reason: string) =>
    new Promise<Mark>((resolve) => {
      onPass = (line) => {
        if (!line.includes(`Finder pass (${reason}`)) return;
        const m = mark();
        onPass = undefined;
        resolve(m);
      };
    });

  // Start: the DC is connected, then its first page read.
  await finder.start({ config, sys, resolved: new Map() });
  await kernel.asked();
  kernel.answer(bytes[1]!);
  while (snapshot.dcs[0]?.entries === undefined) await delay(1);
  const device = snapshot.dcs[0]?.device;
  if (snapshot.dcs.length !== 1 || !device || snapshot.dcs[0]!.entries?.length !== ENTRIES) {
    throw new Error("the DC was not connected and read");
  }
  if (snapshot.dcs[0]!.tid.traddr !== dcAddress(0)) throw new Error("unexpected DC");

  const runs: Steps[] = [];
  let jsonChars = 0;
  for (let r = 0; r < WARMUP + RUNS; r++) {
    await delay(0); // the finder is idle: the last pass and its arming are over
    const published1 = nextPublish();
    const aenAt = mark();
    finder.udevEvent({
      action: "change",
      sysname: device,
      devpath: `/devices/virtual/nvme-fabrics/ctl/${device}`,
      subsystem: "nvme",
      properties: { NVME_AEN: "0x70f002" },
    });
    await kernel.asked();
    const aenDone = await published1;
    await delay(0);

    const passStarted = nextPass("log page of");
    const published2 = nextPublish();
    const answeredAt = mark();
    kernel.answer(bytes[r % 2]!);
    const applyAt = await passStarted;
    const publishedAt = await published2;

    const jsonAt = mark();
    const text = model.allLogPages(true);
    const parseAt = mark();
    const parsed = parseLogPages(text);
    const parsedAt = mark();

    const entries = parsed.pages[0]?.entries ?? [];
    if (!parsed.complete || entries.length !== ENTRIES || parsed.problems.length > 0) {
      throw new Error(`stacd read ${entries.length} entries: ${parsed.problems.join("; ")}`);
    }
    if (!entries.some((e) => e.subnqn.endsWith(`-g${r % 2}`))) {
      throw new Error("the changed page was not published");
    }
    jsonChars = text.length;
    if (r < WARMUP) continue;
    runs.push({
      aen: since(aenAt, aenDone),
      validate: since(answeredAt, applyAt),
      apply: since(applyAt, publishedAt),
      json: since(jsonAt, parseAt),
      parse: since(parseAt, parsedAt),
    });
  }
  await finder.stop({ disconnect: false });

  const med = (pick: (s: Steps) => number) => median(runs.map(pick));
  const step = (key: keyof Steps) => ({
    cpu: med((s) => s[key].cpu),
    wall: med((s) => s[key].wall),
  });
  const total = {
    cpu: med((s) => s.validate.cpu + s.apply.cpu + s.json.cpu),
    wall: med((s) => s.validate.wall + s.apply.wall + s.json.wall),
  };
  const label = `finder, 1,000-entry page`;
  const line = (name: string, t: { cpu: number; wall: number }) =>
    console.log(`  ${name}: CPU ${t.cpu.toFixed(2)} ms, wall ${t.wall.toFixed(2)} ms (medians)`);
  const rows: [string, keyof Steps][] = [
    ["AEN to read issued (pass 1)", "aen"],
    ["validate (decodeDiscoveryPage)", "validate"],
    ["apply, cache, publish (pass 2)", "apply"],
    ["get_all_log_pages(true) JSON", "json"],
    ["stacd's parseLogPages", "parse"],
  ];
  for (const [name, key] of rows) line(`${label}: ${name}`, step(key));
  line(`${label}: bytes to JSON text`, total);
  console.log(`  (${RUNS} runs; JSON text ${jsonChars.toLocaleString("en")} characters)`);
  const fig = (name: string, value: number): Figure => ({
    name: `${label}: ${name}`,
    value,
    unit: "ms",
  });
  return [
    ...rows.map(([name, key]) => fig(`${name} CPU`, step(key).cpu)),
    {
      ...fig("bytes to JSON CPU", total.cpu),
      target: `< ${TARGET_MS} ms`,
      pass: total.cpu < TARGET_MS,
    },
  ];
}

if (import.meta.main) {
  for (const f of await benchFinderPage()) console.log(f);
}
