import assert from "node:assert/strict";
import { FakeClock } from "../../fake_clock.ts";
import { Daemon } from "../../../lib/daemon/daemon.ts";
import { kernelControllerFromAttributes } from "../../../lib/core/kernel_controller.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import { createStacModel } from "../../../lib/dbus/status_model.ts";
import { Latest, type StacdStatus } from "../../../lib/daemon/status.ts";
import { TIMERS } from "../../../lib/daemon/timers.ts";
import {
  configText,
  controllerLine,
  FakeKernel,
  MemoryStore,
  settle,
  stacdConfig,
  sysConfig,
} from "../fakes.ts";
import { UPSTREAM_PROCESS_INFO_KEYS } from "../../upstream_keys.ts";

/**
 * A daemon managing one configured controller at 192.168.1.10, and its
 * model. With `sysfs`, the kernel already has that connection as nvme0,
 * with these attribute texts, and the daemon adopts it.
 */
async function connectedModel(sysfs?: Record<string, string>, clock = new FakeClock()) {
  const log = createLogger(new MemorySink());
  const existing = sysfs && kernelControllerFromAttributes("nvme0", (a) => sysfs[a]);
  const status = new Latest<StacdStatus>();
  const daemon = new Daemon({ confFile: "/nonexistent/stacd.conf" }, {
    log,
    clock,
    kernel: new FakeKernel(existing ? [existing] : []),
    store: new MemoryStore(),
    notifier: { notify: () => {} },
    timers: { ...TIMERS },
    load: () => ({
      config: stacdConfig(configText([controllerLine("192.168.1.10")])),
      sys: sysConfig(),
      diagnostics: [],
    }),
    publish: (s) => status.set(s),
  });
  await daemon.start({ watchConfig: false });
  await settle();
  await clock.advance(TIMERS.settleMs); // the pass that records the connect's device
  await settle();
  const model = createStacModel({
    status: () => status.get(),
    setTron: (on) => daemon.setTron(on, "test"),
    clock,
    lastKnownFile: "/run/stacd/last-known-config",
    kernelOptions: new Set(["host_iface"]),
  });
  return { daemon, model };
}

Deno.test("list_controllers(true) shows sysfs attributes as upstream does: dctype 'none' kept, (efault) blanked", async () => {
  const { daemon, model } = await connectedModel({
    transport: "tcp\n",
    address: "traddr=192.168.1.10,trsvcid=4420\n",
    subsysnqn: "nqn.2026-11.io.test:s1\n",
    state: "live\n",
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
    assert.equal(shown?.hostid, "11111111-2222-3333-4444-555555555555");
  } finally {
    await daemon.stop();
  }
});

Deno.test("list_controllers(true) shows a controller connected at the first attempt with upstream's '60.0s [off]' timer", async () => {
  const { daemon, model } = await connectedModel();
  try {
    const [shown] = model.listControllers(true);
    assert.equal(shown?.connected, "True");
    assert.equal(shown?.["connect attempts"], "0");
    assert.equal(shown?.["retry connect timer"], "60.0s [off]");
  } finally {
    await daemon.stop();
  }
});

Deno.test("process_info() has upstream's keys, terminator.audit timer included, and its timer texts", async () => {
  const { daemon, model } = await connectedModel();
  try {
    const info = model.processInfo();
    assert.deepEqual(Object.keys(info).sort(), UPSTREAM_PROCESS_INFO_KEYS);
    assert.equal(info["config soak timer"], "1.5s [off]");
    assert.equal(info["terminator.audit timer"], "30.0s [off]");
  } finally {
    await daemon.stop();
  }
});

Deno.test("process_info()'s config soak timer shows the seconds left of stafd's soak, 10 s once stafd left", async () => {
  const clock = new FakeClock();
  const { daemon, model } = await connectedModel(undefined, clock);
  const soak = () => model.processInfo()["config soak timer"];
  try {
    daemon.stafdPages([], "appeared");
    await clock.advance(500);
    assert.equal(soak(), "1.5s [1.0s]");
    await clock.advance(1_000);
    daemon.stafdPages(undefined, "vanished");
    await clock.advance(1_500);
    assert.equal(soak(), "10.0s [off]", "the next answer waits 10 s, as upstream sets it");
    daemon.stafdPages([], "appeared");
    await clock.advance(2_500);
    assert.equal(soak(), "10.0s [7.5s]");
    await clock.advance(7_500);
    assert.equal(soak(), "1.5s [off]");
  } finally {
    await daemon.stop();
  }
});

Deno.test("tron set over D-Bus goes through the daemon, which logs it and publishes it", async () => {
  const { daemon, model } = await connectedModel();
  try {
    assert.equal(model.tron, false);
    model.tron = true;
    assert.equal(daemon.tron, true);
    assert.equal(model.tron, true);
    assert.equal(model.processInfo()["log-level"], "DEBUG");
    model.tron = false;
    assert.equal(model.processInfo().tron, false);
  } finally {
    await daemon.stop();
  }
});
