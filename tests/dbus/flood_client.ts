/**
 * A hostile local D-Bus client, run as its own process (as nobody in the
 * fault campaign): it calls stacd's list_controllers(true) as fast as it
 * can write for SECONDS, in one of two ways:
 *
 *   flood      every call flagged NO_REPLY_EXPECTED (costs the caller nothing)
 *   nonreader  every call wants its reply, and it never reads one
 *
 *   deno run -A tests/dbus/flood_client.ts SOCKET_PATH flood|nonreader SECONDS
 *
 * Speaks the wire protocol on a raw socket (a client library would read).
 * Prints one JSON line: {"sent": N} (calls written before the time was up).
 */
import { authenticate, DBUS_DAEMON } from "../../lib/dbus/bus_socket.ts";
import { encodeMessage, Message, NO_REPLY_EXPECTED } from "../../lib/dbus/message.ts";
import { STAC_BUS_NAME, STAC_INTERFACE, STAC_OBJECT_PATH } from "../../lib/dbus/idl.ts";

/** Calls per write: enough that the writes, not this loop, set the pace. */
const BATCH = 256;
/** Where a message's serial is (fixed header: 4 bytes, body length, serial). */
const SERIAL_AT = 8;

/** A list_controllers(true) call to stacd (its serial still to set). */
export function listControllersCall(flags = 0): Message {
  return new Message({
    destination: STAC_BUS_NAME,
    path: STAC_OBJECT_PATH,
    interface: STAC_INTERFACE,
    member: "list_controllers",
    signature: "b",
    body: [true],
    flags,
  });
}

function encoded(serial: number, msg: Message): Uint8Array {
  msg.serial = serial;
  return encodeMessage(msg);
}

async function main(socketPath: string, mode: string, seconds: number): Promise<void> {
  const conn = await Deno.connect({ transport: "unix", path: socketPath });
  await authenticate(conn);
  // Hello's reply is never read either: the bus names us all the same.
  await conn.write(encoded(1, new Message({ ...DBUS_DAEMON, member: "Hello" })));
  const call = encoded(2, listControllersCall(mode === "flood" ? NO_REPLY_EXPECTED : 0));
  const batch = new Uint8Array(call.length * BATCH);
  const view = new DataView(batch.buffer);
  let serial = 2;
  let sent = 0;
  const end = Date.now() + seconds * 1000;
  // A write the bus no longer takes (it stopped reading us) ends the run too.
  const timeUp = new Promise<void>((resolve) => setTimeout(resolve, seconds * 1000));
  const writing = (async () => {
    while (Date.now() < end) {
      for (let i = 0; i < BATCH; i++) {
        batch.set(call, i * call.length);
        view.setUint32(i * call.length + SERIAL_AT, serial++, true);
      }
      for (let at = 0; at < batch.length;) at += await conn.write(batch.subarray(at));
      sent += BATCH;
    }
  })();
  await Promise.race([writing, timeUp]).catch(() => {});
  console.log(JSON.stringify({ sent }));
  Deno.exit(0);
}

if (import.meta.main) {
  const [socketPath, mode, seconds] = Deno.args;
  if (!socketPath || !["flood", "nonreader"].includes(mode ?? "") || !Number(seconds)) {
    console.error("usage: flood_client.ts SOCKET_PATH flood|nonreader SECONDS");
    Deno.exit(2);
  }
  await main(socketPath, mode!, Number(seconds));
}
