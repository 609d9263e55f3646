/**
 * A minimal D-Bus client that times list_controllers(true) as a caller sees
 * it: from writing the call to having the whole reply. It speaks the wire
 * protocol on a raw unix socket (SASL EXTERNAL, Hello, calls) and does not
 * decode the reply's body, so the figure is stacd's and the bus daemon's
 * time, not a client library's. Run as its own process:
 *
 *   deno run -A bench/host/list_client.ts SOCKET_PATH CALLS WARMUP
 *
 * Prints one JSON line: {"ms": [...], "bytes": N}.
 */
import { authenticate, DBUS_DAEMON, messageSize } from "../../lib/dbus/bus_socket.ts";
import { encodeMessage, Message } from "../../lib/dbus/message.ts";

const METHOD_RETURN = 2;
const ERROR = 3;

/** An encoded call (small, and built before timing starts). */
function call(serial: number, spec: Record<string, unknown>): Uint8Array {
  const msg = new Message(spec);
  msg.serial = serial;
  return encodeMessage(msg);
}

/** Reads whole messages from the socket without decoding them. */
class Reader {
  #buf = new Uint8Array(1 << 20);
  #len = 0;
  /** `start`: what the bus sent after authentication. */
  constructor(readonly conn: Deno.Conn, start: Uint8Array) {
    this.#buf.set(start);
    this.#len = start.length;
  }

  async #fill(): Promise<void> {
    if (this.#len === this.#buf.length) {
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf);
      this.#buf = bigger;
    }
    const n = await this.conn.read(this.#buf.subarray(this.#len));
    if (n === null) throw new Error("the bus closed the connection");
    this.#len += n;
  }

  /** The next message's type and total size. */
  async message(): Promise<{ type: number; size: number }> {
    while (this.#len < 16) await this.#fill();
    const size = messageSize(this.#buf);
    if (size === undefined) throw new Error("the bus sent a message that is not D-Bus");
    while (this.#len < size) await this.#fill();
    const type = this.#buf[1]!;
    this.#consume(size);
    return { type, size };
  }

  /** Skips signals (NameAcquired) up to the next reply. */
  async reply(): Promise<number> {
    for (;;) {
      const { type, size } = await this.message();
      if (type === ERROR) throw new Error("the call failed with an error reply");
      if (type === METHOD_RETURN) return size;
    }
  }

  #consume(n: number): void {
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
  }
}

async function main(socketPath: string, calls: number, warmup: number): Promise<void> {
  const conn = await Deno.connect({ transport: "unix", path: socketPath });
  const reader = new Reader(conn, await authenticate(conn));
  const write = async (data: Uint8Array) => {
    let bytes = data;
    while (bytes.length > 0) bytes = bytes.subarray(await conn.write(bytes));
  };
  await write(call(1, { ...DBUS_DAEMON, member: "Hello" }));
  await reader.reply();

  const messages = Array.from({ length: warmup + calls }, (_, i) =>
    call(i + 2, {
      destination: "org.nvmexpress.stac",
      path: "/org/nvmexpress/stac",
      interface: "org.nvmexpress.stac",
      member: "list_controllers",
      signature: "b",
      body: [true],
    }));
  const ms: number[] = [];
  let bytes = 0;
  for (const [i, message] of messages.entries()) {
    const start = performance.now();
    await write(message);
    bytes = await reader.reply();
    if (i >= warmup) ms.push(performance.now() - start);
  }
  conn.close();
  console.log(JSON.stringify({ ms, bytes }));
}

if (import.meta.main) {
  const [socketPath, calls, warmup] = Deno.args;
  await main(socketPath!, Number(calls ?? 30), Number(warmup ?? 3));
}
