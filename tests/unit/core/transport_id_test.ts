import assert from "node:assert/strict";
import { DISCOVERY_NQN } from "../../../lib/core/connect_request.ts";
import {
  isIoController,
  type KernelController,
  kernelControllerFromAttributes,
  parseSysfsAddress,
} from "../../../lib/core/kernel_controller.ts";
import {
  isCompleteTid,
  makeTid,
  matchesExclude,
  matchesKernelController,
  parseIpAddress,
  printableTid,
  sameAddress,
  type TidFields,
  tidKey,
} from "../../../lib/core/transport_id.ts";

const HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
const SUBNQN = "nqn.2026-11.io.test:s1";
const tid = (fields: TidFields, ignoreIface = false) =>
  makeTid(fields, { hostNqn: HOSTNQN, ignoreIface });

/** A live tcp I/O controller on 192.168.1.10:4420 as sysfs shows it on kernel 6.1+. */
function kernel(over: Partial<KernelController> = {}): KernelController {
  return {
    device: "nvme3",
    transport: "tcp",
    traddr: "192.168.1.10",
    trsvcid: "4420",
    srcAddr: "192.168.1.2",
    subsysnqn: SUBNQN,
    hostnqn: HOSTNQN,
    hostid: "11111111-2222-3333-4444-555555555555",
    cntrltype: "io",
    dctype: "none",
    state: "live",
    model: "Linux",
    serial: "abc",
    ...over,
  };
}
const candidate = (over: TidFields = {}) =>
  tid({ transport: "tcp", traddr: "192.168.1.10", trsvcid: "4420", subsysnqn: SUBNQN, ...over });

Deno.test("makeTid() defaults trsvcid to 8009 for tcp and 4420 for rdma", () => {
  assert.equal(tid({ transport: "tcp", traddr: "1.1.1.1" }).trsvcid, "8009");
  assert.equal(tid({ transport: "rdma", traddr: "1.1.1.1" }).trsvcid, "4420");
  assert.equal(tid({ transport: "tcp", traddr: "1.1.1.1", trsvcid: "" }).trsvcid, "8009");
  assert.equal(tid({ transport: "tcp", traddr: "1.1.1.1", trsvcid: "4421" }).trsvcid, "4421");
});

Deno.test("makeTid() gives fc and loop no trsvcid: the kernel has none for them", () => {
  assert.equal(tid({ transport: "fc", traddr: "nn-0x1:pn-0x2" }).trsvcid, "");
  assert.equal(tid({ transport: "loop", traddr: "x" }).trsvcid, "");
});

Deno.test("makeTid() takes the host NQN from sys.conf unless the entry names one", () => {
  assert.equal(tid({ transport: "tcp" }).hostNqn, HOSTNQN);
  assert.equal(tid({ transport: "tcp", hostNqn: "nqn.other" }).hostNqn, "nqn.other");
});

Deno.test("makeTid() drops host-iface when ignore-iface is true", () => {
  assert.equal(tid({ transport: "tcp", hostIface: "eth0" }).hostIface, "eth0");
  assert.equal(tid({ transport: "tcp", hostIface: "eth0" }, true).hostIface, "");
});

Deno.test("tidKey() is equal for ::1 and 0:0:0:0:0:0:0:1", () => {
  const a = candidate({ traddr: "::1" });
  const b = candidate({ traddr: "0:0:0:0:0:0:0:1" });
  assert.equal(tidKey(a), tidKey(b));
  assert.notEqual(tidKey(a), tidKey(candidate({ traddr: "::2" })));
});

Deno.test("tidKey() is equal for ::ffff:127.0.0.1 and 127.0.0.1, host-traddr too", () => {
  const a = candidate({ traddr: "::ffff:127.0.0.1", hostTraddr: "::FFFF:10.0.0.1" });
  const b = candidate({ traddr: "127.0.0.1", hostTraddr: "10.0.0.1" });
  assert.equal(tidKey(a), tidKey(b));
});

Deno.test("tidKey() compares fc addresses case-insensitively", () => {
  const a = tid({ transport: "fc", traddr: "nn-0x20000090FA942779:pn-0x10000090FA942779" });
  const b = tid({ transport: "fc", traddr: "nn-0x20000090fa942779:pn-0x10000090fa942779" });
  assert.equal(tidKey(a), tidKey(b));
});

Deno.test("tidKey() tells apart every field of the 7-tuple", () => {
  const base = candidate({ hostTraddr: "10.0.0.1", hostIface: "eth0" });
  const variants: TidFields[] = [
    { transport: "rdma" },
    { traddr: "192.168.1.11" },
    { trsvcid: "4421" },
    { subsysnqn: "nqn.other" },
    { hostTraddr: "10.0.0.2" },
    { hostIface: "eth1" },
    { hostNqn: "nqn.other-host" },
  ];
  for (const v of variants) {
    const other = candidate({ hostTraddr: "10.0.0.1", hostIface: "eth0", ...v });
    assert.notEqual(tidKey(other), tidKey(base), JSON.stringify(v));
  }
});

Deno.test("printableTid() shows only the optional fields that are set, in upstream's order", () => {
  assert.equal(printableTid(candidate()), `(tcp, 192.168.1.10, 4420, ${SUBNQN})`);
  assert.equal(
    printableTid(candidate({ hostIface: "eth0", hostTraddr: "10.0.0.1" })),
    `(tcp, 192.168.1.10, 4420, ${SUBNQN}, eth0, 10.0.0.1)`,
  );
  assert.equal(printableTid(tid({ transport: "tcp", traddr: "h" })), "(tcp, h, 8009)");
});

Deno.test("parseIpAddress() accepts only dotted-quad IPv4 and normalises IPv6", () => {
  assert.deepEqual(parseIpAddress("10.0.0.1"), { family: 4, address: "10.0.0.1" });
  assert.deepEqual(parseIpAddress("2001:DB8:0::1"), { family: 6, address: "2001:db8::1" });
  assert.deepEqual(parseIpAddress("::ffff:10.0.0.1"), { family: 4, address: "10.0.0.1" });
  assert.deepEqual(parseIpAddress("fe80::1%eth0"), { family: 6, address: "fe80::1%eth0" });
  for (const bad of ["127.1", "0x7f.0.0.1", "1.2.3.04", "1.2.3.256", "host.example", "", ":::"]) {
    assert.equal(parseIpAddress(bad), undefined, bad);
  }
});

Deno.test("sameAddress() compares tcp/rdma as addresses, host names and fc without case", () => {
  assert.ok(sameAddress("::1", "0:0:0:0:0:0:0:1", "tcp"));
  assert.ok(sameAddress("::ffff:127.0.0.1", "127.0.0.1", "rdma"));
  assert.ok(sameAddress("Storage.Example", "storage.example", "tcp"));
  assert.ok(sameAddress("NN-0xA:PN-0xB", "nn-0xa:pn-0xb", "fc"));
  assert.ok(!sameAddress("127.0.0.1", "127.0.0.2", "tcp"));
  assert.ok(!sameAddress("fe80::1%eth0", "fe80::1%eth1", "tcp"));
});

Deno.test("isCompleteTid() wants transport, traddr, subsysnqn, and trsvcid except on fc/loop", () => {
  assert.ok(isCompleteTid(candidate()));
  assert.ok(!isCompleteTid(candidate({ subsysnqn: "" })));
  assert.ok(!isCompleteTid(candidate({ traddr: "" })));
  assert.ok(isCompleteTid(tid({ transport: "fc", traddr: "nn-1:pn-2", subsysnqn: SUBNQN })));
});

Deno.test("matchesExclude() excludes when every field the entry names is equal", () => {
  const c = candidate({ hostIface: "enp0s8" });
  assert.ok(matchesExclude(c, { hostIface: "enp0s8" }));
  assert.ok(matchesExclude(c, { transport: "TCP", traddr: "::ffff:192.168.1.10" }));
  assert.ok(!matchesExclude(c, { hostIface: "enp0s8", subsysnqn: "nqn.other" }));
  assert.ok(matchesExclude(c, { trsvcid: "4420", subsysnqn: SUBNQN }));
});

Deno.test("matchesKernelController() adopts the same tcp controller", () => {
  assert.ok(matchesKernelController(candidate(), kernel()));
});

Deno.test("matchesKernelController() needs transport, trsvcid, host NQN and subsysnqn equal", () => {
  assert.ok(!matchesKernelController(candidate({ trsvcid: "4421" }), kernel()));
  assert.ok(!matchesKernelController(candidate({ hostNqn: "nqn.other" }), kernel()));
  assert.ok(!matchesKernelController(candidate({ subsysnqn: "nqn.other" }), kernel()));
  assert.ok(!matchesKernelController(candidate(), kernel({ transport: "rdma" })));
});

Deno.test("matchesKernelController() compares traddr as addresses (IPv6 forms, IPv4-mapped)", () => {
  assert.ok(matchesKernelController(candidate({ traddr: "::ffff:192.168.1.10" }), kernel()));
  const v6 = kernel({ traddr: "fd00::10", srcAddr: "fd00::2" });
  assert.ok(matchesKernelController(candidate({ traddr: "FD00:0:0:0:0:0:0:10" }), v6));
  assert.ok(!matchesKernelController(candidate({ traddr: "fd00::11" }), v6));
});

Deno.test("matchesKernelController() lets the well-known discovery NQN match any subsysnqn", () => {
  const c = candidate({ subsysnqn: DISCOVERY_NQN });
  assert.ok(matchesKernelController(c, kernel()));
});

Deno.test("matchesKernelController() never adopts PCIe, discovery or departing controllers", () => {
  assert.ok(!matchesKernelController(candidate(), kernel({ transport: "pcie" })));
  assert.ok(!matchesKernelController(candidate(), kernel({ cntrltype: "discovery" })));
  assert.ok(!matchesKernelController(candidate(), kernel({ state: "deleting" })));
  assert.ok(!matchesKernelController(candidate(), kernel({ state: "deleting (no IO)" })));
});

Deno.test("matchesKernelController() adopts an unknown cntrltype only with namespaces", () => {
  assert.ok(matchesKernelController(candidate(), kernel({ cntrltype: "", hasNamespaces: true })));
  assert.ok(!matchesKernelController(candidate(), kernel({ cntrltype: "", hasNamespaces: false })));
  assert.ok(!matchesKernelController(candidate(), kernel({ cntrltype: "" })));
});

Deno.test("matchesKernelController() compares tcp host-traddr with src_addr", () => {
  assert.ok(matchesKernelController(candidate({ hostTraddr: "192.168.1.2" }), kernel()));
  assert.ok(matchesKernelController(candidate({ hostTraddr: "::ffff:192.168.1.2" }), kernel()));
  assert.ok(!matchesKernelController(candidate({ hostTraddr: "192.168.1.3" }), kernel()));
});

Deno.test("matchesKernelController() compares tcp host-iface with the interface owning src_addr", () => {
  const ifaceOf = (a: string) => a === "192.168.1.2" ? "enp0s8" : undefined;
  assert.ok(matchesKernelController(candidate({ hostIface: "enp0s8" }), kernel(), ifaceOf));
  assert.ok(!matchesKernelController(candidate({ hostIface: "enp0s9" }), kernel(), ifaceOf));
  assert.ok(
    !matchesKernelController(candidate({ hostIface: "enp0s8" }), kernel()),
    "unknown iface",
  );
  const bound = kernel({ hostIface: "enp0s8" });
  assert.ok(matchesKernelController(candidate({ hostIface: "enp0s8" }), bound));
});

Deno.test("matchesKernelController() on kernels without src_addr assumes a match when nothing is known", () => {
  const legacy = kernel({ srcAddr: undefined });
  assert.ok(
    matchesKernelController(candidate({ hostIface: "eth0", hostTraddr: "10.0.0.1" }), legacy),
  );
});

Deno.test("matchesKernelController() on kernels without src_addr uses host_traddr and host_iface", () => {
  const legacy = kernel({ srcAddr: undefined, hostTraddr: "10.0.0.1" });
  const ifaceOf = (a: string) => a === "10.0.0.1" ? "eth0" : undefined;
  assert.ok(matchesKernelController(candidate({ hostTraddr: "10.0.0.1" }), legacy));
  assert.ok(!matchesKernelController(candidate({ hostTraddr: "10.0.0.2" }), legacy));
  assert.ok(matchesKernelController(candidate({ hostIface: "eth0" }), legacy, ifaceOf));
  assert.ok(!matchesKernelController(candidate({ hostIface: "eth1" }), legacy, ifaceOf));
  const onIface = kernel({ srcAddr: undefined, hostIface: "eth0" });
  assert.ok(matchesKernelController(candidate({ hostIface: "eth0" }), onIface));
  assert.ok(!matchesKernelController(candidate({ hostIface: "eth1" }), onIface));
  assert.ok(matchesKernelController(candidate({ hostTraddr: "10.0.0.1" }), onIface, ifaceOf));
});

Deno.test("matchesKernelController() compares rdma host-traddr as addresses", () => {
  const k = kernel({ transport: "rdma", srcAddr: undefined, hostTraddr: "fd00::2" });
  const c = (hostTraddr: string) => candidate({ transport: "rdma", hostTraddr });
  assert.ok(matchesKernelController(c("FD00:0::2"), k));
  assert.ok(matchesKernelController(c(""), k));
  assert.ok(!matchesKernelController(c("fd00::3"), k));
});

Deno.test("matchesKernelController() compares fc addresses case-insensitively", () => {
  const k = kernel({
    transport: "fc",
    traddr: "nn-0x20000090fa942779:pn-0x10000090fa942779",
    trsvcid: "",
    hostTraddr: "nn-0x20000090fa942780:pn-0x10000090fa942780",
    srcAddr: undefined,
  });
  const c = tid({
    transport: "fc",
    traddr: "NN-0x20000090FA942779:PN-0x10000090FA942779",
    hostTraddr: "nn-0x20000090FA942780:pn-0x10000090FA942780",
    subsysnqn: SUBNQN,
  });
  assert.ok(matchesKernelController(c, k));
  assert.ok(!matchesKernelController({ ...c, hostTraddr: "nn-0x1:pn-0x2" }, k));
});

Deno.test("parseSysfsAddress() reads tcp's address with src_addr, not fooled by host_traddr", () => {
  assert.deepEqual(
    parseSysfsAddress(
      "traddr=192.168.1.10,trsvcid=4420,host_traddr=192.168.1.2,src_addr=192.168.1.2\n",
    ),
    { traddr: "192.168.1.10", trsvcid: "4420", hostTraddr: "192.168.1.2", srcAddr: "192.168.1.2" },
  );
  assert.deepEqual(parseSysfsAddress("host_traddr=10.0.0.1,traddr=10.0.0.9,host_iface=eth0"), {
    traddr: "10.0.0.9",
    trsvcid: "",
    hostTraddr: "10.0.0.1",
    hostIface: "eth0",
  });
});

Deno.test("parseSysfsAddress() reads fc and ignores a PCIe address", () => {
  assert.deepEqual(parseSysfsAddress("traddr=nn-0x1:pn-0x2,host_traddr=nn-0x3:pn-0x4"), {
    traddr: "nn-0x1:pn-0x2",
    trsvcid: "",
    hostTraddr: "nn-0x3:pn-0x4",
  });
  assert.deepEqual(parseSysfsAddress("0000:01:00.0\n"), { traddr: "", trsvcid: "" });
});

Deno.test("kernelControllerFromAttributes() reads sysfs texts, blanks (efault), keeps dctype 'none' as shown", () => {
  const attrs: Record<string, string> = {
    transport: "tcp\n",
    address: "traddr=10.0.0.9,trsvcid=4420,src_addr=10.0.0.1\n",
    subsysnqn: `${SUBNQN}\n`,
    hostnqn: `${HOSTNQN}\n`,
    cntrltype: "io\n",
    dctype: "none\n",
    state: "live\n",
    model: "(efault)\n",
  };
  const k = kernelControllerFromAttributes("nvme7", (name) => attrs[name]);
  assert.equal(k.device, "nvme7");
  assert.equal(k.traddr, "10.0.0.9");
  assert.equal(k.srcAddr, "10.0.0.1");
  assert.equal(k.dctype, "none", "upstream's stacctl shows it");
  assert.equal(k.model, "");
  assert.equal(k.serial, "");
  assert.ok(isIoController(k));
});

/**
 * The heap that `count` distinct texts from `make` leave behind once parsed
 * (MiB, after a full GC), measured in a child with --expose-gc, on a fresh
 * copy of the module (an empty cache).
 */
async function heapKeptByParsing(make: string, count: number): Promise<number> {
  const root = new URL("../../../", import.meta.url);
  const code = `
    const { parseIpAddress } = await import("${root}lib/core/transport_id.ts");
    const heap = () => { gc(); gc(); return Deno.memoryUsage().heapUsed; };
    const make = ${make};
    const before = heap();
    for (let i = 0; i < ${count}; i++) parseIpAddress(make(i));
    console.log((heap() - before) / 2 ** 20);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `--config=${root.pathname}deno.json`, "--v8-flags=--expose-gc", code],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  return Number(new TextDecoder().decode(out.stdout));
}

Deno.test("parseIpAddress() keeps no memory for junk or long texts (4 KiB controller_info args)", async () => {
  const pad = `"${"a".repeat(4096)}"`;
  // Before the fix: 4,000 4 KiB texts kept ~16 MiB each way, 60,000 short junk ~6 MiB.
  const kept = {
    longJunk: await heapKeptByParsing(`(i) => ${pad} + i`, 4_000),
    longValid: await heapKeptByParsing(`(i) => "fe80::1%" + ${pad} + i.toString(36)`, 4_000),
    shortJunk: await heapKeptByParsing("(i) => `not-an-address-${i}-${'z'.repeat(40)}`", 60_000),
  };
  assert.ok(Object.values(kept).every((mib) => mib < 1), JSON.stringify(kept));
  // Addresses are still parsed right after all that.
  assert.deepEqual(parseIpAddress("fe80::1%eth0"), { family: 6, address: "fe80::1%eth0" });
});
