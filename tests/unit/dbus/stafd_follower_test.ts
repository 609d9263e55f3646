/**
 * The stafd follower against the stand-in on a real dbus-daemon (a private
 * bus): stafd appearing late, leaving, coming back, signalling, floods,
 * hangs and every kind of bad answer. Call timeouts run on a fake clock, so
 * a test also sees that no timer is left once the follower is idle.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../../fake_clock.ts";
import { followStafd, type FollowStafdOptions } from "../../../lib/dbus/stafd_follower.ts";
import { STAF } from "../../../lib/dbus/stafd_bus.ts";
import { closeNextBus, openNextBus } from "../../dbus/next_bus.ts";
import { type PrivateBus, STAF_POLICY, startPrivateBus } from "../../dbus/private_bus.ts";
import { memoryLogger, nvmeNqns, PagesRecorder, until } from "../../dbus/stafd_events.ts";
import { GARBAGE, goodPages, HOST_NQN } from "../../dbus/stafd_garbage.ts";
import { StafdStandin } from "../../stafd_standin.ts";
import dbus from "dbus-next";

const TIMEOUT_MS = 1_000;
const nqns = (n: number) => Array.from({ length: n }, (_, i) => `nqn.2026-11.io.test:s${i + 1}`);

async function setup(over: Partial<FollowStafdOptions> = {}) {
  const bus: PrivateBus = await startPrivateBus({ policies: [STAF_POLICY] });
  const { log, sink } = memoryLogger();
  const clock = new FakeClock();
  const rec = new PagesRecorder();
  const follower = await followStafd({
    busAddress: bus.address,
    log,
    onPages: rec.onPages,
    clock,
    callTimeoutMs: TIMEOUT_MS,
    ...over,
  });
  const standins: StafdStandin[] = [];
  const standin = async (n = 3) => {
    const s = await StafdStandin.start(bus.address, goodPages(n));
    standins.push(s);
    return s;
  };
  return {
    bus,
    sink,
    clock,
    rec,
    follower,
    standin,
    async [Symbol.asyncDispose]() {
      for (const s of standins) await s.close();
      await follower.close();
      await bus.close();
    },
  };
}

Deno.test("the follower reads stafd's pages when stafd appears after it started", async () => {
  await using t = await setup();
  assert.equal(t.follower.owner, undefined);
  assert.deepEqual(t.rec.events, [], "nothing is said while stafd has never been seen");
  const stafd = await t.standin(3);
  const { pages, reason } = await t.rec.next("appeared");
  assert.equal(reason, "appeared");
  assert.deepEqual(nvmeNqns(pages), nqns(3));
  assert.equal(pages?.[0]?.hostNqn, HOST_NQN);
  assert.equal(pages?.[0]?.entries[0]?.portid, "1", "ints from libnvme's binding become strings");
  assert.equal(t.follower.owner, stafd.uniqueName);
  assert.equal(stafd.calls, 1);
  assert.equal(t.clock.pending, 0, "no timer once idle");
});

Deno.test("a stafd already on the bus is read as soon as the follower starts", async () => {
  const bus = await startPrivateBus({ policies: [STAF_POLICY] });
  const stafd = await StafdStandin.start(bus.address, goodPages(2));
  const rec = new PagesRecorder();
  const follower = await followStafd({
    busAddress: bus.address,
    log: memoryLogger().log,
    onPages: rec.onPages,
  });
  try {
    const { pages, reason } = await rec.next("appeared");
    assert.equal(reason, "appeared");
    assert.deepEqual(nvmeNqns(pages), nqns(2));
  } finally {
    await follower.close();
    await stafd.close();
    await bus.close();
  }
});

Deno.test("stafd leaving makes its pages unknown; back with new pages, they are followed", async () => {
  await using t = await setup();
  const first = await t.standin(3);
  assert.deepEqual(nvmeNqns((await t.rec.next("appeared")).pages), nqns(3));
  await first.close();
  assert.deepEqual(await t.rec.next("vanished"), { pages: undefined, reason: "vanished" });
  assert.equal(t.follower.owner, undefined);
  assert.match(t.sink.text(), /stafd left D-Bus: keeping every discovered controller/);
  const second = await t.standin(1);
  const back = await t.rec.next("appeared again");
  assert.equal(back.reason, "appeared");
  assert.deepEqual(nvmeNqns(back.pages), nqns(1));
  assert.equal(t.follower.owner, second.uniqueName);
});

Deno.test("log_pages_changed and dc_removed each lead to a new read", async () => {
  await using t = await setup();
  const stafd = await t.standin(3);
  await t.rec.next("appeared");
  stafd.serve(goodPages(2));
  stafd.changed();
  const changed = await t.rec.next("changed");
  assert.equal(changed.reason, "changed");
  assert.deepEqual(nvmeNqns(changed.pages), nqns(2));
  stafd.serve([]);
  stafd.dcRemoved();
  assert.deepEqual(await t.rec.next("dc_removed"), { pages: [], reason: "changed" });
  assert.equal(stafd.calls, 3);
});

Deno.test("1,000 signals in a burst cost at most two more calls", async () => {
  await using t = await setup();
  const stafd = await t.standin(3);
  await t.rec.next("appeared");
  stafd.serve(goodPages(4));
  stafd.flood(1_000);
  const first = await t.rec.next("changed after the flood");
  assert.deepEqual(nvmeNqns(first.pages), nqns(4));
  await t.rec.another(300);
  assert.ok(stafd.calls <= 3, `${stafd.calls} calls: 1 when it appeared, then at most 2`);
});

Deno.test("a call that never answers times out: the pages are unknown, then read again", async () => {
  await using t = await setup();
  const stafd = await t.standin(3);
  await t.rec.next("appeared");
  stafd.answerWith({ kind: "hang" });
  stafd.changed();
  await until(() => stafd.calls === 2, "the second call");
  assert.equal(t.clock.pending, 1, "one timer: the call's timeout");
  await t.clock.advance(TIMEOUT_MS);
  assert.deepEqual(await t.rec.next("failed"), { pages: undefined, reason: "failed" });
  assert.match(t.sink.text(), /get_all_log_pages got no reply within 1000 ms/);
  assert.equal(t.clock.pending, 0);
  stafd.serve(goodPages(1));
  stafd.changed();
  assert.deepEqual(nvmeNqns((await t.rec.next("recovered")).pages), nqns(1));
});

Deno.test("signals from a peer other than stafd are ignored", async () => {
  await using t = await setup();
  const stafd = await t.standin(3);
  await t.rec.next("appeared");
  const rogue = openNextBus(t.bus.address);
  try {
    await rogue.requestName("org.nvmexpress.staf", 4); // refused: stafd owns it; proves the connection is up
    rogue.send(dbus.Message.newSignal(STAF.path, STAF.iface, "log_pages_changed", "", []));
    await new Promise((r) => setTimeout(r, 100));
    stafd.changed();
    assert.equal((await t.rec.next("changed")).reason, "changed");
    assert.equal(stafd.calls, 2, "only stafd's own signal caused a read");
  } finally {
    await closeNextBus(rogue);
  }
});

Deno.test("an answer of the previous stafd is dropped when stafd restarts meanwhile", async () => {
  await using t = await setup();
  const first = await t.standin(3);
  await t.rec.next("appeared");
  first.answerWith({ kind: "hang" });
  first.changed();
  await until(() => first.calls === 2, "the hanging call");
  await first.close();
  await t.standin(2);
  assert.equal((await t.rec.next("vanished")).reason, "vanished");
  const back = await t.rec.next("appeared");
  assert.deepEqual(nvmeNqns(back.pages), nqns(2));
  assert.equal(await t.rec.another(200), undefined, "no late 'failed' for the abandoned call");
  assert.equal(t.clock.pending, 0, "the abandoned call's timer is gone too");
});

Deno.test("close() is prompt and idempotent, even with a call in flight", async () => {
  await using t = await setup();
  const stafd = await t.standin(3);
  await t.rec.next("appeared");
  stafd.answerWith({ kind: "hang" });
  stafd.changed();
  await until(() => stafd.calls === 2, "the hanging call");
  const start = performance.now();
  await Promise.all([t.follower.close(), t.follower.close()]);
  await t.follower.close();
  assert.ok(performance.now() - start < 1_000, "closing does not wait for stafd");
  assert.equal(await t.follower.closed, "closed");
  assert.equal(t.clock.pending, 0);
  await stafd.close();
  assert.equal(await t.rec.another(100), undefined, "nothing is delivered after close()");
});

Deno.test("losing the bus itself makes the pages unknown, and is logged as an error", async () => {
  await using t = await setup();
  await t.standin(3);
  await t.rec.next("appeared");
  await t.bus.close();
  assert.deepEqual(
    await t.rec.next("vanished"),
    { pages: undefined, reason: "vanished" },
    "stafd is gone from view: when seen again, it gets the soak of a returning stafd",
  );
  assert.equal(t.follower.owner, undefined);
  assert.match(
    t.sink.text(),
    /ERROR: D-Bus connection lost \(.*\): stafd's log pages stay unknown/,
  );
  assert.match(await t.follower.closed, /^D-Bus connection lost: /, "for bus_keeper.ts");
  await t.follower.close();
});

Deno.test("followStafd() rejects clearly when there is no bus", async () => {
  await assert.rejects(
    followStafd({
      busAddress: "unix:path=/nonexistent/stafd-test-bus",
      log: memoryLogger().log,
      onPages: () => {},
    }),
    /Cannot connect to the D-Bus system bus at unix:path=\/nonexistent\/stafd-test-bus: .*(ENOENT|No such file)/,
  );
});

for (const [kind, { answer, outcome }] of Object.entries(GARBAGE)) {
  Deno.test(`stafd answering garbage (${kind}) is survived: ${outcome}, with a log line`, async () => {
    await using t = await setup();
    const stafd = await t.standin(3);
    await t.rec.next("appeared");
    stafd.answerWith(answer);
    stafd.changed();
    const bad = await t.rec.next(`the answer to ${kind}`);
    const warnings = t.sink.lines.filter((l) => l.priority === 4).map((l) => l.line);
    assert.ok(warnings.length > 0, "at least one warning");
    for (const line of t.sink.lines) {
      assert.ok(line.line.length < 600, `bounded: ${line.line.slice(0, 80)}`);
    }
    if (outcome === "unknown") {
      assert.deepEqual(bad, { pages: undefined, reason: "failed" }, "unknown, not empty");
    } else {
      assert.equal(bad.reason, "changed");
      assert.ok(
        nvmeNqns(bad.pages)?.some((n) => n.startsWith("nqn.x:ok")),
        "the good entries stay",
      );
    }
    stafd.serve(goodPages(2));
    stafd.changed();
    assert.deepEqual(nvmeNqns((await t.rec.next("good again")).pages), nqns(2));
  });
}
