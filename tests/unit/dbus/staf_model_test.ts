import assert from "node:assert/strict";
import { systemClock } from "../../../lib/clock.ts";
import { DISCOVERY_NQN } from "../../../lib/core/connect_request.ts";
import { makeTid, tidKey } from "../../../lib/core/transport_id.ts";
import { pyJson } from "../../../lib/dbus/py_json.ts";
import { createStafModel, entryDict, type StafdStatus } from "../../../lib/dbus/staf_model.ts";
import type { DcSnapshot, FinderSnapshot } from "../../../lib/finder/finder.ts";
import { HOSTNQN, logEntry } from "../fakes.ts";

function dc(traddr: string, entries: DcSnapshot["entries"]): DcSnapshot {
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
    known: entries !== undefined,
  };
}

Deno.test("get_all_log_pages is exactly pyJson of upstream's structure, page texts reused", () => {
  const page = Object.freeze([logEntry(), logEntry({ traddr: "10.0.0.2" })]);
  let finder: FinderSnapshot = { dcs: [dc("192.168.1.10", page), dc("192.168.1.11", undefined)] };
  const status = (): StafdStatus => ({
    tron: false,
    host: { hostNqn: HOSTNQN, hasHostKey: false },
    ignoreIface: false,
    finder,
  });
  const model = createStafModel({
    status,
    setTron() {},
    clock: systemClock,
    cacheFile: "/run/stafd/discovery-pages",
    kernelOptions: undefined,
  });
  const expected = () =>
    pyJson(finder.dcs.map((d, i) => ({
      "discovery-controller": model.listControllers(false)[i],
      "log-pages": (d.entries ?? []).map(entryDict),
    })));
  assert.equal(model.allLogPages(false), expected());
  assert.equal(model.allLogPages(false), expected(), "the same when asked again");
  // A new page (a read replaces the array) shows, never the text of the old one.
  finder = { dcs: [dc("192.168.1.10", Object.freeze([logEntry({ traddr: "10.0.0.9" })]))] };
  assert.equal(model.allLogPages(false), expected());
  assert.match(model.allLogPages(true), /"10\.0\.0\.9"/);
});
