/**
 * Follows stafd on D-Bus (docs/design.md#following-stafd): watches who owns
 * org.nvmexpress.staf, reads get_all_log_pages(true) when stafd appears and
 * whenever it signals log_pages_changed or dc_removed, and hands the result
 * to the daemon. When stafd is gone, a call fails or times out, or the reply
 * cannot be fully read, the answer is `undefined` ("unknown"), never an
 * empty list: the daemon then keeps every discovered controller.
 *
 * Event-driven only: a timer exists only while connecting or while a call
 * is in flight, so an idle follower never wakes up.
 */
import { type Clock, systemClock } from "../clock.ts";
import type { DiscoveredPage } from "../core/desired_set.ts";
import type { Logger } from "../logger.ts";
import { type PageLimits, readLogPagesReply } from "./stafd_pages.ts";
import {
  type BusConnection,
  type CallSpec,
  connectSystemBus,
  DBUS_DAEMON,
  DISCONNECTED,
  errorText,
  type Message,
} from "./bus_connection.ts";
import { STAF, STAF_MATCH_RULES } from "./stafd_bus.ts";

const GET_ALL_LOG_PAGES = {
  path: STAF.path,
  interface: STAF.iface,
  member: "get_all_log_pages",
  signature: "b",
  body: [true], // detailed: the discovery controller's host-* fields are in it
};

/**
 * Why the follower calls `onPages`. "vanished": stafd left the bus, or the
 * bus itself was lost while stafd was on it (when stafd is seen again, it
 * may have restarted and be refilling its cache). "failed": stafd is there
 * but its answer could not be had or read.
 */
export type StafdReason = "appeared" | "changed" | "vanished" | "failed";

/** Options of {@linkcode followStafd}. */
export interface FollowStafdOptions {
  /** Default: DBUS_SYSTEM_BUS_ADDRESS, else the system bus socket. */
  busAddress?: string;
  log: Logger;
  /** stafd's pages, or undefined when its answer is unknown. Exceptions are logged. */
  onPages: (pages: DiscoveredPage[] | undefined, reason: StafdReason) => void;
  /** How long connecting, or a call to stafd (or the bus), may take; default 25 s, D-Bus's own. */
  callTimeoutMs?: number;
  clock?: Clock;
  limits?: Partial<PageLimits>;
}

/** A running follower; `close()` is prompt and idempotent. */
export interface StafdFollower extends AsyncDisposable {
  /** stafd's unique bus name while it is on the bus. */
  readonly owner: string | undefined;
  /**
   * Resolves with the reason once the bus connection is over (lost, or
   * close()): lets lib/dbus/bus_keeper.ts start a new follower when the bus is back.
   */
  readonly closed: Promise<string>;
  close(): Promise<void>;
}

/**
 * Connects to the bus, subscribes to stafd's signals and to changes of its
 * name's owner, and reads stafd's pages at once if it is there.
 * @throws {Error} when the bus cannot be reached or does not answer in time.
 */
export async function followStafd(options: FollowStafdOptions): Promise<StafdFollower> {
  const follower = new Follower(options);
  try {
    await follower.start();
  } catch (error) {
    await follower.close();
    throw error;
  }
  return follower;
}

class Follower implements StafdFollower {
  readonly #opts: FollowStafdOptions;
  /** Aborted once the follower is closed or the connection is lost, ending every wait. */
  readonly #stop = new AbortController();
  readonly closed: Promise<string>;
  #ended!: (why: string) => void;
  #connection: BusConnection | undefined;
  #unlisten = () => {};
  #owner: string | undefined;
  /** Bumped when the owner changes: answers of a previous owner are dropped. */
  #generation = 0;
  #ownerEvents = 0;
  #inFlight = false;
  #pending = false;
  #lastProblems = "";
  #closing: Promise<void> | undefined;

  constructor(options: FollowStafdOptions) {
    this.#opts = options;
    this.closed = new Promise((resolve) => (this.#ended = resolve));
  }

  get owner(): string | undefined {
    return this.#owner;
  }

  async start(): Promise<void> {
    const { log } = this.#opts;
    this.#connection = await connectSystemBus({
      address: this.#opts.busAddress,
      timeoutMs: this.#opts.callTimeoutMs ?? 25_000,
      clock: this.#opts.clock ?? systemClock,
      onLost: (why) => this.#lost(why),
      onBadMessage: (why) => log.warning(`D-Bus: ${why}`),
    });
    this.#unlisten = this.#connection.bus.onSignal(this.#onSignal);
    // Subscribe before asking who owns the name, so no change falls in between.
    for (const rule of STAF_MATCH_RULES) await this.#callBus("AddMatch", "s", [rule]);
    const seen = this.#ownerEvents;
    const owner = await this.#callBus("GetNameOwner", "s", [STAF.name]).then(
      (reply) => String(reply.body[0]),
      (error: { type?: string }) => {
        if (error.type === "org.freedesktop.DBus.Error.NameHasNoOwner") return undefined;
        throw error;
      },
    );
    // A NameOwnerChanged handled meanwhile is at least as recent as this reply.
    if (this.#ownerEvents === seen) this.#setOwner(owner);
    if (!this.#owner) this.#opts.log.info("stafd is not on D-Bus yet: waiting for it");
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Ends every call in flight, which cancels its timeout timer.
      this.#end(new Error("closed"));
      this.#unlisten();
      await this.#connection?.close(0);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onSignal = (msg: Message): void => {
    if (this.#closing) return;
    if (msg.sender === "org.freedesktop.DBus" && msg.member === "NameOwnerChanged") {
      if (msg.body[0] !== STAF.name) return;
      this.#ownerEvents++;
      this.#setOwner(typeof msg.body[2] === "string" && msg.body[2] ? msg.body[2] : undefined);
    } else if (
      // Anyone may send a signal on the system bus: only stafd's own count.
      msg.sender === this.#owner && msg.path === STAF.path && msg.interface === STAF.iface &&
      (msg.member === "log_pages_changed" || msg.member === "dc_removed")
    ) {
      this.#opts.log.debug(`stafd signalled ${msg.member}`);
      this.#request();
    }
  };

  #setOwner(owner: string | undefined): void {
    if (owner === this.#owner) return;
    this.#owner = owner;
    this.#generation++;
    this.#inFlight = this.#pending = false;
    if (owner) {
      this.#opts.log.info(`stafd appeared on D-Bus as ${owner}: reading its log pages`);
      void this.#fetch("appeared");
    } else {
      this.#opts.log.info("stafd left D-Bus: keeping every discovered controller until it is back");
      this.#deliver(undefined, "vanished");
    }
  }

  /** At most one call in flight and one pending: a flood of signals costs two calls. */
  #request(): void {
    if (this.#inFlight) this.#pending = true;
    else void this.#fetch("changed");
  }

  async #fetch(reason: "appeared" | "changed"): Promise<void> {
    const generation = this.#generation;
    const owner = this.#owner;
    if (owner === undefined || this.#closing) return;
    this.#inFlight = true;
    let reply: Message | undefined;
    let why = "";
    try {
      // To the unique name: a restarted stafd must not answer for the one we asked.
      reply = await this.#call({ ...GET_ALL_LOG_PAGES, destination: owner });
    } catch (error) {
      why = errorText(error);
    }
    if (generation !== this.#generation || this.#closing) return;
    if (why) {
      this.#opts.log.warning(
        `Cannot read stafd's log pages (${why}): every discovered controller is kept`,
      );
    }
    const pages = reply && this.#read(reply);
    this.#inFlight = false;
    this.#deliver(pages, pages ? reason : "failed");
    if (this.#pending) {
      this.#pending = false;
      void this.#fetch("changed");
    }
  }

  #read(reply: Message): DiscoveredPage[] | undefined {
    const { log, limits } = this.#opts;
    const { pages, problems, complete } = readLogPagesReply(reply.signature, reply.body, limits);
    // The same problems on every read are reported once, then at debug level.
    const again = problems.join("\n") === this.#lastProblems;
    this.#lastProblems = problems.join("\n");
    const say = again ? log.debug : log.warning;
    for (const problem of problems) say(`stafd log pages: ${problem}`);
    if (!complete) {
      say("stafd's log pages are unknown (see above): every discovered controller is kept");
    }
    return complete ? pages : undefined;
  }

  #deliver(pages: DiscoveredPage[] | undefined, reason: StafdReason): void {
    try {
      this.#opts.onPages(pages, reason);
    } catch (error) {
      this.#opts.log.error(`Handling stafd's log pages failed: ${(error as Error).message}`);
    }
  }

  /** The bus itself is gone (dbus-daemon stopped): nothing is known about stafd any more. */
  #lost(why: string): void {
    if (this.#closing) return;
    this.#opts.log.error(`D-Bus connection lost (${why}): stafd's log pages stay unknown`);
    this.#end(new Error(`D-Bus connection lost: ${why}`));
    const hadOwner = this.#owner !== undefined;
    this.#owner = undefined;
    this.#generation++;
    if (hadOwner) this.#deliver(undefined, "vanished");
  }

  #end(why: Error): void {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort(why);
    this.#ended(why.message);
  }

  #callBus(member: string, signature: string, body: unknown[]): Promise<Message> {
    return this.#call({ ...DBUS_DAEMON, member, signature, body });
  }

  #call(spec: CallSpec): Promise<Message> {
    return this.#connection!.call(spec, { signal: this.#stop.signal }).catch(
      (error: { type?: string; text?: string }) => {
        // The loss itself is reported by #lost; the call says the same.
        if (error.type === DISCONNECTED) throw new Error(`D-Bus connection lost: ${error.text}`);
        throw error;
      },
    );
  }
}
