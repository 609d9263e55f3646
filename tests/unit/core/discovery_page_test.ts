import assert from "node:assert/strict";
import {
  BadDiscoveryPage,
  decodeDiscoveryPage,
  DISCOVERY_LOG_ENTRY_SIZE,
  DISCOVERY_LOG_HEADER_SIZE,
  recordCount,
} from "../../../lib/core/discovery_page.ts";
import { seededDraws, seedFrom } from "../../seeded_random.ts";

interface RawEntry {
  trtype: number;
  adrfam: number;
  subtype: number;
  treq: number;
  portid: number;
  eflags: number;
  trsvcid: string;
  subnqn: string;
  traddr: string;
  sectype?: number;
}

/** Builds a page the way a target lays it out (little-endian, padded strings). */
export function page(entries: RawEntry[], numrec = entries.length): Uint8Array {
  const bytes = new Uint8Array(
    DISCOVERY_LOG_HEADER_SIZE + entries.length * DISCOVERY_LOG_ENTRY_SIZE,
  );
  const view = new DataView(bytes.buffer);
  view.setBigUint64(8, BigInt(numrec), true);
  const enc = new TextEncoder();
  entries.forEach((e, i) => {
    const b = DISCOVERY_LOG_HEADER_SIZE + i * DISCOVERY_LOG_ENTRY_SIZE;
    view.setUint8(b, e.trtype);
    view.setUint8(b + 1, e.adrfam);
    view.setUint8(b + 2, e.subtype);
    view.setUint8(b + 3, e.treq);
    view.setUint16(b + 4, e.portid, true);
    view.setUint16(b + 6, 0xffff, true);
    view.setUint16(b + 8, 32, true);
    view.setUint16(b + 10, e.eflags, true);
    bytes.fill(0x20, b + 32, b + 64); // trsvcid is space padded
    bytes.set(enc.encode(e.trsvcid), b + 32);
    bytes.set(enc.encode(e.subnqn), b + 256);
    bytes.fill(0x20, b + 512, b + 768);
    bytes.set(enc.encode(e.traddr), b + 512);
    view.setUint8(b + 768, e.sectype ?? 0);
  });
  return bytes;
}

const nvmeEntry: RawEntry = {
  trtype: 3,
  adrfam: 1,
  subtype: 2,
  treq: 2,
  portid: 1,
  eflags: 4,
  trsvcid: "4420",
  subnqn: "nqn.2026-11.io.test:s1",
  traddr: "127.0.0.1",
};

const entries = (bytes: Uint8Array) => decodeDiscoveryPage(bytes).entries;

Deno.test("decodeDiscoveryPage() gives stafd's string form of an NVMe/TCP entry", () => {
  const decoded = decodeDiscoveryPage(page([nvmeEntry]));
  assert.deepEqual(decoded.entries, [{
    trtype: "tcp",
    adrfam: "ipv4",
    subtype: "nvme",
    treq: "not required",
    portid: "1",
    cntlid: "65535",
    asqsz: "32",
    eflags: "4",
    trsvcid: "4420",
    subnqn: "nqn.2026-11.io.test:s1",
    traddr: "127.0.0.1",
    sectype: "none",
  }]);
  assert.deepEqual(decoded.problems, []);
  assert.equal(decoded.numrec, 1);
});

Deno.test("decodeDiscoveryPage() names discovery and referral entries, and a numeric TREQ", () => {
  const [discovery, referral] = entries(page([
    { ...nvmeEntry, subtype: 3, adrfam: 2, traddr: "::1", sectype: 2 },
    { ...nvmeEntry, subtype: 1, trtype: 1, treq: 5 },
  ]));
  assert.equal(discovery?.subtype, "discovery");
  assert.equal(discovery?.adrfam, "ipv6");
  assert.equal(discovery?.sectype, "tls1.3");
  assert.equal(referral?.subtype, "referral");
  assert.equal(referral?.trtype, "rdma");
  assert.equal(referral?.treq, "5");
  assert.equal(referral?.sectype, undefined);
});

Deno.test("decodeDiscoveryPage() skips entries that could never be connected, saying why", () => {
  const decoded = decodeDiscoveryPage(page([
    { ...nvmeEntry, trtype: 9 },
    { ...nvmeEntry, subtype: 7 },
    { ...nvmeEntry, adrfam: 9 },
    { ...nvmeEntry, subnqn: "" },
    { ...nvmeEntry, traddr: "" },
    { ...nvmeEntry, traddr: "10.0.0.1\nforged log line" },
    { ...nvmeEntry, subnqn: "nqn.\u00e9" },
    { ...nvmeEntry, subnqn: `nqn.${"x".repeat(230)}` },
    nvmeEntry,
  ]));
  assert.equal(decoded.entries.length, 1);
  assert.deepEqual(decoded.problems, [
    "entry 0: transport type 9 is unknown; skipped",
    "entry 1: subsystem type 7 is unknown; skipped",
    "entry 2: address family 9 is unknown; skipped",
    "entry 3: subnqn is empty; skipped",
    "entry 4: traddr is empty; skipped",
    "entry 5: traddr holds byte 0x0a; skipped",
    "entry 6: subnqn holds byte 0xc3; skipped",
    "entry 7: subnqn of 234 characters exceeds 223; skipped",
  ]);
});

Deno.test("decodeDiscoveryPage() refuses a header it cannot trust, whole", () => {
  assert.throws(() => decodeDiscoveryPage(new Uint8Array(10)), BadDiscoveryPage);
  assert.throws(
    () => decodeDiscoveryPage(page([nvmeEntry], 2)),
    /claims 2 records, the page holds 1/,
  );
  assert.throws(() => recordCount(page([], 2 ** 40)), /1099511627776 records exceed the limit/);
  const wrongFormat = page([nvmeEntry]);
  new DataView(wrongFormat.buffer).setUint16(16, 1, true);
  assert.throws(() => decodeDiscoveryPage(wrongFormat), /record format 1/);
});

Deno.test("decodeDiscoveryPage() bounds its problem lines", () => {
  const decoded = decodeDiscoveryPage(page(Array(50).fill({ ...nvmeEntry, trtype: 9 })));
  assert.equal(decoded.problems.length, 11);
  assert.equal(decoded.problems.at(-1), "... and 40 more entries skipped");
});

/** A page as Linux 6.1's nvmet sent it (9 records), captured by tests/guest/finder_guest_test.ts. */
const REAL_PAGE = Deno.readFileSync(
  new URL("./testdata/nvmet-6.1-discovery-page.bin", import.meta.url),
);

Deno.test("decodeDiscoveryPage() reads a real nvmet page whole: its own entry and 8 subsystems", () => {
  const decoded = decodeDiscoveryPage(REAL_PAGE);
  assert.deepEqual(decoded.problems, []);
  assert.equal(decoded.numrec, 9);
  assert.deepEqual(decoded.entries.map((e) => e.subtype), ["discovery", ...Array(8).fill("nvme")]);
  for (const e of decoded.entries) {
    assert.deepEqual([e.trtype, e.adrfam, e.traddr, e.trsvcid], [
      "tcp",
      "ipv4",
      "127.0.0.1",
      "4420",
    ]);
  }
  assert.equal(decoded.entries[1]?.subnqn, "nqn.2026-11.io.test:s1");
});

// Mutated pages (a built one and the real one): every byte may be anything.
// The decoder either refuses the page or returns entries whose fields are
// all printable ASCII, never throws anything else, and never keeps more
// entries than the header claims. Replay with STACD_FUZZ_SEED=<seed>.
Deno.test("decodeDiscoveryPage() survives random mutations of a page", () => {
  const seed = seedFrom("STACD_FUZZ_SEED");
  console.log(`discovery page fuzz seed: ${seed} (replay: STACD_FUZZ_SEED=${seed})`);
  const { int, random } = seededDraws(seed);
  const bases = [
    page([
      nvmeEntry,
      { ...nvmeEntry, subtype: 3, trsvcid: "8009" },
      { ...nvmeEntry, subtype: 1, traddr: "192.168.1.20" },
    ]),
    REAL_PAGE,
  ];
  for (let run = 0; run < 2000; run++) {
    const base = bases[run % bases.length]!;
    const bytes = base.slice(0, int(4) === 0 ? int(base.length + 1) : base.length);
    for (let n = int(40); n > 0 && bytes.length > 0; n--) bytes[int(bytes.length)] = int(256);
    if (random() < 0.3 && bytes.length >= 16) {
      new DataView(bytes.buffer).setBigUint64(8, BigInt(int(6)), true);
    }
    let decoded;
    try {
      decoded = decodeDiscoveryPage(bytes);
    } catch (error) {
      assert.ok(error instanceof BadDiscoveryPage, `run ${run}: ${error}`);
      continue;
    }
    assert.ok(decoded.entries.length <= decoded.numrec);
    for (const entry of decoded.entries) {
      for (const value of Object.values(entry)) {
        assert.match(value as string, /^[\x20-\x7e]*$/, `run ${run}`);
      }
      assert.ok(entry.subnqn.length > 0 && entry.subnqn.length <= 223);
    }
  }
});
