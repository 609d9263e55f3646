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
import { createRequire } from "node:module";
import { Message } from "../../lib/dbus/bus_connection.ts";

// dbus-next's own encoder for the calls (they are small, and built before timing starts).
const { marshallMessage } = createRequire(import.meta.url)("dbus-next/lib/marshall-compat.js") as {
  marshallMessage(msg: Message): [Uint8Array, unknown[]];
};

const METHOD_RETURN = 2;
const ERROR = 3;

function call(serial: number, spec: Record<string, unknown>): Uint8Array {
  const msg = new Message(spec);
  msg.serial = serial;
  return new Uint8Array(marshallMessage(msg)[0]);
}

/** Reads whole messages from the socket; little-endian only (what dbus-daemon sends us). */
class Reader {
  #buf = new Uint8Array(1 << 20);
  #len = 0;
  constructor(readonly conn: Deno.Conn) {}

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

  async line(): Promise<string> {
    for (;;) {
      const end = this.#buf.subarray(0, this.#len).indexOf(0x0a);
      if (end >= 0) {
        const text = new TextDecoder().decode(this.#buf.subarray(0, end + 1));
        this.#consume(end + 1);
        return text;
      }
      await this.#fill();
    }
  }

  /** The next message's type and total size. */
  async message(): Promise<{ type: number; size: number }> {
    while (this.#len < 16) await this.#fill();
    const view = new DataView(this.#buf.buffer, 0, 16);
    const fields = view.getUint32(12, true);
    const size = 16 + Math.ceil(fields / 8) * 8 + view.getUint32(4, true);
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
  const reader = new Reader(conn);
  const write = async (data: Uint8Array | string) => {
    let bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    while (bytes.length > 0) bytes = bytes.subarray(await conn.write(bytes));
  };
  const uidHex = [...String(Deno.uid())].map((c) => c.charCodeAt(0).toString(16)).join("");
  await write(`\0AUTH EXTERNAL ${uidHex}\r\n`);
  const ok = await reader.line();
  if (!ok.startsWith("OK")) throw new Error(`authentication refused: ${ok.trim()}`);
  await write("BEGIN\r\n");
  await write(call(1, {
    destination: "org.freedesktop.DBus",
    path: "/org/freedesktop/DBus",
    interface: "org.freedesktop.DBus",
    member: "Hello",
  }));
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
