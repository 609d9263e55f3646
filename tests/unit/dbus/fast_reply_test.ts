/**
 * lib/dbus/fast_reply.ts writes exactly the bytes dbus-next's marshaller
 * writes for the same method return (random inputs: unicode, empty strings,
 * empty dicts, many entries), and a real dbus-daemon, busctl (sd-bus) and
 * dbus-next decode its replies to what the model returned.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { connectSystemBus, Message } from "../../../lib/dbus/bus_connection.ts";
import { encodeMethodReturn } from "../../../lib/dbus/fast_reply.ts";
import { fakeStacModel } from "../../dbus/fake_stac_model.ts";
import { busctl, hasCommand, stacCall, startStacFixture } from "../../dbus/stac_fixture.ts";
import { seededRandom } from "../../seeded_random.ts";

// What dbus-next's connection calls to put a Message on the wire (not exported by its index).
const { marshallMessage } = createRequire(import.meta.url)("dbus-next/lib/marshall-compat.js") as {
  marshallMessage(msg: Message): [Uint8Array, unknown[]];
};

/** dbus-next's bytes for the reply that `bus.send(Message.newMethodReturn(...))` would write. */
function dbusNextBytes(call: Message, serial: number, signature: string, value: unknown) {
  const reply = Message.newMethodReturn(call, signature, [value]);
  reply.serial = serial;
  return new Uint8Array(marshallMessage(reply)[0]);
}

// Pieces of 1 to 4 UTF-8 bytes, a lone surrogate (encoded as U+FFFD by both) and control characters.
const PIECES = ["a", "Z", "9", " ", ".", "=", ";", "é", "ß", "日本", "€", "🚀", "👩‍💻", "e\u0301"];
PIECES.push("\ud800", "\udfff", "\t", "\n", "\u0001", "\u007f");
/** A noncharacter: valid UTF-8 that sd-bus (busctl) refuses, so it is left out of the round trip. */
const NONCHARACTER = "\u{10ffff}";

function randomString(next: () => number, maxPieces: number, pieces = [...PIECES, NONCHARACTER]) {
  const n = Math.floor(next() ** 2 * (maxPieces + 1)); // short strings (and "") are frequent
  let s = "";
  for (let i = 0; i < n; i++) s += pieces[Math.floor(next() * pieces.length)];
  return s;
}

function randomDicts(next: () => number, maxDicts: number, maxEntries: number) {
  return Array.from({ length: Math.floor(next() * (maxDicts + 1)) }, () => {
    const dict: Record<string, string> = {};
    const entries = Math.floor(next() * (maxEntries + 1));
    for (let i = 0; i < entries; i++) dict[randomString(next, 12)] = randomString(next, 40);
    return dict;
  });
}

function randomCall(next: () => number): Message {
  const call = new Message({
    type: 1,
    path: "/org/nvmexpress/stac",
    member: "list_controllers",
    // Unique names of every length, so the fields after it start at every alignment.
    sender: next() < 0.05 ? undefined : `:1.${Math.floor(next() * 10 ** (1 + next() * 7))}`,
  });
  call.serial = 1 + Math.floor(next() * 0xfffffffe);
  return call;
}

Deno.test("encodeMethodReturn(aa{ss}) writes dbus-next's bytes for 500 random replies", () => {
  const next = seededRandom(20261127);
  for (let round = 0; round < 500; round++) {
    const call = randomCall(next);
    const serial = 1 + Math.floor(next() * 0xfffffffe);
    const value = randomDicts(next, 12, 10);
    assert.deepEqual(
      encodeMethodReturn(call, serial, "aa{ss}", value),
      dbusNextBytes(call, serial, "aa{ss}", value),
      `round ${round}: ${JSON.stringify(value)}`,
    );
  }
});

Deno.test("encodeMethodReturn(s) writes dbus-next's bytes for 500 random strings", () => {
  const next = seededRandom(42);
  for (let round = 0; round < 500; round++) {
    const call = randomCall(next);
    const value = randomString(next, 400);
    assert.deepEqual(
      encodeMethodReturn(call, round + 1, "s", value),
      dbusNextBytes(call, round + 1, "s", value),
      `round ${round}: ${JSON.stringify(value)}`,
    );
  }
});

Deno.test("encodeMethodReturn(aa{ss}) matches dbus-next for 1,000 dicts of 19 entries and for []", () => {
  const next = seededRandom(7);
  const big = Array.from({ length: 1000 }, (_, i) => {
    const dict: Record<string, string> = { device: `nvme${i}` };
    for (let k = 0; k < 18; k++) dict[`key ${k}`] = randomString(next, 30);
    return dict;
  });
  const call = randomCall(next);
  for (const value of [big, [], [{}], [{}, { "": "" }]]) {
    assert.deepEqual(
      encodeMethodReturn(call, 3, "aa{ss}", value),
      dbusNextBytes(call, 3, "aa{ss}", value),
    );
  }
});

Deno.test("encodeMethodReturn() refuses what dbus-next refuses: NUL, non-strings, other shapes", () => {
  const call = randomCall(seededRandom(1));
  assert.throws(() => encodeMethodReturn(call, 1, "s", "a\0b"), TypeError);
  assert.throws(() => encodeMethodReturn(call, 1, "aa{ss}", [{ k: "a\0" }]), TypeError);
  assert.throws(() => encodeMethodReturn(call, 1, "aa{ss}", [{ k: 1 }]), TypeError);
  assert.throws(() => encodeMethodReturn(call, 1, "aa{ss}", [null]), TypeError);
  assert.throws(() => encodeMethodReturn(call, 1, "aa{ss}", {}), TypeError);
  assert.throws(() => encodeMethodReturn(call, 1, "as", []), TypeError);
});

Deno.test({
  name:
    "list_controllers(true) of 1,000 unicode dicts crosses a real dbus-daemon to busctl and dbus-next intact",
  ignore: !hasCommand("dbus-daemon") || !hasCommand("busctl"),
  async fn() {
    const next = seededRandom(99);
    const controllers = Array.from({ length: 1000 }, (_, i) => {
      const dict: Record<string, string> = { device: `nvme${i}`, empty: "" };
      for (let k = 0; k < 17; k++) {
        dict[`k${k}${randomString(next, 3, PIECES)}`] = randomString(next, 30, PIECES);
      }
      return dict;
    });
    const model = { ...fakeStacModel(), listControllers: () => controllers };
    // A lone surrogate travels as U+FFFD (UTF-8 has no encoding for it).
    const expected = controllers.map((c) =>
      Object.fromEntries(Object.entries(c).map(([k, v]) => [k.toWellFormed(), v.toWellFormed()]))
    );
    await using f = await startStacFixture(model);

    const ran = await busctl(f.bus, stacCall("list_controllers", ["b", "true"]));
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual(JSON.parse(ran.stdout), { type: "aa{ss}", data: [expected] });

    const client = await connectSystemBus({ address: f.bus.address });
    try {
      const reply = await client.call({
        destination: "org.nvmexpress.stac",
        path: "/org/nvmexpress/stac",
        interface: "org.nvmexpress.stac",
        member: "list_controllers",
        signature: "b",
        body: [true],
      });
      assert.equal(reply.signature, "aa{ss}");
      assert.deepEqual(reply.body, [expected]);
    } finally {
      await client.close();
    }
  },
});
