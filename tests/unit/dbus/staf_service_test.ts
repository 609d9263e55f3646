/**
 * stafd's D-Bus service on a real dbus-daemon (private bus, shipped
 * policy): upstream 2.4.1's members and signatures, the replies' shapes,
 * root-only tron, and our own stacd's follower reading it end to end.
 */
import assert from "node:assert/strict";
import { DISCOVERY_NQN } from "../../../lib/core/connect_request.ts";
import { makeTid, tidKey } from "../../../lib/core/transport_id.ts";
import type { DcSnapshot, FinderSnapshot } from "../../../lib/finder/finder.ts";
import { createStafModel, type StafdStatus } from "../../../lib/dbus/staf_model.ts";
import { startStafService } from "../../../lib/dbus/staf_service.ts";
import { parseLogPages } from "../../../lib/dbus/stafd_pages.ts";
import { followStafd } from "../../../lib/dbus/stafd_follower.ts";
import type { DiscoveredPage } from "../../../lib/core/desired_set.ts";
import { createLogger } from "../../../lib/logger.ts";
import { systemClock } from "../../../lib/clock.ts";
import { MemorySink } from "../../memory_sink.ts";
import { startPrivateBus } from "../../dbus/private_bus.ts";
import { busctl, hasCommand, introspectedMembers } from "../../dbus/stac_fixture.ts";
import { HOSTNQN, logEntry } from "../fakes.ts";

const noBusctl = !hasCommand("busctl");
const STAF = ["org.nvmexpress.staf", "/org/nvmexpress/staf"];
const IDS = "in s transport, in s traddr, in s trsvcid, in s subsysnqn, in s host_traddr, " +
  "in s host_iface, in s host_nqn";

/** Upstream 2.4.1's staslib/stafd.idl, written out. */
const UPSTREAM_MEMBERS = [
  "org.nvmexpress.staf.debug property tron b readwrite",
  "org.nvmexpress.staf.debug property log_level s read",
  "org.nvmexpress.staf.debug method process_info(out s info_json)",
  `org.nvmexpress.staf.debug method controller_info(${IDS}, out s info_json)`,
  "org.nvmexpress.staf method list_controllers(in b detailed, out aa{ss} controller_list)",
  `org.nvmexpress.staf method get_log_pages(${IDS}, out aa{ss} log_pages)`,
  "org.nvmexpress.staf method get_all_log_pages(in b detailed, out s log_pages_json)",
  "org.nvmexpress.staf signal log_pages_changed(s transport, s traddr, s trsvcid, s subsysnqn, " +
  "s host_traddr, s host_iface, s host_nqn, s device)",
  "org.nvmexpress.staf signal dc_removed()",
];

function dc(traddr: string, over: Partial<DcSnapshot> = {}): DcSnapshot {
  const tid = makeTid(
    { transport: "tcp", traddr, trsvcid: "8009", subsysnqn: DISCOVERY_NQN },
    { hostNqn: HOSTNQN },
  );
  return {
    key: tidKey(tid),
    id: `(tcp, ${traddr}, 8009, ${DISCOVERY_NQN})`,
    tid,
    origin: "configured",
    phase: "connected",
    device: "nvme0",
    attempts: 0,
    lastDelayMs: 60_000,
    entries: [logEntry({ traddr: "10.0.0.1" }), logEntry({ traddr: "10.0.0.2", eflags: "4" })],
    fetchFailures: 0,
    known: true,
    ...over,
  };
}

async function fixture(snapshot: FinderSnapshot) {
  const bus = await startPrivateBus();
  const sink = new MemorySink();
  let tron = false;
  const status = (): StafdStatus => ({
    tron,
    host: { hostNqn: HOSTNQN, hostId: "id", hasHostKey: true },
    ignoreIface: false,
    finder: snapshot,
  });
  const model = createStafModel({
    status,
    setTron: (on) => tron = on,
    clock: systemClock,
    cacheFile: "/run/stafd/last-known-config",
    kernelOptions: undefined,
  });
  const log = createLogger(sink, { tron: true });
  const service = await startStafService(model, { log, busAddress: bus.address });
  return {
    bus,
    service,
    sink,
    get tron() {
      return tron;
    },
    async [Symbol.asyncDispose]() {
      await service.close();
      await bus.close();
    },
  };
}

const SNAPSHOT: FinderSnapshot = {
  dcs: [
    dc("192.168.1.10"),
    dc("192.168.1.11", {
      phase: "waiting",
      device: undefined,
      entries: undefined,
      known: false,
    }),
  ],
};

Deno.test({
  name: "stafd's object has exactly upstream 2.4.1's members, signals included",
  ignore: noBusctl,
  async fn() {
    await using f = await fixture(SNAPSHOT);
    const ran = await busctl(f.bus, ["introspect", "--xml-interface", ...STAF]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual(introspectedMembers(ran.stdout).sort(), [...UPSTREAM_MEMBERS].sort());
  },
});

Deno.test({
  name: "get_all_log_pages is upstream's JSON, which stacd's reader takes as complete",
  ignore: noBusctl,
  async fn() {
    await using f = await fixture(SNAPSHOT);
    const ran = await busctl(f.bus, [
      "--json=short",
      "call",
      ...STAF,
      "org.nvmexpress.staf",
      "get_all_log_pages",
      "b",
      "true",
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    const text = JSON.parse(ran.stdout).data[0] as string;
    assert.match(
      text,
      /^\[\{"discovery-controller": \{"traddr": "192.168.1.10", "trsvcid": "8009", /,
    );
    const parsed = parseLogPages(text);
    assert.equal(parsed.complete, true, parsed.problems.join("\n"));
    assert.deepEqual(parsed.pages.map((p) => p.entries.length), [2, 0]);
    const doc = JSON.parse(text);
    assert.deepEqual(Object.keys(doc[0]["log-pages"][0]), [
      "trtype",
      "adrfam",
      "traddr",
      "trsvcid",
      "subnqn",
      "subtype",
      "treq",
      "portid",
      "cntlid",
      "asqsz",
      "eflags",
    ]);
    assert.equal(doc[1]["discovery-controller"].device, "nvme?");
    assert.equal(doc[0]["discovery-controller"].connected, "True");
  },
});

Deno.test({
  name: "get_log_pages and list_controllers answer in upstream's shapes; unknown DC is []",
  ignore: noBusctl,
  async fn() {
    await using f = await fixture(SNAPSHOT);
    const call = async (member: string, ...args: string[]) => {
      const ran = await busctl(f.bus, [
        "--json=short",
        "call",
        ...STAF,
        "org.nvmexpress.staf",
        member,
        ...args,
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      return JSON.parse(ran.stdout).data[0];
    };
    const ids = (
      traddr: string,
    ) => ["sssssss", "tcp", traddr, "8009", DISCOVERY_NQN, "", "", HOSTNQN];
    const pages = await call("get_log_pages", ...ids("192.168.1.10"));
    assert.deepEqual(pages.map((e: Record<string, string>) => e.traddr), ["10.0.0.1", "10.0.0.2"]);
    assert.deepEqual(await call("get_log_pages", ...ids("192.168.9.9")), []);
    const list = await call("list_controllers", "b", "false");
    assert.deepEqual(Object.keys(list[0]), [
      "traddr",
      "trsvcid",
      "transport",
      "subsysnqn",
      "host-iface",
      "host-traddr",
      "host-nqn",
      "device",
    ]);
  },
});

Deno.test({
  name: "anyone reads stafd; only root sets tron",
  ignore: noBusctl || Deno.uid() !== 0,
  async fn() {
    await using f = await fixture(SNAPSHOT);
    const read = await busctl(f.bus, [
      "call",
      ...STAF,
      "org.nvmexpress.staf",
      "list_controllers",
      "b",
      "true",
    ], { asNobody: true });
    assert.equal(read.code, 0, read.stderr);
    assert.doesNotMatch(read.stdout, /DHHC-1|<redacted>/);
    const set = await busctl(f.bus, [
      "set-property",
      ...STAF,
      "org.nvmexpress.staf.debug",
      "tron",
      "b",
      "true",
    ], { asNobody: true });
    assert.notEqual(set.code, 0);
    assert.equal(f.tron, false);
    const root = await busctl(f.bus, [
      "set-property",
      ...STAF,
      "org.nvmexpress.staf.debug",
      "tron",
      "b",
      "true",
    ]);
    assert.equal(root.code, 0, root.stderr);
    assert.equal(f.tron, true);
  },
});

Deno.test("stacd's follower reads our stafd, and re-reads on log_pages_changed", async () => {
  await using f = await fixture(SNAPSHOT);
  const got: [DiscoveredPage[] | undefined, string][] = [];
  const changed = Promise.withResolvers<void>();
  await using _follower = await followStafd({
    busAddress: f.bus.address,
    log: createLogger(new MemorySink()),
    onPages: (pages, reason) => {
      got.push([pages, reason]);
      if (reason === "changed") changed.resolve();
    },
  });
  while (got.length === 0) await new Promise((r) => setTimeout(r, 10));
  assert.equal(got[0]?.[1], "appeared");
  assert.equal(got[0]?.[0]?.[0]?.entries.length, 2);
  f.service.emitLogPagesChanged(SNAPSHOT.dcs[0]!);
  await changed.promise;
  f.service.emitDcRemoved();
});
