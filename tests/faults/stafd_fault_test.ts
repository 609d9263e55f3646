/**
 * Faults of stafd as stacd sees it on a real dbus-daemon: the discovery
 * stand-in (tests/stafd_standin.ts, reading the real nvmet discovery
 * controller) killed and restarted, answering garbage of every kind, and
 * flooding log_pages_changed. No answer is not an empty answer
 * (docs/design.md#unknown-is-not-empty): every discovered connection stays through all of it.
 * Runs only in the guest: deno task faults stafd
 */
import assert from "node:assert/strict";
import dbus, { type Message, type MessageBus } from "dbus-next";
import { marshallMessage } from "dbus-next/lib/marshall-compat.js";
import { STAF } from "../../lib/dbus/stafd_bus.ts";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import { closeNextBus, openNextBus } from "../dbus/next_bus.ts";
import { STAC_POLICY, STAF_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { GARBAGE } from "../dbus/stafd_garbage.ts";
import { discoverySource } from "../dbus/stafd_sources.ts";
import { waitFor } from "../guest/nvme_host.ts";
import { stacdConf, StacdProcess, waitForLiveSet } from "../guest/stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "../guest/target.ts";
import { StafdStandin } from "../stafd_standin.ts";
import {
  about,
  assertNoDuplicates,
  assertSurvived,
  countLines,
  faultTest,
  identities,
  KernelWatch,
  linesSince,
  scratch,
  sleep,
} from "./fault_kit.ts";

const DC = "transport=tcp;traddr=127.0.0.1;trsvcid=4420";
const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/** A private bus and stacd on it with nothing configured: every controller comes from stafd. */
async function stacdOnBus(args: string[] = []) {
  const bus = await startPrivateBus({ policies: [STAC_POLICY, STAF_POLICY] });
  const s = await scratch();
  await Deno.writeTextFile(s.confFile, stacdConf([]));
  const stacd = new StacdProcess({ ...s, args, env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } });
  return {
    bus,
    stacd,
    async [Symbol.asyncDispose]() {
      await stacd[Symbol.asyncDispose]();
      await bus.close();
    },
  };
}

/** The stand-in in-process, reading the real discovery controller. */
async function standin(busAddress: string): Promise<StafdStandin> {
  const source = await discoverySource({ dcs: [DC] });
  const stafd = await StafdStandin.start(busAddress, await source.read());
  stafd.use(source);
  return stafd;
}

/** The discovery log page as stafd would send it now (text of get_all_log_pages). */
async function readPages(): Promise<string> {
  const source = await discoverySource({ dcs: [DC] });
  try {
    return await source.read();
  } finally {
    await source.close();
  }
}

/** The stand-in as its own process (its CLI), so that it can be SIGKILLed. */
class StandinProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly ready: Promise<string>;

  constructor(busAddress: string) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "--allow-all", "--no-check", "--frozen", `${root}tests/stafd_standin.ts`],
        ...["--bus", busAddress, "--dc", DC],
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.child = child;
    this.#stdin = child.stdin.getWriter();
    const ready = Promise.withResolvers<string>();
    this.ready = ready.promise;
    // Read to the end, so that a chatty stand-in never blocks on a full pipe.
    void (async () => {
      let text = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        const name = /^ready (\S+)$/m.exec(text)?.[1];
        if (name) ready.resolve(name);
      }
      ready.reject(new Error(`stand-in exited before it was ready: ${text}`));
    })();
  }

  /** One stdin command: reload, changed, ... */
  async send(command: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(`${command}\n`));
  }

  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.child.status;
    await this.#stdin.close().catch(() => {});
    await this.ready.catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.kill();
  }
}

faultTest("stafd killed (SIGKILL) and restarted", async (record) => {
  using t = createTarget({ subsystems: 8, ports: [LOOPBACK_PORT] });
  await using watch = new KernelWatch();
  await using s = await stacdOnBus();
  const { stacd } = s;
  const first = new StandinProcess(s.bus.address);
  await first.ready;
  await waitForLiveSet(t.nqns, 60_000);
  const before = identities();
  watch.keep(before);
  await first.kill();
  record.injected = "1 SIGKILL, 1 restart";
  await stacd.waitForLog(/stafd left D-Bus: keeping every discovered controller/);
  // While stafd is away its answer is unknown: a reload must not drop anything either.
  await sleep(1_000);
  stacd.signal("SIGHUP");
  await stacd.waitForLog(/Configuration reloaded/);
  await sleep(1_000);

  await using second = new StandinProcess(s.bus.address);
  await second.ready;
  await waitFor(
    () => countLines(stacd, /stafd appeared on D-Bus/) >= 2 || undefined,
    "stacd follows the new stafd",
    30_000,
  );
  // The new stafd's answer is applied after its soak (10 s x 0.05): same set, nothing moves.
  await sleep(2_000);
  await assertSurvived(stacd, record);
  watch.assertClean();
  assert.deepEqual(identities(), before, "every connection went through the outage untouched");

  // And it is the new stafd that stacd follows now: a subsystem it drops is disconnected.
  const dropped = t.nqns.at(-1)!;
  watch.release(dropped);
  t.target.unlinkSubsystem(LOOPBACK_PORT.id, dropped);
  await second.send("reload");
  await stacd.waitForLog(about(dropped, "Disconnected"), 60_000);
  await waitForLiveSet(t.nqns.slice(0, -1), 30_000);
  watch.assertClean();
  assertNoDuplicates();
  record.stateCorrect = true;
  assert.equal(await stacd.stop(), 0);
});

faultTest("stafd answering garbage (each of the 22 kinds)", async (record) => {
  using t = createTarget({ subsystems: 6, ports: [LOOPBACK_PORT] });
  await using watch = new KernelWatch();
  // --tron: a problem seen before is logged again at debug level, so each kind shows.
  await using s = await stacdOnBus(["--tron"]);
  const { stacd } = s;
  await using stafd = await standin(s.bus.address);
  await waitForLiveSet(t.nqns, 60_000);
  watch.keep(identities());
  const good = await readPages();
  const explained: string[] = [];
  for (const [kind, { answer, outcome }] of Object.entries(GARBAGE)) {
    // A partial answer is a real answer: the good page goes with it, or stacd rightly drops it.
    stafd.answerWith(
      outcome === "partial" && answer.kind === "json"
        ? {
          kind: "json",
          text: JSON.stringify([...JSON.parse(answer.text), ...JSON.parse(good)]),
        }
        : answer,
    );
    const mark = stacd.lines.length;
    const calls = stafd.calls;
    stafd.changed();
    await waitFor(() => stafd.calls > calls || undefined, `stacd asks again (${kind})`, 30_000);
    const said = await waitFor(
      () => linesSince(stacd, mark, /stafd log pages|Cannot read stafd's log pages/)[0],
      `a log line about "${kind}"`,
      30_000,
    );
    explained.push(kind);
    if (outcome === "unknown") {
      await waitFor(
        () => linesSince(stacd, mark, /unknown|every discovered controller is kept/)[0],
        `"${kind}" taken as unknown\n${stacd.lines.slice(mark).join("\n")}`,
        30_000,
      );
    }
    assert.ok(said);
    await sleep(200); // a soak (75 ms) and the pass after it
  }
  record.injected = `${explained.length} garbage answers`;
  stafd.serve(good);
  const calls = stafd.calls;
  stafd.changed();
  await waitFor(() => stafd.calls > calls || undefined, "stacd reads the good answer", 30_000);
  await sleep(1_000);
  await assertSurvived(stacd, record);
  watch.assertClean();
  await waitForLiveSet(t.nqns, 30_000);
  assertNoDuplicates();
  assert.doesNotMatch(stacd.log, /Disconnected/);
  record.notes.push(`each kind logged; ${watch.samples} samples`);
  record.stateCorrect = true;
  assert.equal(await stacd.stop(), 0);
});

/**
 * A stafd that can flood for real: a log_pages_changed is marshalled once and
 * its bytes are written N times (fresh serials patched in) straight to the
 * bus socket. Through dbus-next's send() each signal costs ~10 ms of
 * JavaScript under TCG, which would stretch 1,000 signals over 10 s.
 */
class FloodingStafd implements AsyncDisposable {
  calls = 0;
  readonly #bus: MessageBus;
  #text: string;
  #serial = 0x40000000; // far above dbus-next's own counter

  private constructor(bus: MessageBus, text: string) {
    this.#bus = bus;
    this.#text = text;
    bus.addMethodHandler((msg: Message) => {
      if (msg.path !== STAF.path || msg.member !== "get_all_log_pages") return false;
      this.calls++;
      bus.send(dbus.Message.newMethodReturn(msg, "s", [this.#text]));
      return true;
    });
  }

  static async start(busAddress: string, text: string): Promise<FloodingStafd> {
    const stafd = new FloodingStafd(openNextBus(busAddress), text);
    const reply = await stafd.#bus.requestName(STAF.name, 4 /* DO_NOT_QUEUE */);
    assert.equal(reply, 1, "owns org.nvmexpress.staf");
    return stafd;
  }

  serve(text: string): void {
    this.#text = text;
  }

  /** `n` log_pages_changed signals in one write. */
  flood(n: number): void {
    const signal = dbus.Message.newSignal(
      STAF.path,
      STAF.iface,
      "log_pages_changed",
      "ssssssss",
      ["tcp", "127.0.0.1", "4420", DISCOVERY_NQN, "", "", "", ""],
    );
    signal.serial = 1;
    const [one] = marshallMessage(signal) as [Uint8Array];
    assert.equal(one[0], 0x6c, "little-endian message ('l'): the serial is at offset 8");
    const all = new Uint8Array(one.length * n);
    const view = new DataView(all.buffer);
    for (let i = 0; i < n; i++) {
      all.set(one, i * one.length);
      view.setUint32(i * one.length + 8, this.#serial++, true);
    }
    const stream =
      (this.#bus as unknown as { _connection: { stream: { write(b: Uint8Array): void } } })
        ._connection.stream;
    stream.write(all);
  }

  close(): Promise<void> {
    return closeNextBus(this.#bus);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

faultTest("stafd flooding 1,000 log_pages_changed in a second", async (record) => {
  using t = createTarget({ subsystems: 8, ports: [LOOPBACK_PORT] });
  await using watch = new KernelWatch();
  await using s = await stacdOnBus(["--tron"]);
  const { stacd } = s;
  await using stafd = await FloodingStafd.start(s.bus.address, await readPages());
  await waitForLiveSet(t.nqns, 60_000);
  const [dropped, ...kept] = t.nqns as [string, ...string[]];
  const before = identities();
  watch.keep(new Map(kept.map((nqn) => [nqn, before.get(nqn)!])));
  // The answer changes once, silently; the flood must carry that change through.
  t.target.unlinkSubsystem(LOOPBACK_PORT.id, dropped);
  stafd.serve(await readPages());
  const calls = stafd.calls;
  const started = performance.now();
  for (let burst = 0; burst < 10; burst++) {
    stafd.flood(100); // 100 every 100 ms
    const ahead = started + (burst + 1) * 100 - performance.now();
    if (burst < 9 && ahead > 0) await sleep(ahead);
  }
  const floodMs = performance.now() - started;
  record.injected = "1000 signals";
  await stacd.waitForLog(about(dropped, "Disconnected"), 60_000);
  await waitForLiveSet(kept, 30_000);
  // Every signal reaches stacd (logged at debug level); give the last ones time to arrive.
  await waitFor(
    () => countLines(stacd, /stafd signalled log_pages_changed/) >= 1000 || undefined,
    "stacd saw every signal",
    30_000,
  ).catch(() => {});
  await sleep(1_000);
  const seen = countLines(stacd, /stafd signalled log_pages_changed/);
  const asked = stafd.calls - calls;
  record.notes.push(
    `1000 signals sent in ${(floodMs / 1000).toFixed(1)} s, ${seen} seen by stacd, ` +
      `${asked} get_all_log_pages calls`,
  );
  await assertSurvived(stacd, record);
  watch.assertClean();
  assertNoDuplicates();
  assert.equal(seen, 1000, "stacd saw every signal");
  // Coalesced: one call in flight and one pending at most, never one per signal.
  assert.ok(asked >= 1 && asked <= 100, `${asked} calls for 1000 signals`);
  record.stateCorrect = true;
  assert.equal(await stacd.stop(), 0);
});
