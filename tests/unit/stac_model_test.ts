/**
 * What the D-Bus model shows of a daemon's controllers, compared with what
 * upstream 2.4.1's stacd shows for the same kernel state (its `stacctl ls
 * -d`, samples in the contract), with a fake kernel and fake sysfs.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../../lib/clock.ts";
import { Daemon, TIMERS } from "../../lib/daemon.ts";
import { createLogger, MemorySink } from "../../lib/logger.ts";
import { createStacModel } from "../../lib/stac_model.ts";
import {
  configText,
  controllerLine,
  FakeKernel,
  MemoryStore,
  settle,
  stacdConfig,
  sysConfig,
} from "./fakes.ts";

/** A daemon managing one configured controller at 192.168.1.10, and its model over `sysfs`. */
async function connectedModel(sysfs: Record<string, string>) {
  const log = createLogger(new MemorySink());
  const daemon = new Daemon({ confFile: "/nonexistent/stacd.conf" }, {
    log,
    clock: new FakeClock(),
    kernel: new FakeKernel(),
    store: new MemoryStore(),
    notifier: { notify: () => {} },
    timers: { ...TIMERS },
    load: () => ({
      config: stacdConfig(configText([controllerLine("192.168.1.10")])),
      sys: sysConfig(),
      diagnostics: [],
    }),
  });
  await daemon.start({ watchConfig: false });
  await settle();
  const model = createStacModel({
    daemon,
    log,
    lastKnownFile: "/run/stacd/last-known-config",
    configSoakMs: 1_500,
    kernelOptions: new Set(["host_iface"]),
    readAttribute: (_device, attribute) => sysfs[attribute],
  });
  return { daemon, model };
}

Deno.test("list_controllers(true) shows sysfs attributes as upstream does: dctype 'none' kept, (efault) blanked", async () => {
  const { daemon, model } = await connectedModel({
    transport: "tcp\n",
    hostid: "11111111-2222-3333-4444-555555555555\n",
    hostnqn: "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555\n",
    model: "Linux                                   \n",
    serial: "(efault)\n",
    dctype: "none\n",
    cntrltype: "io\n",
  });
  try {
    const [shown] = model.listControllers(true);
    assert.equal(shown?.device, "nvme0");
    assert.equal(shown?.dctype, "none");
    assert.equal(shown?.cntrltype, "io");
    assert.equal(shown?.model, "Linux");
    assert.equal(shown?.serial, "");
  } finally {
    await daemon.stop();
  }
});

Deno.test("list_controllers(true) shows a controller connected at the first attempt with upstream's '60.0s [off]' timer", async () => {
  const { daemon, model } = await connectedModel({ transport: "tcp\n" });
  try {
    const [shown] = model.listControllers(true);
    assert.equal(shown?.connected, "True");
    assert.equal(shown?.["connect attempts"], "0");
    assert.equal(shown?.["retry connect timer"], "60.0s [off]");
  } finally {
    await daemon.stop();
  }
});
