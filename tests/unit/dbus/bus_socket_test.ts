/**
 * lib/dbus/bus_socket.ts against a scripted bus on a unix socket: the cases
 * a real dbus-daemon does not produce on demand (refused authentication,
 * messages cut at any byte, a big-endian peer, an undecodable message, a
 * frame that is not D-Bus, a bus that goes away mid-call). The daemon's own
 * tests (dbus_*_test.ts, stafd_follower_test.ts) run it against dbus-daemon.
 */
import assert from "node:assert/strict";
import { BusSocket, DISCONNECTED, peekMember, socketPath } from "../../../lib/dbus/bus_socket.ts";
import { decodeMessage, encodeMessage, Message } from "../../../lib/dbus/message.ts";
import { listControllersCall } from "../../dbus/flood_client.ts";

/** The bus side of one connection: authentication done, messages read one by one. */
interface Peer {
  /** The next whole message the client sent. */
  next(): Promise<Message>;
  write(bytes: Uint8Array): Promise<void>;
  /** Answers `call` with a method return carrying `body` (signature `signature`). */
  reply(call: Message, signature?: string, body?: unknown[]): Promise<void>;
  close(): void;
}

/** A one-connection bus at a fresh socket; `auth` is its answer to AUTH. */
async function scriptedBus(
  serve: (peer: Peer) => Promise<void>,
  auth = "OK 0123456789abcdef0123456789abcdef",
): Promise<{ address: string; done: Promise<void>; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-bus-socket-" });
  const listener = Deno.listen({ transport: "unix", path: `${dir}/bus` });
  const done = (async () => {
    const conn = await listener.accept();
    let buffered = new Uint8Array(0);
    const more = async () => {
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk);
      if (n === null) throw new Error("client closed");
      buffered = concat(buffered, chunk.subarray(0, n));
    };
    const line = async () => {
      for (;;) {
        const end = buffered.indexOf(0x0a);
        if (end >= 0) {
          const text = new TextDecoder().decode(buffered.subarray(0, end));
          buffered = buffered.slice(end + 1);
          return text;
        }
        await more();
      }
    };
    assert.match(await line(), /^\0AUTH EXTERNAL [0-9a-f]+\r$/);
    await conn.write(new TextEncoder().encode(`${auth}\r\n`));
    if (!auth.startsWith("OK")) return conn.close();
    assert.equal(await line(), "BEGIN\r");
    const peer: Peer = {
      async next() {
        for (;;) {
          if (buffered.length >= 16) {
            const view = new DataView(buffered.buffer, buffered.byteOffset);
            const size = 16 + Math.ceil(view.getUint32(12, true) / 8) * 8 + view.getUint32(4, true);
            if (buffered.length >= size) {
              const msg = decodeMessage(buffered.subarray(0, size));
              buffered = buffered.slice(size);
              return msg;
            }
          }
          await more();
        }
      },
      async write(bytes) {
        for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
      },
      reply: (call, signature = "", body = []) => {
        const reply = Message.newMethodReturn(call, signature, body);
        reply.serial = 1000 + call.serial!;
        return peer.write(encodeMessage(reply));
      },
      close: () => conn.close(),
    };
    const hello = await peer.next();
    assert.equal(hello.member, "Hello", "Hello comes first");
    await peer.reply(hello, "s", [":1.7"]);
    await serve(peer);
  })().finally(() => listener.close());
  return {
    address: `unix:path=${dir}/bus`,
    done,
    async [Symbol.asyncDispose]() {
      await done.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * A message without a body, written byte by byte: the fixed header (either
 * byte order, protocol version 1, no flags) and `fields` (a multiple of 8
 * bytes) as its header fields.
 */
function rawMessage(
  o: { little: boolean; type: number; serial: number; fields: Uint8Array },
): Uint8Array {
  const msg = new Uint8Array(16 + o.fields.length);
  const view = new DataView(msg.buffer);
  msg.set([o.little ? 0x6c : 0x42, o.type, 0, 1]);
  view.setUint32(4, 0, o.little);
  view.setUint32(8, o.serial, o.little);
  view.setUint32(12, o.fields.length, o.little);
  msg.set(o.fields, 16);
  return msg;
}

const ping = (member = "Ping") =>
  new Message({ destination: "org.example", path: "/", interface: "org.example", member });

Deno.test("socketPath() takes the first unix:path= entry and refuses the rest", () => {
  assert.equal(socketPath("unix:path=/run/dbus/system_bus_socket"), "/run/dbus/system_bus_socket");
  assert.equal(socketPath("tcp:host=h,port=1;unix:guid=ab,path=/a%20b/s"), "/a b/s");
  assert.throws(() => socketPath("unix:abstract=/x"), /no unix:path= entry/);
});

Deno.test("a refused authentication fails ready and closed with the bus's answer", async () => {
  await using bus = await scriptedBus(() => Promise.resolve(), "REJECTED EXTERNAL");
  const socket = BusSocket.open(bus.address);
  await assert.rejects(socket.ready, /the bus refused authentication \(REJECTED EXTERNAL\)/);
  assert.match(await socket.closed, /refused authentication/);
});

Deno.test("a missing socket fails ready with the system's reason", async () => {
  const socket = BusSocket.open("unix:path=/nonexistent/bus");
  await assert.rejects(socket.ready, /No such file or directory/);
  assert.equal(socket.ended, true);
});

Deno.test("messages sent before ready go out after Hello, in order; replies cut at every byte arrive whole", async () => {
  await using bus = await scriptedBus(async (peer) => {
    const first = await peer.next();
    const second = await peer.next();
    assert.deepEqual([first.member, second.member], ["First", "Second"]);
    const a = Message.newMethodReturn(first, "s", ["one"]);
    a.serial = 50;
    const b = Message.newMethodReturn(second, "as", [["two", "three"]]);
    b.serial = 51;
    // Both replies in one stream, written a byte at a time.
    const bytes = concat(encodeMessage(a), encodeMessage(b));
    for (let i = 0; i < bytes.length; i++) await peer.write(bytes.subarray(i, i + 1));
  });
  const socket = BusSocket.open(bus.address);
  const first = socket.call(ping("First"));
  const second = socket.call(ping("Second"));
  await socket.ready;
  assert.equal(socket.uniqueName, ":1.7");
  assert.deepEqual((await first).body, ["one"]);
  assert.deepEqual((await second).body, [["two", "three"]]);
  await socket.close();
  await bus.done;
});

Deno.test("a 16 MB reply arriving over hundreds of reads is read whole, and the next one after it", async () => {
  const big = "x".repeat(16 * 1024 * 1024);
  await using bus = await scriptedBus(async (peer) => {
    const first = await peer.next();
    const second = await peer.next();
    const a = Message.newMethodReturn(first, "s", [big]);
    a.serial = 60;
    const b = Message.newMethodReturn(second, "s", ["small"]);
    b.serial = 61;
    const bytes = concat(encodeMessage(a), encodeMessage(b));
    for (let at = 0; at < bytes.length; at += 100_000) {
      await peer.write(bytes.subarray(at, at + 100_000));
    }
  });
  const socket = BusSocket.open(bus.address);
  const [first, second] = await Promise.all([socket.call(ping("A")), socket.call(ping("B"))]);
  assert.equal((first.body[0] as string).length, big.length);
  assert.equal(first.body[0], big);
  assert.deepEqual(second.body, ["small"]);
  await socket.close();
});

Deno.test("a big-endian reply is framed and read like a little-endian one", async () => {
  await using bus = await scriptedBus(async (peer) => {
    const call = await peer.next();
    // One header field: REPLY_SERIAL, variant "u", big-endian.
    const fields = new Uint8Array([5, 1, 0x75, 0, 0, 0, 0, 0]);
    new DataView(fields.buffer).setUint32(4, call.serial!, false);
    await peer.write(rawMessage({ little: false, type: 2, serial: 9, fields }));
  });
  const socket = BusSocket.open(bus.address);
  const reply = await socket.call(ping());
  assert.equal(reply.serial, 9);
  assert.deepEqual(reply.body, []);
  await socket.close();
});

Deno.test("an undecodable message is dropped and reported; the connection goes on", async () => {
  await using bus = await scriptedBus(async (peer) => {
    const call = await peer.next();
    // A well-framed signal whose header field claims a signature it does not carry.
    const fields = new Uint8Array([8, 1, 0x67, 0, 0xff, 0x41, 0x41, 0x41]);
    await peer.write(rawMessage({ little: true, type: 4, serial: 3, fields }));
    await peer.reply(call, "s", ["still here"]);
  });
  const problems: string[] = [];
  const socket = BusSocket.open(bus.address, { onBadMessage: (why) => problems.push(why) });
  assert.deepEqual((await socket.call(ping())).body, ["still here"]);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^undecodable message dropped: /);
  await socket.close();
});

Deno.test("a frame that is not D-Bus ends the connection with that reason", async () => {
  await using bus = await scriptedBus(async (peer) => {
    await peer.next();
    await peer.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
  });
  const socket = BusSocket.open(bus.address);
  await assert.rejects(socket.call(ping()), (e: { type?: string }) => e.type === DISCONNECTED);
  assert.equal(await socket.closed, "the bus sent a message that is not D-Bus");
});

Deno.test("the bus going away rejects every pending call with Disconnected, and later calls too", async () => {
  await using bus = await scriptedBus(async (peer) => {
    await peer.next();
    await peer.next();
    peer.close();
  });
  const socket = BusSocket.open(bus.address);
  const calls = [socket.call(ping("A")), socket.call(ping("B"))];
  for (const call of calls) {
    await assert.rejects(
      call,
      (e: { type?: string; text?: string }) =>
        e.type === DISCONNECTED && e.text === "the bus closed the connection",
    );
  }
  await assert.rejects(socket.call(ping()), (e: { type?: string }) => e.type === DISCONNECTED);
  assert.throws(() => socket.send(ping()), /closed/);
});

Deno.test("signals reach their listeners; method calls without a handler are refused", async () => {
  await using bus = await scriptedBus(async (peer) => {
    const signal = Message.newSignal("/org/example", "org.example", "Changed", "u", [7]);
    signal.serial = 70;
    const call = ping("Anybody");
    call.serial = 71;
    await peer.write(concat(encodeMessage(signal), encodeMessage(call)));
    const refusal = await peer.next();
    assert.equal(refusal.errorName, "org.freedesktop.DBus.Error.UnknownObject");
    assert.equal(refusal.replySerial, 71);
  });
  const socket = BusSocket.open(bus.address);
  const seen = Promise.withResolvers<Message>();
  socket.onSignal((msg) => seen.resolve(msg));
  assert.deepEqual((await seen.promise).body, [7]);
  await bus.done;
  await socket.close();
});

Deno.test("peekMember() reads the member from the header, or says it cannot", () => {
  const call = listControllersCall();
  call.serial = 7;
  const bytes = encodeMessage(call);
  assert.equal(peekMember(bytes), "list_controllers");
  const noMember = Message.newMethodReturn(call, "s", ["a reply has no member"]);
  noMember.serial = 8;
  assert.equal(peekMember(encodeMessage(noMember)), undefined);
  // Cut short, or a field length running past the end: no answer, no throw.
  assert.equal(peekMember(bytes.subarray(0, 40)), undefined);
  const broken = bytes.slice();
  new DataView(broken.buffer).setUint32(20, 0xffff_fff0, true); // the path's length
  assert.equal(peekMember(broken), undefined);
});
