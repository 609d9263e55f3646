import assert from "node:assert/strict";
import {
  decodeDiscoveryLog,
  DISCOVERY_LOG_ENTRY_SIZE,
  DISCOVERY_LOG_HEADER_SIZE,
} from "../discovery_log_page.ts";

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
function page(entries: RawEntry[], numrec = entries.length): Uint8Array {
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

Deno.test("decodeDiscoveryLog() gives stafd's string form of an NVMe/TCP entry", () => {
  const [entry] = decodeDiscoveryLog(page([nvmeEntry]));
  assert.deepEqual(entry, {
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
  });
});

Deno.test("decodeDiscoveryLog() names discovery and referral entries and keeps unknown codes", () => {
  const entries = decodeDiscoveryLog(page([
    { ...nvmeEntry, subtype: 3, adrfam: 2, traddr: "::1", sectype: 2 },
    { ...nvmeEntry, subtype: 1, trtype: 9, treq: 5 },
  ]));
  assert.equal(entries[0]?.subtype, "discovery");
  assert.equal(entries[0]?.adrfam, "ipv6");
  assert.equal(entries[0]?.sectype, "tls1.3");
  assert.equal(entries[1]?.subtype, "referral");
  assert.equal(entries[1]?.trtype, "9");
  assert.equal(entries[1]?.treq, "5");
  assert.equal(entries[1]?.sectype, undefined);
});

Deno.test("decodeDiscoveryLog() never reads past the bytes present when numrec lies", () => {
  assert.equal(decodeDiscoveryLog(page([nvmeEntry], 1000)).length, 1);
  assert.throws(() => decodeDiscoveryLog(new Uint8Array(10)), RangeError);
});
