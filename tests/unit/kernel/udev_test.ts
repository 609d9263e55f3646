/**
 * The udev monitor against the real kernel of the test host. The host has no
 * nvme controllers, so the monitor listens to subsystem "net" and the tests
 * make the kernel emit synthetic uevents for `lo` (writing to its uevent file,
 * root only): same socket, same code path as an nvme event.
 *
 * Deno lets only --allow-all read or write /sys and /proc, so with the narrower
 * flags of `deno task test:unit` a shell writes the uevent files, and the tests
 * that read sysfs with Deno's file API are skipped.
 */

import assert from "node:assert/strict";
import {
  resolveUdevSource,
  type UdevDeviceEvent,
  udevdRunning,
  type UdevEvent,
} from "../../../lib/kernel/udev_event.ts";
import {
  fileClassDevices,
  readNvmeController,
  readNvmeControllers,
  type SysfsDevice,
} from "../../../lib/kernel/nvme_sysfs.ts";
import { listNvmeControllers, udevClassDevices } from "../../udev_enumerate.ts";
import { UdevMonitor } from "../../../lib/kernel/udev_monitor.ts";

const sh = (script: string, ...args: string[]) =>
  new Deno.Command("sh", { args: ["-c", script, "sh", ...args] }).outputSync().success;

/** Triggering uevents needs root and a writable /sys; without them those tests are skipped. */
const ignore = !sh("test -w /sys/class/net/lo/uevent");
/** Whether Deno may read sysfs (only with --allow-all). */
const noSysfsAccess = (() => {
  try {
    Deno.readDirSync("/sys/class");
    return false;
  } catch {
    return true;
  }
})();

/** Makes the kernel send `count` synthetic "change" uevents for `lo`, tagged with a fresh UUID. */
function triggerLo(count = 1): string {
  const uuid = crypto.randomUUID();
  // Synthetic argument keys are alphanumeric only (the kernel rejects "_").
  const ok = sh(
    'i=0; while [ $i -lt "$1" ]; do echo "change $2 STACDTEST=1" >/sys/class/net/lo/uevent || exit 1; i=$((i+1)); done',
    String(count),
    uuid,
  );
  assert.ok(ok, "cannot write /sys/class/net/lo/uevent");
  return uuid;
}

const isOurs = (uuid: string) => (event: UdevEvent): event is UdevDeviceEvent =>
  event.action !== "overflow" && event.properties.SYNTH_UUID === uuid;

/** Events until `done(event)`; after `ms` the monitor is closed so a lost event fails, not hangs. */
async function collectUntil(monitor: UdevMonitor, done: (e: UdevEvent) => boolean, ms = 2000) {
  const timer = setTimeout(() => void monitor.close(), ms);
  const events: UdevEvent[] = [];
  try {
    for await (const event of monitor) {
      events.push(event);
      if (done(event)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return events;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("UdevMonitor delivers a kernel uevent with its action and properties", {
  ignore,
}, async () => {
  await using monitor = UdevMonitor.open({ source: "kernel", subsystem: "net", properties: "all" });
  assert.equal(monitor.source, "kernel");
  const uuid = triggerLo();
  const event = (await collectUntil(monitor, isOurs(uuid))).find(isOurs(uuid));
  assert.ok(event, "the uevent did not arrive");
  const { properties, ...device } = event;
  assert.deepEqual(device, {
    action: "change",
    sysname: "lo",
    devpath: "/devices/virtual/net/lo",
    subsystem: "net",
  });
  assert.equal(properties.ACTION, "change");
  assert.equal(properties.INTERFACE, "lo");
  assert.equal(properties.SYNTH_ARG_STACDTEST, "1");
});

Deno.test("UdevMonitor drops events of other subsystems", { ignore }, async () => {
  await using monitor = UdevMonitor.open({ source: "kernel", subsystem: "net", properties: "all" });
  // /dev/null is in subsystem "mem": sent first, it must not come before lo's.
  assert.ok(sh("echo change >/sys/devices/virtual/mem/null/uevent"));
  const uuid = triggerLo();
  const events = await collectUntil(monitor, isOurs(uuid));
  assert.ok(events.some(isOurs(uuid)));
  assert.deepEqual(events.filter((e) => e.action !== "overflow" && e.subsystem !== "net"), []);
});

Deno.test("UdevMonitor reports an overflowed receive buffer as an overflow event", {
  ignore,
}, async () => {
  // A tiny buffer, and a burst sent before anything reads it: the kernel
  // drops most of it and flags the socket with ENOBUFS.
  await using monitor = UdevMonitor.open({
    source: "kernel",
    subsystem: "net",
    receiveBufferBytes: 4096,
    properties: "all",
  });
  triggerLo(200);
  const overflow = await collectUntil(monitor, (event) => event.action === "overflow");
  assert.deepEqual(overflow, [{ action: "overflow" }], "the overflow comes first");
  // The monitor goes on: what survived the burst, then a new event.
  const after = triggerLo();
  const events = await collectUntil(monitor, isOurs(after));
  assert.ok(events.some(isOurs(after)), "no event after the overflow");
  const lo = events.filter((event) => event.action !== "overflow" && event.sysname === "lo");
  assert.ok(lo.length < 200, `received ${lo.length} of 201 events: no overflow happened`);
});

Deno.test("UdevMonitor.close() ends a pending wait within 100 ms", async () => {
  const monitor = UdevMonitor.open({ source: "kernel" }); // nvme: silent on this host
  const next = monitor[Symbol.asyncIterator]().next();
  await delay(50); // the poll thread is asleep in the kernel by now
  const start = performance.now();
  await monitor.close();
  const result = await next;
  const elapsed = performance.now() - start;
  assert.equal(result.done, true);
  assert.ok(elapsed < 100, `close() took ${elapsed.toFixed(1)} ms`);
  await monitor.close(); // idempotent
});

Deno.test("UdevMonitor closes when its signal is aborted", async () => {
  const controller = new AbortController();
  const monitor = UdevMonitor.open({ source: "kernel", signal: controller.signal });
  const next = monitor[Symbol.asyncIterator]().next();
  controller.abort();
  assert.equal((await next).done, true);
  await monitor.close();
  assert.throws(() => UdevMonitor.open({ signal: controller.signal }), { name: "AbortError" });
});

Deno.test("UdevMonitor refuses a second concurrent iteration", async () => {
  await using monitor = UdevMonitor.open({ source: "kernel" });
  const first = monitor[Symbol.asyncIterator]().next();
  await assert.rejects(monitor[Symbol.asyncIterator]().next(), TypeError);
  await monitor.close();
  assert.equal((await first).done, true);
});

Deno.test("UdevMonitor reads only the NVMe properties unless asked for all", async () => {
  await using monitor = UdevMonitor.open({ source: "kernel", subsystem: "net" });
  triggerLo();
  const [event] = await collectUntil(monitor, (e) => e.action === "change");
  assert.ok(event && event.action !== "overflow");
  assert.equal(event.properties.ACTION, "change");
  assert.equal(event.properties.INTERFACE, undefined, "not an NVMe property");
});

Deno.test("UdevMonitor.open() listens to udevd only where udevd runs", () => {
  assert.equal(resolveUdevSource("auto", true), "udev");
  assert.equal(resolveUdevSource("auto", false), "kernel");
  assert.equal(resolveUdevSource("kernel", true), "kernel");
  assert.equal(resolveUdevSource("udev", false), "udev");
  using monitor = UdevMonitor.open();
  assert.equal(monitor.source, udevdRunning() ? "udev" : "kernel");
});

Deno.test("UdevMonitor gets its 128 MiB receive buffer with CAP_NET_ADMIN", () => {
  // Deno lets only --allow-all read /proc/self; grep, exec'd by the same user,
  // has the same capabilities (all of the bounding set for root, none otherwise).
  const status = new Deno.Command("grep", { args: ["^CapEff", "/proc/self/status"] }).outputSync();
  const capEff = new TextDecoder().decode(status.stdout).match(/(\w+)\s*$/)?.[1] ?? "0";
  const netAdmin = (BigInt(`0x${capEff}`) >> 12n & 1n) === 1n; // CAP_NET_ADMIN = 12
  using monitor = UdevMonitor.open({ source: "kernel" });
  if (netAdmin) assert.equal(monitor.receiveBufferApplied, true);
  // Without the capability libudev's SO_RCVBUFFORCE fails and open() still succeeds.
});

Deno.test("UdevMonitor waiting for events does not wake the process", async () => {
  // The bench samples, from outside, the context switches of a process that
  // waits on a monitor (subsystem nvme, silent here). It runs with --allow-all
  // because Deno lets nothing less read /proc/<pid>.
  const bench = new URL("../../../bench/idle_wakeups.ts", import.meta.url).pathname;
  const { stdout, success } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", bench, "2"],
    stderr: "inherit",
  }).output();
  const report = new TextDecoder().decode(stdout);
  assert.ok(success, report);
  const total = Number(report.match(/^total: (\d+)/m)?.[1]);
  // Measured 0 (also with the CPUs busy); a 1 s timer shows 4, a 100 ms one about 40.
  assert.ok(total <= 2, report);
});

Deno.test("listNvmeControllers() through libudev matches the files of /sys/class/nvme", {
  ignore: noSysfsAccess,
}, () => {
  // Empty on a host without nvme; the guest tests compare real controllers.
  assert.deepEqual(listNvmeControllers(), readNvmeControllers());
});

Deno.test("udevClassDevices() reads the same sysfs attributes as plain file reads", {
  ignore: noSysfsAccess,
}, () => {
  // The nvme class is empty here: the net class exercises the same enumeration path.
  const attributes = ["address", "mtu", "operstate", "no_such_attribute"];
  const byName = (devices: SysfsDevice[]) =>
    Object.fromEntries(devices.map((device) => [device.name, device.attributes]));
  const viaUdev = byName(udevClassDevices("net", attributes));
  assert.ok(viaUdev.lo, "lo not enumerated");
  assert.equal(viaUdev.lo.no_such_attribute, undefined);
  assert.deepEqual(viaUdev, byName(fileClassDevices("/sys/class/net", attributes)));
});

Deno.test("readNvmeControllers() builds controllers from a sysfs tree", () => {
  const root = Deno.makeTempDirSync();
  try {
    const files: Record<string, Record<string, string>> = {
      nvme10: {
        transport: "tcp\n",
        address: "traddr=192.168.1.10,trsvcid=4420,host_traddr=192.168.1.2,src_addr=192.168.1.2\n",
        subsysnqn: "nqn.2024-01.io.example:sub\n",
        state: "live\n",
        model: "Linux                                   \n",
        "nvme10c10n1/dev": "259:0\n",
      },
      nvme2: { transport: "loop\n", address: "\n", cntrltype: "discovery\n" },
    };
    for (const [device, attributes] of Object.entries(files)) {
      for (const [name, text] of Object.entries(attributes)) {
        Deno.mkdirSync(`${root}/${device}/${name}`.replace(/\/[^/]+$/, ""), { recursive: true });
        Deno.writeTextFileSync(`${root}/${device}/${name}`, text);
      }
    }
    const controllers = readNvmeControllers({ root });
    assert.deepEqual(controllers.map((c) => c.device), ["nvme2", "nvme10"]);
    const [loop, tcp] = controllers;
    assert.deepEqual(
      [loop?.transport, loop?.traddr, loop?.cntrltype, loop?.hostnqn, loop?.hasNamespaces],
      ["loop", "", "discovery", "", false],
    );
    assert.deepEqual(
      [tcp?.traddr, tcp?.trsvcid, tcp?.hostTraddr, tcp?.srcAddr, tcp?.model, tcp?.hasNamespaces],
      ["192.168.1.10", "4420", "192.168.1.2", "192.168.1.2", "Linux", true],
    );
    assert.deepEqual(readNvmeControllers({ root: `${root}/absent` }), []);
    // One device alone reads the same; a missing or odd name is no device.
    assert.deepEqual(readNvmeController("nvme10", { root }), tcp);
    assert.equal(readNvmeController("nvme11", { root }), undefined);
    assert.equal(readNvmeController("../nvme10", { root }), undefined);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
