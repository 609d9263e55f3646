/**
 * The libnvme binding against the guest's real kernel and nvmet target:
 * connect (one and 32 in parallel), fabrics options reaching the kernel,
 * disconnect through sysfs as stacd does it, a refused connect, and reading
 * a discovery log page. Every assertion reads the kernel's sysfs.
 * Runs only in the guest: deno run -A tests/guest/run_suite.ts libnvme
 */
import assert from "node:assert/strict";
import { connectViaFabricsDevice, deleteController } from "../../lib/kernel/fabrics_device.ts";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import { ConnectError } from "../../lib/core/kernel_api.ts";
import { Libnvme } from "../../lib/kernel/libnvme.ts";
import { discover } from "../libnvme_extra.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";
import {
  controllers,
  controllersOf,
  deleteAllControllers,
  hostIdentity,
  sysfsAttribute,
  waitFor,
} from "./nvme_host.ts";

const host = hostIdentity();
const target = (subsysnqn: string, trsvcid = "4420") => ({
  transport: "tcp",
  traddr: "127.0.0.1",
  trsvcid,
  subsysnqn,
});

Deno.test("libnvme connects one controller: sysfs shows it live with our identity", async () => {
  using t = createTarget({ subsystems: 1, ports: [LOOPBACK_PORT] });
  const nqn = t.nqns[0]!;
  using nvmeLib = Libnvme.open();
  try {
    using ctrl = nvmeLib.controller(host, target(nqn));
    const device = await ctrl.connect();
    assert.match(device, /^nvme\d+$/);
    assert.equal(sysfsAttribute(device, "subsysnqn"), nqn);
    assert.equal(sysfsAttribute(device, "transport"), "tcp");
    assert.match(sysfsAttribute(device, "address"), /^traddr=127\.0\.0\.1,trsvcid=4420/);
    assert.equal(sysfsAttribute(device, "hostnqn"), host.hostnqn);
    assert.equal(sysfsAttribute(device, "hostid"), host.hostid);
    assert.equal(sysfsAttribute(device, "state"), "live");
    await deleteController(device);
    await waitFor(() => controllersOf(nqn).length === 0 || undefined, `${device} deleted`);
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("the fabrics config struct reaches the kernel: kato, reconnect-delay, ctrl-loss-tmo, queues", async () => {
  using t = createTarget({ subsystems: 1, ports: [LOOPBACK_PORT] });
  using nvmeLib = Libnvme.open();
  try {
    using ctrl = nvmeLib.controller(host, target(t.nqns[0]!));
    const device = await ctrl.connect({
      kato: 17,
      reconnectDelay: 3,
      ctrlLossTmo: 75,
      nrIoQueues: 1,
    });
    // The kernel keeps ctrl_loss_tmo as a count of reconnect_delay periods:
    // a multiple of the delay reads back unchanged.
    assert.equal(sysfsAttribute(device, "kato"), "17");
    assert.equal(sysfsAttribute(device, "reconnect_delay"), "3");
    assert.equal(sysfsAttribute(device, "ctrl_loss_tmo"), "75");
    assert.equal(sysfsAttribute(device, "queue_count"), "2", "one I/O queue plus the admin queue");
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("32 controllers connect in parallel through libnvme, each once, all live", async () => {
  using t = createTarget({ subsystems: 32, ports: [LOOPBACK_PORT] });
  using nvmeLib = Libnvme.open();
  const ctrls = t.nqns.map((nqn) => nvmeLib.controller(host, target(nqn)));
  try {
    const devices = await Promise.all(ctrls.map((c) => c.connect()));
    assert.equal(new Set(devices).size, 32, "32 distinct devices");
    for (const [i, nqn] of t.nqns.entries()) {
      const mine = controllersOf(nqn);
      assert.equal(mine.length, 1, `${nqn} connected exactly once`);
      assert.equal(mine[0]!.name, devices[i]);
      assert.equal(mine[0]!.state, "live");
    }
    await Promise.all(devices.map((device) => deleteController(device)));
    await waitFor(() => controllers().length === 0 || undefined, "all 32 deleted");
  } finally {
    ctrls.forEach((c) => c.close());
    await deleteAllControllers();
  }
});

Deno.test("a connect to a port with nothing listening fails with the kernel's reason", async () => {
  using t = createTarget({ subsystems: 1, ports: [LOOPBACK_PORT] });
  using nvmeLib = Libnvme.open();
  using ctrl = nvmeLib.controller(host, target(t.nqns[0]!, "4421"));
  const before = controllers().length;
  // Both connect paths reject with ConnectError, worded alike, errno ECONNREFUSED or EIO.
  const refused = (error: unknown) => {
    assert.ok(error instanceof ConnectError, String(error));
    assert.match(
      error.message,
      /^(.*; )?Failed to write to \/dev\/nvme-fabrics: .*(refused|Input\/output error)/i,
    );
    assert.ok([111, 5].includes(error.errno ?? 0), `errno ${error.errno}`);
    return true;
  };
  await assert.rejects(ctrl.connect(), refused);
  assert.equal(ctrl.device, undefined);
  await assert.rejects(
    connectViaFabricsDevice({ target: target(t.nqns[0]!, "4421"), host }),
    refused,
  );
  assert.equal(controllers().length, before, "no controller left behind");
});

Deno.test("the discovery log of the target lists exactly its subsystems", async () => {
  using t = createTarget({ subsystems: 3, ports: [LOOPBACK_PORT] });
  using nvmeLib = Libnvme.open();
  try {
    const entries = await discover(nvmeLib, host, target(DISCOVERY_NQN));
    const nvmeEntries = entries.filter((e) => e.subtype === "nvme");
    assert.deepEqual(nvmeEntries.map((e) => e.subnqn).sort(), [...t.nqns].sort());
    for (const e of nvmeEntries) {
      assert.equal(e.trtype, "tcp");
      assert.equal(e.adrfam, "ipv4");
      assert.equal(e.traddr, "127.0.0.1");
      assert.equal(e.trsvcid, "4420");
      assert.equal(e.portid, "1");
    }
    assert.equal(controllers().length, 0, "the discovery controller was disconnected again");
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("the /dev/nvme-fabrics path connects with the same options as libnvme", async () => {
  using t = createTarget({ subsystems: 1, ports: [LOOPBACK_PORT] });
  try {
    const { device } = await connectViaFabricsDevice({
      target: target(t.nqns[0]!),
      host,
      options: { kato: 21, reconnectDelay: 2, ctrlLossTmo: 30 },
    });
    assert.equal(sysfsAttribute(device, "subsysnqn"), t.nqns[0]);
    assert.equal(sysfsAttribute(device, "kato"), "21");
    assert.equal(sysfsAttribute(device, "ctrl_loss_tmo"), "30");
  } finally {
    await deleteAllControllers();
  }
});
