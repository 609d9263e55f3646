/**
 * One connection to a message bus over its unix socket: SASL EXTERNAL
 * authentication, Hello, message framing, serials and the reply table.
 * Messages are encoded and decoded by dbus-next's message layer
 * (lib/dbus/message.ts); this replaces only its MessageBus and node:net
 * transport, which stacd needs none of the rest of (and which cost memory).
 *
 * What it promises the code above it: the connection fails or is ready
 * (`ready`), every pending call settles (with its reply, the error reply as a
 * DBusError, or org.freedesktop.DBus.Error.Disconnected when the connection
 * ends), the end is reported once with its reason (`closed`), and nothing a
 * peer sends can throw out of it.
 */
import {
  DBusError,
  decodeMessage,
  encodeMessage,
  Message,
  MESSAGE_TYPE,
  newErrorReply,
  NO_REPLY_EXPECTED,
} from "./message.ts";

/** The bus daemon, as a call destination. */
export const DBUS_DAEMON = {
  destination: "org.freedesktop.DBus",
  path: "/org/freedesktop/DBus",
  interface: "org.freedesktop.DBus",
} as const;

/** Where the system bus listens (D-Bus specification); /var/run is /run on every current system. */
export const SYSTEM_BUS_ADDRESS = "unix:path=/run/dbus/system_bus_socket";

/** The system bus: DBUS_SYSTEM_BUS_ADDRESS when set, else {@linkcode SYSTEM_BUS_ADDRESS}. */
export function systemBusAddress(): string {
  return Deno.env.get("DBUS_SYSTEM_BUS_ADDRESS") ?? SYSTEM_BUS_ADDRESS;
}

/** The D-Bus specification's limit on one message. */
const MAX_MESSAGE = 128 * 1024 * 1024;
const FIXED_HEADER = 16;
/** The error of every call pending when the connection ends. */
export const DISCONNECTED = "org.freedesktop.DBus.Error.Disconnected";

/** Options of {@linkcode BusSocket.open}. */
export interface BusSocketOptions {
  /** Told about a message that arrived but cannot be decoded (it is dropped). */
  onBadMessage?: (why: string) => void;
}

/**
 * The socket path of a D-Bus server address: the first `unix:path=` entry
 * of a `;`-separated list. Other transports (tcp, abstract sockets) are not
 * what a system bus uses and are refused with a clear message.
 */
export function socketPath(address: string): string {
  for (const entry of address.split(";")) {
    const colon = entry.indexOf(":");
    if (entry.slice(0, colon) !== "unix") continue;
    for (const pair of entry.slice(colon + 1).split(",")) {
      const [key, value] = pair.split("=", 2);
      if (key === "path" && value) return decodeURIComponent(value);
    }
  }
  throw new Error(`no unix:path= entry in the bus address "${address}"`);
}

export class BusSocket {
  /** Resolves once authenticated and named (Hello answered); rejects with the reason otherwise. */
  readonly ready: Promise<void>;
  /** Resolves (never rejects) with the reason once the connection is over. */
  readonly closed: Promise<string>;
  readonly #opts: BusSocketOptions;
  #conn: Deno.UnixConn | undefined;
  #name = "";
  #serial = 1;
  #ended = false;
  #endReason = "";
  #endWith!: (reason: string) => void;
  /** Encoded messages not yet written (held back until authenticated), each with its `written`. */
  readonly #outbox: Queued[] = [];
  #queuedBytes = 0;
  #writing: Promise<void> | undefined;
  #authenticated = false;
  /** Calls awaiting their reply, by serial. */
  readonly #replies = new Map<number, PendingCall>();
  readonly #signalListeners = new Set<(msg: Message) => void>();
  #callHandler: ((msg: Message) => void) | undefined;
  #dropOneWay: ((member: string | undefined) => boolean) | undefined;

  private constructor(address: string, options: BusSocketOptions) {
    this.#opts = options;
    this.closed = new Promise((resolve) => (this.#endWith = resolve));
    this.ready = this.#connect(address);
    // A failed connect is also reported through `closed`; callers need not await `ready`.
    this.ready.catch(() => {});
  }

  /**
   * Starts connecting to `address` (a D-Bus address: `unix:path=...`).
   * Messages sent before the connection is ready are queued behind Hello.
   */
  static open(address: string, options: BusSocketOptions = {}): BusSocket {
    return new BusSocket(address, options);
  }

  /** Our unique name (`:1.42`); empty until ready. */
  get uniqueName(): string {
    return this.#name;
  }

  /** Whether the connection is over (sending then throws). */
  get ended(): boolean {
    return this.#ended;
  }

  newSerial(): number {
    return this.#serial++;
  }

  /**
   * Bytes queued and not yet handed to the socket: what grows when the bus
   * reads us slower than we send (see {@linkcode sendEncoded}'s `written`).
   */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Sends a message that gets no reply: a signal, a reply, a one-way call. */
  send(msg: Message, written?: () => void): void {
    if (msg.serial === null || msg.serial === undefined) msg.serial = this.newSerial();
    this.sendEncoded(encodeMessage(msg), written);
  }

  /**
   * Sends bytes that are already a whole encoded message, in order with
   * {@linkcode send}. `written` is called once they have left the queue:
   * handed to the socket, or dropped because the connection ended.
   */
  sendEncoded(bytes: Uint8Array, written?: () => void): void {
    if (this.#ended) throw new Error("Cannot send message, the bus connection is closed");
    this.#outbox.push({ bytes, written });
    this.#queuedBytes += bytes.length;
    if (this.#authenticated) this.#flush();
  }

  /**
   * Calls a method; resolves with the reply, rejects with a DBusError: the
   * error reply, or org.freedesktop.DBus.Error.Disconnected. `abort` ends the
   * wait early (its rejection is the call's) and forgets the call. (A call
   * that wants no reply is sent with {@linkcode send}.)
   */
  call(msg: Message, abort?: Promise<never>): Promise<Message> {
    if (msg.type !== MESSAGE_TYPE.methodCall) {
      return Promise.reject(new TypeError("only method calls get replies"));
    }
    if (this.#ended) return Promise.reject(new DBusError(DISCONNECTED, this.#endReason));
    const serial = msg.serial = this.newSerial();
    const reply = new Promise<Message>((resolve, reject) => {
      this.send(msg);
      this.#replies.set(serial, { resolve, reject });
    });
    if (!abort) return reply;
    return Promise.race([reply, abort]).finally(() => this.#replies.delete(serial));
  }

  /** Calls `listener` with every signal that reaches this connection. Returns its removal. */
  onSignal(listener: (msg: Message) => void): () => void {
    this.#signalListeners.add(listener);
    return () => this.#signalListeners.delete(listener);
  }

  /**
   * Hands every method call that reaches this connection to `handler`,
   * which owes each one its reply. Without a handler, calls are refused.
   * A call that wants no reply and whose member `dropOneWay` names is
   * dropped unread: a flood of them costs a header peek each, not a decode.
   */
  serveCalls(
    handler: (msg: Message) => void,
    options: { dropOneWay?: (member: string | undefined) => boolean } = {},
  ): void {
    this.#callHandler = handler;
    this.#dropOneWay = options.dropOneWay;
  }

  /** Closes after writing what is queued (at most `graceMs`); resolves once closed. */
  async close(graceMs = 1000): Promise<void> {
    if (!this.#ended && this.#writing) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([this.#writing, grace]).finally(() => clearTimeout(timer));
    }
    this.#end("closed by us");
    await this.closed;
  }

  async #connect(address: string): Promise<void> {
    try {
      const conn = await Deno.connect({ transport: "unix", path: socketPath(address) });
      if (this.#ended) {
        conn.close();
        throw new Error(this.#endReason);
      }
      this.#conn = conn;
      const rest = await authenticate(conn);
      const hello = this.call(new Message({ ...DBUS_DAEMON, member: "Hello" }));
      // Hello must be the first message: it goes before anything sent meanwhile.
      this.#outbox.unshift(this.#outbox.pop()!);
      this.#authenticated = true;
      this.#flush();
      void this.#readLoop(this.#conn, rest);
      this.#name = String((await hello).body[0]);
    } catch (error) {
      const reason = error instanceof DBusError
        ? `${error.type}: ${error.text}`
        : (error as Error).message;
      this.#end(reason);
      throw new Error(this.#endReason);
    }
  }

  #flush(): void {
    this.#writing ??= (async () => {
      let writing: Queued[] = [];
      try {
        while (this.#outbox.length && !this.#ended) {
          writing = this.#outbox.splice(0);
          const bytes = writing.map((q) => q.bytes);
          await writeAll(this.#conn!, bytes.length === 1 ? bytes[0]! : concat(...bytes));
          this.#written(writing.splice(0));
        }
      } catch (error) {
        this.#end(`cannot write to the bus: ${(error as Error).message}`);
      } finally {
        this.#written(writing);
        this.#writing = undefined;
      }
    })();
  }

  async #readLoop(conn: Deno.UnixConn, start: Uint8Array): Promise<void> {
    // Reads are kept as they come and joined only once the next message is
    // whole: joining at every read would copy a large reply (stafd's log
    // pages) over and over, quadratic in its size.
    let parts = [start];
    let size = start.length;
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        if (size >= bytesWanted(parts[0]!, size)) {
          const rest = this.#dispatchWhole(parts.length === 1 ? parts[0]! : concat(...parts));
          parts = [rest];
          size = rest.length;
        }
        if (this.#ended) return;
        const n = await conn.read(chunk);
        if (n === null) return this.#end("the bus closed the connection");
        parts.push(chunk.slice(0, n));
        size += n;
      }
    } catch (error) {
      this.#end(
        this.#ended ? this.#endReason : `reading from the bus: ${(error as Error).message}`,
      );
    }
  }

  /** Dispatches every whole message at the start of `bytes`; returns the rest. */
  #dispatchWhole(bytes: Uint8Array): Uint8Array {
    let offset = 0;
    while (bytes.length - offset >= FIXED_HEADER && !this.#ended) {
      const size = messageSize(bytes.subarray(offset));
      if (size === undefined) {
        this.#end("the bus sent a message that is not D-Bus");
        break;
      }
      if (bytes.length - offset < size) break;
      this.#dispatch(bytes.subarray(offset, offset + size));
      offset += size;
    }
    return offset === 0 ? bytes : bytes.slice(offset);
  }

  #dispatch(bytes: Uint8Array): void {
    if (
      this.#dropOneWay && bytes[1] === MESSAGE_TYPE.methodCall && bytes[2]! & NO_REPLY_EXPECTED &&
      this.#dropOneWay(peekMember(bytes))
    ) return;
    let msg: Message;
    try {
      msg = decodeMessage(bytes);
    } catch (error) {
      this.#opts.onBadMessage?.(`undecodable message dropped: ${(error as Error).message}`);
      return;
    }
    switch (msg.type) {
      case MESSAGE_TYPE.methodReturn:
      case MESSAGE_TYPE.error: {
        const serial = Number(msg.replySerial);
        const pending = this.#replies.get(serial);
        this.#replies.delete(serial);
        if (msg.type === MESSAGE_TYPE.methodReturn) pending?.resolve(msg);
        else pending?.reject(errorOf(msg));
        return;
      }
      case MESSAGE_TYPE.signal:
        for (const listener of [...this.#signalListeners]) this.#guard(() => listener(msg));
        return;
      case MESSAGE_TYPE.methodCall:
        if (this.#callHandler) return this.#guard(() => this.#callHandler!(msg));
        if (!(msg.flags & NO_REPLY_EXPECTED)) {
          this.#guard(() =>
            this.send(newErrorReply(
              msg,
              "org.freedesktop.DBus.Error.UnknownObject",
              "this connection serves no objects",
            ))
          );
        }
    }
  }

  /** Settles the accounting of messages that left the queue. */
  #written(queued: Queued[]): void {
    for (const { bytes, written } of queued) {
      this.#queuedBytes -= bytes.length;
      if (written) this.#guard(written);
    }
  }

  #guard(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.#opts.onBadMessage?.(`handling a message failed: ${(error as Error).message}`);
    }
  }

  #end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endReason = reason;
    this.#written(this.#outbox.splice(0));
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    for (const pending of this.#replies.values()) {
      pending.reject(new DBusError(DISCONNECTED, reason));
    }
    this.#replies.clear();
    this.#endWith(reason);
  }
}

/**
 * SASL EXTERNAL with our uid on a fresh connection to a bus, then BEGIN;
 * returns what the bus sent after its OK line (the start of the message
 * stream). Throws with the bus's answer if it refuses.
 */
export async function authenticate(conn: Deno.Conn): Promise<Uint8Array> {
  const uid = Deno.uid() ?? 0;
  const hexUid = Array.from(new TextEncoder().encode(String(uid)), (b) => b.toString(16))
    .join("");
  await writeAll(conn, new TextEncoder().encode(`\0AUTH EXTERNAL ${hexUid}\r\n`));
  let received = new Uint8Array(0);
  for (;;) {
    const end = received.indexOf(0x0a);
    if (end >= 0) {
      const line = new TextDecoder().decode(received.subarray(0, end)).trim();
      if (!line.startsWith("OK ")) {
        throw new Error(`the bus refused authentication (${line.slice(0, 200)})`);
      }
      await writeAll(conn, new TextEncoder().encode("BEGIN\r\n"));
      return received.slice(end + 1);
    }
    if (received.length > 4096) throw new Error("the bus sent no authentication answer");
    const chunk = new Uint8Array(512);
    const n = await conn.read(chunk);
    if (n === null) throw new Error("the bus closed the connection during authentication");
    received = concat(received, chunk.subarray(0, n));
  }
}

interface Queued {
  bytes: Uint8Array;
  written?: () => void;
}

interface PendingCall {
  resolve(reply: Message): void;
  reject(error: Error): void;
}

/** The DBusError an error reply stands for. */
function errorOf(reply: Message): Error {
  const text = typeof reply.body[0] === "string" ? reply.body[0] : "";
  try {
    return new DBusError(reply.errorName, text, reply);
  } catch {
    // dbus-next refuses error names it deems invalid; the text still says what happened.
    return new Error(`${String(reply.errorName).slice(0, 255)}: ${text}`);
  }
}

/**
 * How many bytes to gather before dispatching: the whole next message once
 * its fixed header is in `first` (0, dispatch at once, if it is not D-Bus),
 * else its fixed header. `size` is what is buffered in all.
 */
function bytesWanted(first: Uint8Array, size: number): number {
  if (first.length >= FIXED_HEADER) return messageSize(first) ?? 0;
  return size >= FIXED_HEADER ? 0 : FIXED_HEADER;
}

/** The size of the message starting `bytes` (at least 16 bytes), or undefined if it is not one. */
export function messageSize(bytes: Uint8Array): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, FIXED_HEADER);
  const endian = bytes[0];
  if (endian !== 0x6c && endian !== 0x42) return undefined; // 'l' or 'B'
  const little = endian === 0x6c;
  const body = view.getUint32(4, little);
  const fields = view.getUint32(12, little);
  const size = FIXED_HEADER + Math.ceil(fields / 8) * 8 + body;
  return size > MAX_MESSAGE ? undefined : size;
}

const MEMBER_FIELD = 3;

/**
 * The member named in the header of the whole message `bytes`, read without
 * decoding it; undefined if there is none or the header holds a field of a
 * type no standard field has (the caller then decodes as usual).
 */
export function peekMember(bytes: Uint8Array): string | undefined {
  try {
    return memberOf(bytes);
  } catch {
    return undefined; // a length running past the end: for the decoder to refuse
  }
}

function memberOf(bytes: Uint8Array): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const little = bytes[0] === 0x6c;
  const end = FIXED_HEADER + view.getUint32(12, little);
  if (end > bytes.length) return undefined;
  const align = (at: number, n: number) => Math.ceil(at / n) * n;
  // Each field: struct (8-aligned) of a code byte and a variant: signature, then value.
  for (let at = FIXED_HEADER; at < end; at = align(at, 8)) {
    const code = bytes[at]!;
    if (bytes[at + 1] !== 1) return undefined; // a one-letter signature, as standard fields have
    const type = String.fromCharCode(bytes[at + 2]!);
    at += 4;
    if (type === "s" || type === "o") {
      at = align(at, 4);
      const length = view.getUint32(at, little);
      if (code === MEMBER_FIELD) {
        return new TextDecoder().decode(bytes.subarray(at + 4, at + 4 + length));
      }
      at += 4 + length + 1;
    } else if (type === "g") at += bytes[at]! + 2;
    else if (type === "u") at = align(at, 4) + 4;
    else return undefined;
  }
  return undefined;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}
