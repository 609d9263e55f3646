/**
 * A stand-in for stafd, for tests only (not shipped): owns
 * org.nvmexpress.staf and serves what stacd consumes of stafd's interface
 * (docs/design.md#what-stacd-reads-from-stafd): get_all_log_pages(b) -> s, get_log_pages(sssssss)
 * -> aa{ss}, and the signals log_pages_changed(ssssssss) and dc_removed(). It can also
 * answer garbage, never answer, or flood signals, and counts the calls it
 * gets. Pages come from the caller, a JSON file, or real discovery
 * controllers (tests/dbus/stafd_sources.ts).
 *
 * CLI: deno run -A tests/stafd_standin.ts [--bus ADDRESS]
 *        (--file PAGES.json | --dc 'transport=tcp;traddr=...;trsvcid=...' ... [--persistent])
 *   Prints "ready <unique name>" once it owns the name. SIGHUP re-reads the
 *   source and signals log_pages_changed; so does the stdin line "reload".
 *   Other stdin lines: changed, dc_removed, flood N, garbage KIND, hang, calls, quit.
 */
import dbus, { type Message, type MessageBus } from "dbus-next";
import { STAF } from "../lib/dbus/stafd_bus.ts";
import { closeNextBus, openNextBus } from "./dbus/next_bus.ts";
import { type Answer, GARBAGE, type StandinPage } from "./dbus/stafd_garbage.ts";
import { discoverySource, fileSource, type PageSource } from "./dbus/stafd_sources.ts";

const DO_NOT_QUEUE = 4;
const PRIMARY_OWNER = 1;
const newError = dbus.Message.newError as unknown as (m: Message, n: string, t: string) => Message;
const INTROSPECTION = `<node><interface name="${STAF.iface}">
 <method name="get_all_log_pages"><arg direction="in" type="b"/><arg direction="out" type="s"/></method>
 <method name="get_log_pages"><arg direction="in" type="s"/><arg direction="in" type="s"/>
  <arg direction="in" type="s"/><arg direction="in" type="s"/><arg direction="in" type="s"/>
  <arg direction="in" type="s"/><arg direction="in" type="s"/><arg direction="out" type="aa{ss}"/></method>
 <signal name="log_pages_changed">${'<arg type="s"/>'.repeat(8)}</signal><signal name="dc_removed"/>
</interface></node>`;

/** A stafd on the bus; see the module doc. */
export class StafdStandin implements AsyncDisposable {
  /** get_all_log_pages calls received. */
  calls = 0;
  readonly #bus: MessageBus;
  #answer: Answer = { kind: "json", text: "[]" };
  #source: PageSource | undefined;
  #reloading: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  private constructor(bus: MessageBus) {
    this.#bus = bus;
    bus.addMethodHandler((msg: Message) => this.#handle(msg));
  }

  /** Owns the name on `busAddress`, serving `pages`; throws if someone else has the name. */
  static async start(
    busAddress: string,
    pages: StandinPage[] | string = [],
  ): Promise<StafdStandin> {
    const standin = new StafdStandin(openNextBus(busAddress));
    standin.serve(pages);
    const reply = await standin.#bus.requestName(STAF.name, DO_NOT_QUEUE);
    if (reply !== PRIMARY_OWNER) {
      await standin.close();
      throw new Error(`${STAF.name} is already owned (RequestName replied ${reply})`);
    }
    return standin;
  }

  /** Takes `source` for reload(), and reloads whenever the source says it changed (an AEN). */
  use(source: PageSource): void {
    this.#source = source;
    source.onChange?.(() =>
      this.reload().catch((e) => console.error(`stand-in: re-read failed: ${e}`))
    );
  }

  /** The stand-in's unique bus name. */
  get uniqueName(): string {
    return (this.#bus as unknown as { name: string | null }).name ?? "";
  }

  /** Answers get_all_log_pages with these pages (or this raw text) from now on. */
  serve(pages: StandinPage[] | string): void {
    this.#answer = {
      kind: "json",
      text: typeof pages === "string" ? pages : JSON.stringify(pages),
    };
  }

  /** Answers with anything (garbage of every kind), or never ("hang"). */
  answerWith(answer: Answer): void {
    this.#answer = answer;
  }

  /** Re-reads the source given to use(), then signals log_pages_changed. */
  reload(): Promise<void> {
    // One read at a time: a second request waits for the first to finish,
    // and a failed read does not block the ones after it.
    const run = this.#reloading.then(async () => {
      if (!this.#source) return;
      this.serve(await this.#source.read());
      this.changed();
    });
    this.#reloading = run.catch(() => {});
    return run;
  }

  /** Emits log_pages_changed with the identity of the first discovery controller served. */
  changed(): void {
    const dc = this.#answer.kind === "json" ? firstDc(this.#answer.text) : {};
    const keys = [
      ...["transport", "traddr", "trsvcid", "subsysnqn"],
      ...["host-traddr", "host-iface", "host-nqn", "device"],
    ];
    this.#signal("log_pages_changed", "ssssssss", keys.map((k) => String(dc[k] ?? "")));
  }

  dcRemoved(): void {
    this.#signal("dc_removed", "", []);
  }

  /** `n` log_pages_changed signals back to back. */
  flood(n: number): void {
    for (let i = 0; i < n; i++) this.changed();
  }

  /** Releases the name (stafd "vanishes") and disconnects; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#source?.close();
      await closeNextBus(this.#bus);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #signal(name: string, signature: string, body: unknown[]): void {
    this.#bus.send(dbus.Message.newSignal(STAF.path, STAF.iface, name, signature, body));
  }

  #handle(msg: Message): boolean {
    if (msg.path !== STAF.path) return false;
    const reply = (signature: string, body: unknown[]) =>
      this.#bus.send(dbus.Message.newMethodReturn(msg, signature, body));
    if (msg.member === "Introspect") reply("s", [INTROSPECTION]);
    else if (msg.member === "get_all_log_pages" && msg.signature === "b") {
      this.calls++;
      const answer = this.#answer;
      if (answer.kind === "json") reply("s", [answer.text]);
      else if (answer.kind === "reply") reply(answer.signature, answer.body);
      else if (answer.kind === "error") this.#bus.send(newError(msg, answer.name, answer.text));
    } else if (msg.member === "get_log_pages" && msg.signature === "sssssss") {
      reply("aa{ss}", [this.#pagesOf(msg.body as string[])]);
    } else return false;
    return true;
  }

  /** get_log_pages: the entries of the page whose discovery controller matches, as strings. */
  #pagesOf([transport, traddr, trsvcid, subsysnqn]: string[]): Record<string, string>[] {
    if (this.#answer.kind !== "json") return [];
    try {
      const pages = JSON.parse(this.#answer.text) as StandinPage[];
      const found = pages.find(({ "discovery-controller": dc }) =>
        dc.transport === transport && dc.traddr === traddr && dc.trsvcid === trsvcid &&
        dc.subsysnqn === subsysnqn
      );
      return (found?.["log-pages"] ?? []).map((e) =>
        Object.fromEntries(Object.entries(e as object).map(([k, v]) => [k, String(v)]))
      );
    } catch {
      return [];
    }
  }
}

function firstDc(text: string): Record<string, unknown> {
  try {
    return (JSON.parse(text) as StandinPage[])[0]?.["discovery-controller"] ?? {};
  } catch {
    return {};
  }
}

async function main(args: string[]): Promise<void> {
  const value = (flag: string) => args.flatMap((a, i) => a === flag ? [args[i + 1] ?? ""] : []);
  const [busAddress = Deno.env.get("DBUS_SYSTEM_BUS_ADDRESS") ?? ""] = value("--bus");
  const [file] = value("--file");
  const dcs = value("--dc");
  if (!busAddress || (file === undefined) === (dcs.length === 0)) {
    console.error(
      "Usage: stafd_standin.ts [--bus ADDRESS] (--file PAGES.json | --dc SPEC... [--persistent])",
    );
    Deno.exit(2);
  }
  const source = file !== undefined
    ? fileSource(file)
    : await discoverySource({ dcs, persistent: args.includes("--persistent") });
  // Read before taking the name: whoever follows stafd reads it as soon as it appears.
  const standin = await StafdStandin.start(busAddress, await source.read());
  standin.use(source);
  console.log(`ready ${standin.uniqueName}`);
  const stop = async () => {
    await standin.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGHUP", () => standin.reload().catch(console.error));
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
  let buffered = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    const lines = (buffered + chunk).split("\n");
    buffered = lines.pop() ?? "";
    for (const [command = "", ...rest] of lines.map((l) => l.trim().split(/\s+/))) {
      await obey(standin, command, rest, stop);
    }
  }
}

/** One stdin command of the CLI. */
async function obey(standin: StafdStandin, command: string, rest: string[], stop: () => unknown) {
  if (command === "reload") await standin.reload().catch(console.error);
  else if (command === "changed") standin.changed();
  else if (command === "dc_removed") standin.dcRemoved();
  else if (command === "flood") standin.flood(Number(rest[0] ?? 1000));
  else if (command === "hang") standin.answerWith({ kind: "hang" });
  else if (command === "garbage") {
    const bad = GARBAGE[rest.join(" ")];
    if (bad) standin.answerWith(bad.answer);
    else console.error(`unknown garbage; one of: ${Object.keys(GARBAGE).join(", ")}`);
  } else if (command === "calls") console.log(`calls ${standin.calls}`);
  else if (command === "quit") await stop();
  else if (command) console.error(`unknown command ${JSON.stringify(command)}`);
}

if (import.meta.main) await main(Deno.args);
