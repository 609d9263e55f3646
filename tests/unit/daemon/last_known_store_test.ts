import assert from "node:assert/strict";
import {
  decodeLastKnown,
  encodeLastKnown,
  fileStore,
  LAST_KNOWN_FILE,
  type LastKnownEntry,
} from "../../../lib/daemon/last_known_store.ts";
import { makeTid, type TransportId } from "../../../lib/core/transport_id.ts";
import { HOSTNQN, SUBNQN } from "../fakes.ts";

const KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";

const tid = (traddr: string, over: Partial<TransportId> = {}): TransportId => ({
  ...makeTid({ transport: "tcp", traddr, trsvcid: "4420", subsysnqn: SUBNQN }, {
    hostNqn: HOSTNQN,
  }),
  ...over,
});

const ENTRIES: LastKnownEntry[] = [
  { tid: tid("10.0.0.1"), origin: "configured", device: "nvme0" },
  {
    tid: tid("fd00::2", { hostIface: "eth1", hostTraddr: "fd00::1" }),
    origin: "discovered",
    device: undefined,
  },
  {
    tid: tid("nn-0x1:pn-0x2", { transport: "fc", trsvcid: "", hostTraddr: "nn-0x3:pn-0x4" }),
    origin: "audited",
    device: "nvme12",
  },
];

/** One valid controller record as the file holds it. */
const record = (over: Record<string, unknown> = {}) => ({
  transport: "tcp",
  traddr: "10.0.0.1",
  trsvcid: "4420",
  subsysnqn: SUBNQN,
  hostTraddr: "",
  hostIface: "",
  hostNqn: HOSTNQN,
  origin: "configured",
  device: "nvme0",
  ...over,
});
const file = (controllers: unknown, version: unknown = 1) =>
  JSON.stringify({ version, controllers });

Deno.test("encodeLastKnown() and decodeLastKnown() round-trip every field and origin", () => {
  const { entries, dropped } = decodeLastKnown(encodeLastKnown(ENTRIES));
  assert.equal(dropped, 0);
  assert.deepEqual(entries, ENTRIES);
});

Deno.test("encodeLastKnown() writes a versioned JSON document ending with a newline", () => {
  const text = encodeLastKnown(ENTRIES.slice(0, 1));
  assert.ok(text.endsWith("}\n"));
  assert.deepEqual(JSON.parse(text), { version: 1, controllers: [record()] });
});

Deno.test("encodeLastKnown() of no controllers decodes to no controllers", () => {
  assert.deepEqual(decodeLastKnown(encodeLastKnown([])), { entries: [], dropped: 0 });
});

Deno.test("encodeLastKnown() writes only identity, origin and device: never a key", () => {
  // A caller handing in more than a TransportId (say a config entry) must not leak it.
  const leaky = {
    ...tid("10.0.0.1"),
    dhchapSecret: KEY,
    dhchapCtrlSecret: KEY,
    request: { host: { dhchapKey: KEY } },
  } as TransportId;
  const text = encodeLastKnown([{ tid: leaky, origin: "configured" }]);
  assert.ok(!text.includes("DHHC-1"), text);
  assert.deepEqual(Object.keys(JSON.parse(text).controllers[0]), [
    "transport",
    "traddr",
    "trsvcid",
    "subsysnqn",
    "hostTraddr",
    "hostIface",
    "hostNqn",
    "origin",
    "device",
  ]);
});

Deno.test("decodeLastKnown() never throws on a malformed file and says it dropped it", () => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  const texts = [
    "",
    "{",
    "\x00\xff",
    "null",
    "5",
    '"text"',
    "[]",
    deep,
    "{}",
    '{"version":1}',
    '{"version":1,"controllers":{}}',
    '{"version":1,"controllers":"nvme0"}',
    file([record()], 2),
    file([record()], "1"),
    '{"__proto__":{"version":1},"controllers":[]}',
  ];
  for (const text of texts) {
    assert.deepEqual(
      decodeLastKnown(text),
      { entries: [], dropped: 1 },
      JSON.stringify(text.slice(0, 40)),
    );
  }
});

Deno.test("decodeLastKnown() drops malformed entries one by one and keeps the valid ones", () => {
  const { entries, dropped } = decodeLastKnown(file([
    null,
    5,
    "nvme0",
    [],
    record({ traddr: undefined }),
    record({ trsvcid: 4420 }),
    record({ hostNqn: null }),
    record({ origin: "stafd" }),
    record({ origin: undefined }),
    record({ traddr: "10.0.0.9" }),
  ]));
  assert.equal(dropped, 9);
  assert.deepEqual(entries.map((e) => e.tid.traddr), ["10.0.0.9"]);
});

Deno.test("decodeLastKnown() reads an empty or odd device as no device", () => {
  const { entries } = decodeLastKnown(file([
    record({ device: "" }),
    record({ device: 3 }),
    record({ device: undefined }),
    record({ device: "nvme7" }),
  ]));
  assert.deepEqual(entries.map((e) => e.device), [undefined, undefined, undefined, "nvme7"]);
});

Deno.test("decodeLastKnown() keeps only the identity fields of a record", () => {
  const { entries } = decodeLastKnown(file([record({ dhchapSecret: KEY, extra: { a: 1 } })]));
  assert.deepEqual(Object.keys(entries[0]!.tid).sort(), [
    "hostIface",
    "hostNqn",
    "hostTraddr",
    "subsysnqn",
    "traddr",
    "transport",
    "trsvcid",
  ]);
});

Deno.test("fileStore() creates the runtime directory 0700 and writes the file 0600", async () => {
  const base = await Deno.makeTempDir({ prefix: "stacd-last-known-" });
  try {
    const dir = `${base}/run/stacd`;
    const store = fileStore(dir);
    assert.equal(store.path, `${dir}/${LAST_KNOWN_FILE}`);
    assert.equal(await store.load(), undefined, "a missing file is no file, not an error");
    const text = encodeLastKnown(ENTRIES);
    await store.save(text);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(store.path)).mode! & 0o777, 0o600);
    assert.equal(await store.load(), text);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, [LAST_KNOWN_FILE], "no temporary file left behind");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("fileStore() replaces a file others could read with a 0600 one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stacd-last-known-" });
  try {
    const store = fileStore(dir);
    await Deno.writeTextFile(store.path, "old", { mode: 0o644 });
    await Deno.chmod(store.path, 0o644);
    await store.save(encodeLastKnown([]));
    assert.equal((await Deno.stat(store.path)).mode! & 0o777, 0o600);
    assert.deepEqual(decodeLastKnown((await store.load())!), { entries: [], dropped: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fileStore() never writes through a symlink planted in its temporary file's place", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stacd-last-known-" });
  try {
    const store = fileStore(dir);
    await Deno.writeTextFile(`${dir}/victim`, "precious\n");
    await Deno.symlink(`${dir}/victim`, `${store.path}.${Deno.pid}.tmp`);
    const text = encodeLastKnown(ENTRIES);
    await store.save(text);
    assert.equal(await Deno.readTextFile(`${dir}/victim`), "precious\n");
    assert.ok((await Deno.lstat(store.path)).isFile, "the saved file is a file, not the link");
    assert.equal(await store.load(), text);
    assert.equal((await Deno.stat(store.path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
