/**
 * The libudev binding against real nvme uevents and sysfs in the guest (no
 * udevd there: the monitor reads raw kernel uevents, as in a container).
 * Runs only in the guest: deno run -A tests/guest/run_suite.ts udev
 */
import assert from "node:assert/strict";
import { Libnvme } from "../../lib/kernel/libnvme.ts";
import { readNvmeControllers } from "../../lib/kernel/nvme_sysfs.ts";
import type { UdevDeviceEvent, UdevEvent } from "../../lib/kernel/udev_event.ts";
import { UdevMonitor } from "../../lib/kernel/udev_monitor.ts";
import { listNvmeControllers } from "../udev_enumerate.ts";
import {
  controllers,
  deleteAllControllers,
  deleteController,
  hostIdentity,
  nvme,
} from "./nvme_host.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";

const host = hostIdentity();

/** Collects events until `done` says the list is complete, or fails after `ms`. */
async function collect(
  monitor: UdevMonitor,
  done: (events: UdevDeviceEvent[]) => boolean,
  ms = 10_000,
): Promise<UdevDeviceEvent[]> {
  const events: UdevDeviceEvent[] = [];
  const deadline = setTimeout(() => void monitor.close(), ms);
  try {
    for await (const event of monitor as AsyncIterable<UdevEvent>) {
      if (event.action === "overflow") continue;
      events.push(event);
      if (done(events)) break;
    }
  } finally {
    clearTimeout(deadline);
  }
  return events;
}

Deno.test("the monitor sees add, change (connected) and remove of a real NVMe/TCP controller", async () => {
  using t = createTarget({ subsystems: 1, ports: [LOOPBACK_PORT] });
  await using monitor = UdevMonitor.open();
  assert.equal(monitor.source, "kernel", "no udevd in the guest: raw kernel uevents");
  using nvmeLib = Libnvme.open();
  try {
    using ctrl = nvmeLib.controller(host, {
      transport: "tcp",
      traddr: "127.0.0.1",
      trsvcid: "4420",
      subsysnqn: t.nqns[0]!,
    });
    const device = await ctrl.connect();
    deleteController(device);
    const events = await collect(
      monitor,
      (list) => list.some((e) => e.action === "remove" && e.sysname === device),
    );
    const mine = events.filter((e) => e.sysname === device);
    const add = mine.find((e) => e.action === "add");
    assert.ok(add, `add of ${device}: ${JSON.stringify(events.map((e) => [e.action, e.sysname]))}`);
    assert.equal(add.subsystem, "nvme");
    const connected = mine.find((e) =>
      e.action === "change" && e.properties.NVME_EVENT === "connected"
    );
    assert.ok(connected, "change with NVME_EVENT=connected");
    assert.equal(connected.properties.NVME_TRTYPE, "tcp");
    assert.equal(connected.properties.NVME_TRADDR, "127.0.0.1");
    assert.equal(connected.properties.NVME_TRSVCID, "4420");
    assert.ok(mine.some((e) => e.action === "remove"), "remove");
    assert.ok(
      mine.findIndex((e) => e.action === "add") < mine.findIndex((e) => e.action === "remove"),
      "add before remove",
    );
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("enumeration through libudev matches sysfs for every controller", async () => {
  using t = createTarget({ subsystems: 4, ports: [LOOPBACK_PORT] });
  try {
    for (const nqn of t.nqns) {
      await nvme(
        ...["connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-n", nqn],
        ...["--hostnqn", host.hostnqn, "--hostid", host.hostid],
      );
    }
    const viaUdev = listNvmeControllers();
    const viaFiles = readNvmeControllers();
    assert.deepEqual(viaUdev, viaFiles);
    const kernel = controllers();
    assert.deepEqual(viaUdev.map((c) => c.device), kernel.map((c) => c.name));
    for (const c of viaUdev) {
      const k = kernel.find((x) => x.name === c.device)!;
      assert.equal(c.subsysnqn, k.subsysnqn);
      assert.equal(c.transport, "tcp");
      assert.equal(c.traddr, "127.0.0.1");
      assert.equal(c.trsvcid, "4420");
      assert.equal(c.srcAddr, "127.0.0.1", "kernel 6.1 reports src_addr");
      assert.equal(c.hostnqn, host.hostnqn);
      assert.equal(c.hostid, host.hostid);
      assert.equal(c.cntrltype, "io");
      assert.equal(c.state, "live");
      assert.equal(c.model, "Linux");
      assert.match(c.serial, /^[0-9a-f]+$/);
    }
  } finally {
    await deleteAllControllers();
  }
});
