import assert from "node:assert/strict";
import { systemClock } from "../../../lib/clock.ts";
import { DISCOVERY_NQN } from "../../../lib/core/connect_request.ts";
import type { DiscoveredPage } from "../../../lib/core/desired_set.ts";
import { makeTid, tidKey } from "../../../lib/core/transport_id.ts";
import { createStafModel, type StafdStatus } from "../../../lib/dbus/staf_model.ts";
import type { DcSnapshot, FinderSnapshot } from "../../../lib/finder/finder.ts";
import { followFinder } from "../../../lib/finder/in_process.ts";
import type { StafdApp } from "../../../lib/finder/stafd_app.ts";
import { createLogger } from "../../../lib/logger.ts";
import { MemorySink } from "../../memory_sink.ts";
import { HOSTNQN, logEntry } from "../fakes.ts";

function dc(
  traddr: string,
  entries: DcSnapshot["entries"],
  known = entries !== undefined,
): DcSnapshot {
  const tid = makeTid(
    { transport: "tcp", traddr, trsvcid: "8009", subsysnqn: DISCOVERY_NQN },
    { hostNqn: HOSTNQN },
  );
  return {
    key: tidKey(tid),
    id: traddr,
    tid,
    origin: "configured",
    phase: "connected",
    device: "nvme0",
    attempts: 0,
    lastDelayMs: 60_000,
    entries,
    fetchFailures: 0,
    known,
  };
}

/** A finder app as the connector sees it: its model and its change listeners. */
function fakeFinder(snapshot: FinderSnapshot) {
  let current = snapshot;
  const listeners: (() => void)[] = [];
  const status = (): StafdStatus => ({
    tron: false,
    host: { hostNqn: HOSTNQN, hasHostKey: false },
    ignoreIface: false,
    finder: current,
  });
  const app: StafdApp = {
    model: createStafModel({
      status,
      setTron() {},
      clock: systemClock,
      cacheFile: "/run/stacd/discovery-pages",
      kernelOptions: undefined,
    }),
    snapshot: () => current,
    onChange: (l) => void listeners.push(l),
    reload() {},
    stop: () => Promise.resolve(),
  };
  return {
    app,
    change(next: FinderSnapshot) {
      current = next;
      for (const l of listeners) l();
    },
  };
}

Deno.test("the connector follows the in-process finder: unknown until every DC was read", async () => {
  const f = fakeFinder({ dcs: [dc("10.0.0.1", [logEntry()]), dc("10.0.0.2", undefined)] });
  const got: [DiscoveredPage[] | undefined, string][] = [];
  followFinder(f.app, { log: createLogger(new MemorySink()), onPages: (p, r) => got.push([p, r]) });
  assert.deepEqual(got, [[undefined, "appeared"]], "a DC never read: unknown, not empty");
  // A burst of changes in one turn is one delivery.
  f.change({ dcs: [dc("10.0.0.1", [logEntry()]), dc("10.0.0.2", [])] });
  f.change({
    dcs: [dc("10.0.0.1", [logEntry()]), dc("10.0.0.2", [logEntry({ traddr: "10.9.9.9" })])],
  });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(got.length, 2);
  const [pages, reason] = got[1]!;
  assert.equal(reason, "changed");
  assert.deepEqual(pages?.map((p) => p.entries.map((e) => e.traddr)), [["192.168.1.20"], [
    "10.9.9.9",
  ]]);
  assert.equal(pages?.[0]?.hostNqn, HOSTNQN);
});

Deno.test("the connector reads the finder's pages through stafd's reader: bad entries are dropped", () => {
  const bad = logEntry({ traddr: "10.0.0.1,nr_io_queues=1" });
  const f = fakeFinder({ dcs: [dc("10.0.0.1", [logEntry(), bad])] });
  const got: (DiscoveredPage[] | undefined)[] = [];
  const sink = new MemorySink();
  followFinder(f.app, { log: createLogger(sink), onPages: (p) => got.push(p) });
  assert.equal(got[0]?.[0]?.entries.length, 1);
  assert.match(sink.text(), /contains ",", which a connect cannot carry/);
});

Deno.test("a DC that never answered stops holding up the others once it failed", () => {
  const f = fakeFinder({ dcs: [dc("10.0.0.1", [logEntry()]), dc("10.0.0.2", undefined, true)] });
  const got: (DiscoveredPage[] | undefined)[] = [];
  followFinder(f.app, { log: createLogger(new MemorySink()), onPages: (p) => got.push(p) });
  assert.deepEqual(got[0]?.map((p) => p.entries.length), [1, 0]);
});
