/**
 * The daemon's own rules on top of the reconciler, with a fake clock and a
 * fake kernel: when stafd's answers take effect (docs/design.md#soaks), that
 * an unknown answer keeps discovered controllers, and how reloads notify
 * systemd and move tron.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../../fake_clock.ts";
import type { StacdConfig } from "../../../lib/config/stacd_conf.ts";
import { HostNqnError } from "../../../lib/config/sys_conf.ts";
import { Daemon, type UdevEventSource } from "../../../lib/daemon/daemon.ts";
import { TIMERS } from "../../../lib/daemon/timers.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import type { UdevEvent } from "../../../lib/kernel/udev_event.ts";
import {
  configText,
  controllerLine,
  FakeKernel,
  HOSTID,
  HOSTNQN,
  logEntry,
  MemoryStore,
  page,
  settle,
  stacdConfig,
  sysConfig,
} from "../fakes.ts";

function setup(initial: StacdConfig = stacdConfig(""), deps: { udev?: UdevEventSource } = {}) {
  const clock = new FakeClock();
  const kernel = new FakeKernel();
  const sink = new MemorySink();
  const log = createLogger(sink);
  const notified: string[] = [];
  let config = initial;
  let loadError: Error | undefined;
  const daemon = new Daemon({ confFile: "/nonexistent/stacd.conf" }, {
    log,
    clock,
    kernel,
    store: new MemoryStore(),
    notifier: { notify: (...states) => void notified.push(states.join(" ")) },
    timers: { ...TIMERS },
    load: () => {
      if (loadError) throw loadError;
      return { config, sys: sysConfig(), diagnostics: [] };
    },
    ...deps,
  });
  const advance = async (ms: number) => {
    await clock.advance(ms);
    await settle();
  };
  return {
    daemon,
    kernel,
    log,
    notified,
    advance,
    sink,
    setConfig: (c: StacdConfig) => config = c,
    failLoad: (error: Error) => loadError = error,
  };
}

const pages = (...traddrs: string[]) => [page(traddrs.map((traddr) => logEntry({ traddr })))];

Deno.test("stafd's first answer, at stacd's start or later, waits 1.5 s, not 10 s", async () => {
  for (const before of [0, 30_000]) {
    const { daemon, kernel, advance } = setup();
    await daemon.start({ watchConfig: false });
    await advance(before); // 0: stafd already on the bus; 30 s: it appears later
    daemon.stafdPages(pages("192.168.1.20"), "appeared");
    await advance(1_400);
    assert.deepEqual(kernel.connects, [], "nothing before the soak ends");
    await advance(200);
    assert.equal(kernel.connects.length, 1, `applied 1.5 s after stafd's first answer (${before})`);
    await daemon.stop();
  }
});

Deno.test("stafd's pages after it vanished and came back wait 10 s, so that it can refill its cache", async () => {
  const { daemon, kernel, advance } = setup();
  await daemon.start({ watchConfig: false });
  daemon.stafdPages(pages("192.168.1.20"), "appeared");
  await advance(1_600);
  daemon.stafdPages(undefined, "vanished");
  await advance(5_000);
  daemon.stafdPages(pages("192.168.1.20", "192.168.1.21"), "appeared");
  await advance(9_900);
  assert.equal(kernel.connects.length, 1, "nothing new before the long soak ends");
  await advance(200);
  assert.equal(kernel.connects.length, 2);
  daemon.stafdPages(pages("192.168.1.20", "192.168.1.21", "192.168.1.22"), "changed");
  await advance(1_600);
  assert.equal(kernel.connects.length, 3, "once it is over, changes wait 1.5 s again");
  await daemon.stop();
});

Deno.test("a change during the returned soak does not cut it short", async () => {
  const { daemon, kernel, advance } = setup();
  await daemon.start({ watchConfig: false });
  daemon.stafdPages(undefined, "vanished");
  daemon.stafdPages(pages("192.168.1.20"), "appeared");
  await advance(1_000);
  daemon.stafdPages(pages("192.168.1.20", "192.168.1.21"), "changed");
  await advance(3_000);
  assert.deepEqual(kernel.connects, [], "still within 10 s of stafd coming back");
  await advance(7_000);
  assert.equal(kernel.connects.length, 2, "the latest answer, once");
  await daemon.stop();
});

Deno.test("stafd's later changes take effect 1.5 s after the last signal", async () => {
  const { daemon, kernel, advance } = setup();
  await daemon.start({ watchConfig: false });
  daemon.stafdPages(pages("192.168.1.20"), "appeared");
  await advance(1_600);
  daemon.stafdPages(pages("192.168.1.20", "192.168.1.21"), "changed");
  await advance(1_000);
  daemon.stafdPages(pages("192.168.1.20", "192.168.1.21", "192.168.1.22"), "changed");
  await advance(1_000);
  assert.equal(kernel.connects.length, 1, "the soak restarted with the second signal");
  await advance(600);
  assert.equal(kernel.connects.length, 3);
  await daemon.stop();
});

Deno.test("an unknown answer keeps discovered controllers; only a known empty answer removes them", async () => {
  const { daemon, kernel, advance } = setup();
  await daemon.start({ watchConfig: false });
  daemon.stafdPages(pages("192.168.1.20"), "appeared");
  await advance(10_100);
  assert.equal(kernel.devices.length, 1);
  daemon.stafdPages(undefined, "vanished");
  await advance(60_000);
  assert.deepEqual(kernel.disconnects, [], "stafd gone is not stafd empty");
  daemon.stafdPages(undefined, "failed");
  await advance(60_000);
  assert.deepEqual(kernel.disconnects, []);
  daemon.stafdPages([], "appeared");
  await advance(10_100);
  assert.equal(kernel.disconnects.length, 1, "stafd answered: nothing discovered any more");
  await daemon.stop();
});

Deno.test("a reload tells systemd RELOADING then READY, and tron follows the file", async () => {
  const { daemon, notified, log, setConfig } = setup();
  await daemon.start({ watchConfig: false });
  assert.deepEqual(notified, ["READY=1 STATUS=Running"]);
  setConfig(stacdConfig("[Global]\ntron = true\n"));
  daemon.reload();
  assert.deepEqual(notified.slice(1), ["RELOADING=1", "READY=1"]);
  assert.equal(log.tron, true);
  await daemon.stop();
  assert.equal(notified.at(-1), "STOPPING=1");
});

for (
  const [what, error] of [
    ["a bad host NQN", new HostNqnError('host NQN "iqn.x" from /srv/sys.conf is not "nqn."', [])],
    ["any error", new Error("boom")],
  ] as const
) {
  Deno.test(`a reload that fails with ${what} keeps the running configuration`, async () => {
    const { daemon, kernel, notified, log, sink, advance, setConfig, failLoad } = setup(
      stacdConfig(`[Global]\ntron = true\n[Controllers]\n${controllerLine("192.168.1.20")}`),
    );
    await daemon.start({ watchConfig: false });
    await advance(0);
    assert.equal(kernel.devices.length, 1);
    const before = daemon.configuration;
    setConfig(stacdConfig(""));
    failLoad(error);
    daemon.reload();
    assert.deepEqual(notified.slice(1), ["RELOADING=1", "READY=1"], "systemd does not hang");
    assert.equal(daemon.configuration, before);
    assert.equal(log.tron, true);
    const errors = sink.lines.filter((l) => l.priority === 3).map((l) => l.line);
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? "", /Reload failed \(\/nonexistent\/stacd\.conf, .*sys\.conf\)/);
    assert.match(errors[0] ?? "", new RegExp(`${error.message.slice(0, 8)}.*is kept`));
    await advance(60_000);
    assert.deepEqual(kernel.disconnects, []);
    await daemon.stop();
  });
}

Deno.test("a reload that fails after the files were read still keeps the running configuration", async () => {
  const log = createLogger(new MemorySink());
  const running = {
    config: stacdConfig("[Global]\ntron = true\n"),
    sys: sysConfig(),
    diagnostics: [],
  };
  let loads = 0;
  const daemon = new Daemon({ confFile: "/nonexistent/stacd.conf" }, {
    log,
    clock: new FakeClock(),
    kernel: new FakeKernel(),
    store: new MemoryStore(),
    notifier: { notify() {} },
    timers: { ...TIMERS },
    load: () => {
      if (loads++ === 0) return running;
      // Read fine, then a later step of the reload throws (here: reporting its diagnostics).
      return {
        config: stacdConfig(""),
        sys: sysConfig(),
        get diagnostics(): never {
          throw new Error("diagnostics exploded");
        },
      };
    },
  });
  daemon.reload();
  assert.equal(daemon.configuration, running, "the configuration in force is the running one");
  assert.equal(log.tron, true, "and so is its tron");
  await daemon.stop();
});

Deno.test("--tron holds until the first reload, then the file decides", async () => {
  const clock = new FakeClock();
  const log = createLogger(new MemorySink());
  const daemon = new Daemon({ confFile: "/nonexistent/stacd.conf" }, {
    log,
    clock,
    kernel: new FakeKernel(),
    store: new MemoryStore(),
    notifier: { notify() {} },
    timers: { ...TIMERS },
    load: () => ({ config: stacdConfig(""), sys: sysConfig(), diagnostics: [] }),
  }, { tron: true });
  assert.equal(log.tron, true);
  daemon.reload();
  assert.equal(log.tron, false);
  await daemon.stop();
});

Deno.test("the first pass connects without waiting for the bus; READY=1 waits for both", async () => {
  const { daemon, kernel, notified } = setup(
    stacdConfig("[Controllers]\ncontroller = transport=tcp;traddr=192.168.1.20;nqn=nqn.io:a\n"),
  );
  const bus = Promise.withResolvers<void>();
  const started = daemon.start({ watchConfig: false, readyAfter: bus.promise });
  await settle();
  assert.equal(kernel.connects.length, 1, "connected while the bus attempt is pending");
  assert.deepEqual(notified, [], "not ready before the bus name");
  bus.reject(new Error("no bus")); // out of reach counts as settled
  await started;
  assert.deepEqual(notified, ["READY=1 STATUS=Running"]);
  await daemon.stop();
});

Deno.test("udev events lost during a connect: the connect checks its device in sysfs", async () => {
  const events: UdevEvent[] = [];
  let closed = false;
  let wake = () => {};
  const udev: UdevEventSource = {
    async *[Symbol.asyncIterator]() {
      while (!closed) {
        const event = events.shift();
        if (event) yield event;
        else await new Promise<void>((resolve) => wake = resolve);
      }
    },
    close: () => {
      closed = true;
      wake();
    },
  };
  const { daemon, kernel, advance, sink } = setup(
    stacdConfig("[Controllers]\ncontroller = transport=tcp;traddr=192.168.1.20;nqn=nqn.x"),
    { udev },
  );
  const gate = kernel.hold("192.168.1.20");
  const started = daemon.start({ watchConfig: false });
  await settle();
  events.push({ action: "overflow" }); // the remove of its device was among the lost
  wake();
  await settle();
  gate.resolve("gone");
  await started;
  // The pass after the connect returned (it may return during the overflow's pass).
  for (let i = 0; i < 2; i++) await advance(TIMERS.settleMs);
  assert.match(sink.text(), /nvme0 - Controller removed by the kernel, retrying/);
  await advance(3_000);
  assert.equal(kernel.connects.length, 2);
  assert.deepEqual(kernel.devices, ["nvme1"]);
  await daemon.stop();
});

Deno.test("a malformed sys.conf key: one load ERROR, one ERROR per controller that would use it, no connect", async () => {
  const dir = await Deno.makeTempDir();
  const key = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";
  const badKey = `${key.slice(0, -2)}m:`; // one character off: the CRC-32 no longer matches
  try {
    await Deno.writeTextFile(
      `${dir}/sys.conf`,
      `[Host]\nnqn=${HOSTNQN}\nid=${HOSTID}\nkey=${badKey}\n`,
    );
    await Deno.writeTextFile(
      `${dir}/stacd.conf`,
      configText([
        controllerLine("192.168.1.10"),
        controllerLine("192.168.1.11", `;dhchap-secret=${key}`),
      ]),
    );
    const clock = new FakeClock();
    const kernel = new FakeKernel();
    const sink = new MemorySink();
    const daemon = new Daemon({ confFile: `${dir}/stacd.conf`, sysConfFile: `${dir}/sys.conf` }, {
      log: createLogger(sink),
      clock,
      kernel,
      store: new MemoryStore(),
      notifier: { notify: () => {} },
      timers: { ...TIMERS },
    });
    await daemon.start({ watchConfig: false });
    await clock.advance(600_000);
    await settle();
    assert.deepEqual(kernel.connects, ["192.168.1.11"], "only the one with its own key");
    const errors = sink.lines.map((l) => l.line).filter((l) => l.startsWith("ERROR"));
    assert.equal(errors.length, 2, errors.join("\n"));
    assert.match(errors[0]!, /sys\.conf: \[Host\] key: .*CRC-32.*are not connected$/);
    assert.match(
      errors[1]!,
      /192\.168\.1\.10, 4420.* \| nvme\? - Not connected: the host key read/,
    );
    assert.ok(!sink.text().includes(badKey.split(":")[2]!), "the key never reaches the log");
    await daemon.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the in-process finder reloads with stacd, and a change of its stafd.conf reloads both", async () => {
  const dir = await Deno.makeTempDir();
  const stafdConf = `${dir}/stafd.conf`;
  await Deno.writeTextFile(stafdConf, "[Controllers]\n");
  let reloads = 0;
  const clock = new FakeClock();
  const daemon = new Daemon({ confFile: `${dir}/stacd.conf`, sysConfFile: `${dir}/sys.conf` }, {
    log: createLogger(new MemorySink()),
    clock,
    kernel: new FakeKernel(),
    store: new MemoryStore(),
    notifier: { notify() {} },
    timers: { ...TIMERS },
    load: () => ({ config: stacdConfig(""), sys: sysConfig(), diagnostics: [] }),
    companion: { files: [stafdConf], reload: () => void reloads++ },
  });
  try {
    await daemon.start();
    daemon.reload();
    assert.equal(reloads, 1, "SIGHUP's reload reaches the finder");
    await Deno.writeTextFile(
      stafdConf,
      "[Controllers]\ncontroller = transport=tcp;traddr=10.0.0.1\n",
    );
    for (let i = 0; i < 100 && reloads < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await clock.advance(TIMERS.configSoakMs);
    }
    assert.equal(reloads, 2, "a change of stafd.conf alone reloads");
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
