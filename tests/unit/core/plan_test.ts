import assert from "node:assert/strict";
import type { DesiredController, Origin } from "../../../lib/core/desired_set.ts";
import type { KernelController } from "../../../lib/core/kernel_controller.ts";
import type { ManagedOrigin } from "../../../lib/core/managed_controller.ts";
import {
  disconnectsOnRemoval,
  type ManagedView,
  plan,
  type Policy,
} from "../../../lib/core/plan.ts";
import {
  makeTid,
  matchesKernelController,
  printableTid,
  tidKey,
} from "../../../lib/core/transport_id.ts";
import { HOSTID, HOSTNQN, kernelController, SUBNQN } from "../fakes.ts";

/** A member of the desired set on `traddr`:4420. */
function want(traddr: string, origin: Origin = "configured", transport = "tcp"): DesiredController {
  const tid = makeTid({ transport, traddr, trsvcid: "4420", subsysnqn: SUBNQN }, {
    hostNqn: HOSTNQN,
  });
  return {
    key: tidKey(tid),
    tid,
    id: printableTid(tid),
    origin,
    ncc: false,
    request: {
      target: { transport, traddr, trsvcid: "4420", subsysnqn: SUBNQN },
      host: { hostnqn: HOSTNQN, hostid: HOSTID },
    },
  };
}

/** A controller stacd manages on `traddr`, connected as `device` (if given). */
function managed(
  traddr: string,
  origin: ManagedOrigin,
  device?: string,
  transport = "tcp",
): ManagedView {
  const tid = want(traddr, "configured", transport).tid;
  return {
    key: tidKey(tid),
    origin,
    transport,
    device,
    connected: device !== undefined,
    matches: (k) => matchesKernelController(tid, k),
  };
}

const set = (...members: DesiredController[]) => new Map(members.map((d) => [d.key, d]));
const matchesDesired = (d: DesiredController, k: KernelController) =>
  matchesKernelController(d.tid, k);

const ONLY_STAS: Policy = {
  scope: "only-stas-connections",
  trtypes: ["tcp"],
  discoveredKnown: true,
  bootConnections: false,
};
const NO_DISCONNECT: Policy = { ...ONLY_STAS, scope: "no-disconnect" };
const ALL_MATCHING: Policy = { ...ONLY_STAS, scope: "all-connections-matching-disconnect-trtypes" };

const keyOf = (traddr: string, transport = "tcp") => want(traddr, "configured", transport).key;
const addrs = (list: DesiredController[]) => list.map((d) => d.tid.traddr);

Deno.test("plan() adds new members of the desired set and updates managed ones", () => {
  const result = plan(
    set(want("10.0.0.1"), want("10.0.0.2")),
    [managed("10.0.0.1", "configured", "nvme0")],
    [kernelController({ device: "nvme0", traddr: "10.0.0.1" })],
    ONLY_STAS,
    matchesDesired,
  );
  assert.deepEqual(addrs(result.add), ["10.0.0.2"]);
  assert.deepEqual(addrs(result.update), ["10.0.0.1"]);
  assert.deepEqual(result.dispose, []);
  assert.deepEqual(result.audit, []);
});

Deno.test("plan() disconnects controllers removed from config under only-stas-connections", () => {
  const result = plan(
    set(want("10.0.0.1")),
    [managed("10.0.0.1", "configured", "nvme0"), managed("10.0.0.2", "configured", "nvme1")],
    [],
    ONLY_STAS,
    matchesDesired,
  );
  assert.deepEqual(result.dispose, [{ key: keyOf("10.0.0.2"), disconnect: true }]);
});

Deno.test("plan() keeps the connection of removed controllers under no-disconnect", () => {
  const result = plan(
    set(),
    [managed("10.0.0.1", "configured", "nvme0"), managed("10.0.0.2", "discovered", "nvme1")],
    [],
    NO_DISCONNECT,
    matchesDesired,
  );
  assert.deepEqual(result.dispose, [
    { key: keyOf("10.0.0.1"), disconnect: false },
    { key: keyOf("10.0.0.2"), disconnect: false },
  ]);
});

Deno.test("plan() disconnects removed controllers only of disconnect-trtypes under all-connections-matching-disconnect-trtypes", () => {
  const members = [
    managed("10.0.0.1", "configured", "nvme0", "tcp"),
    managed("10.0.0.2", "configured", "nvme1", "rdma"),
  ];
  assert.deepEqual(plan(set(), members, [], ALL_MATCHING, matchesDesired).dispose, [
    { key: keyOf("10.0.0.1", "tcp"), disconnect: true },
    { key: keyOf("10.0.0.2", "rdma"), disconnect: false },
  ]);
  const both = { ...ALL_MATCHING, trtypes: ["tcp", "rdma"] } as const;
  assert.deepEqual(plan(set(), members, [], both, matchesDesired).dispose, [
    { key: keyOf("10.0.0.1", "tcp"), disconnect: true },
    { key: keyOf("10.0.0.2", "rdma"), disconnect: true },
  ]);
  const rdmaOnly = { ...ALL_MATCHING, trtypes: ["rdma"] } as const;
  assert.deepEqual(plan(set(), members, [], rdmaOnly, matchesDesired).dispose, [
    { key: keyOf("10.0.0.1", "tcp"), disconnect: false },
    { key: keyOf("10.0.0.2", "rdma"), disconnect: true },
  ]);
});

Deno.test("disconnectsOnRemoval() follows the disconnect-scope", () => {
  assert.equal(disconnectsOnRemoval(ONLY_STAS, "rdma"), true);
  assert.equal(disconnectsOnRemoval(NO_DISCONNECT, "tcp"), false);
  assert.equal(disconnectsOnRemoval(ALL_MATCHING, "tcp"), true);
  assert.equal(disconnectsOnRemoval(ALL_MATCHING, "fc"), false);
});

Deno.test("plan() keeps discovered controllers while stafd's answer is unknown", () => {
  const result = plan(
    set(),
    [managed("10.0.0.1", "discovered", "nvme0"), managed("10.0.0.2", "configured", "nvme1")],
    [],
    { ...ONLY_STAS, discoveredKnown: false },
    matchesDesired,
  );
  assert.deepEqual(result.dispose, [{ key: keyOf("10.0.0.2"), disconnect: true }]);
});

Deno.test("plan() disposes discovered controllers that left a known discovered set", () => {
  const result = plan(
    set(want("10.0.0.2", "discovered")),
    [managed("10.0.0.1", "discovered", "nvme0"), managed("10.0.0.2", "discovered", "nvme1")],
    [],
    ONLY_STAS,
    matchesDesired,
  );
  assert.deepEqual(result.dispose, [{ key: keyOf("10.0.0.1"), disconnect: true }]);
});

Deno.test("plan() audits nothing under only-stas-connections and no-disconnect", () => {
  const kernel = [kernelController({ device: "nvme5", traddr: "10.0.0.9" })];
  for (const policy of [ONLY_STAS, NO_DISCONNECT]) {
    assert.deepEqual(plan(set(), [], kernel, policy, matchesDesired).audit, [], policy.scope);
  }
});

Deno.test("plan() audit disconnects an unwanted tcp connection when discovered is known and no NBFT", () => {
  const stranger = kernelController({ device: "nvme5", traddr: "10.0.0.9" });
  const result = plan(set(), [], [stranger], ALL_MATCHING, matchesDesired);
  assert.deepEqual(result.audit, [{ kernel: stranger, disconnect: true }]);
});

Deno.test("plan() audit adopts but disconnects nothing while stafd's answer is unknown", () => {
  const stranger = kernelController({ device: "nvme5", traddr: "10.0.0.9" });
  const policy = { ...ALL_MATCHING, discoveredKnown: false };
  const result = plan(set(), [], [stranger], policy, matchesDesired);
  assert.deepEqual(result.audit, [{ kernel: stranger, disconnect: false }]);
});

Deno.test("plan() audit adopts but disconnects nothing when the firmware lists boot connections", () => {
  const stranger = kernelController({ device: "nvme5", traddr: "10.0.0.9" });
  const policy = { ...ALL_MATCHING, bootConnections: true };
  const result = plan(set(), [], [stranger], policy, matchesDesired);
  assert.deepEqual(result.audit, [{ kernel: stranger, disconnect: false }]);
});

Deno.test("plan() audit never touches PCIe, discovery, deleting or other-transport controllers", () => {
  const kernel = [
    kernelController({ device: "nvme0", transport: "pcie", traddr: "0000:01:00.0", trsvcid: "" }),
    kernelController({ device: "nvme1", cntrltype: "discovery", traddr: "10.0.0.1" }),
    kernelController({ device: "nvme2", state: "deleting", traddr: "10.0.0.2" }),
    kernelController({ device: "nvme3", state: "deleting (no IO)", traddr: "10.0.0.3" }),
    kernelController({ device: "nvme4", transport: "rdma", traddr: "10.0.0.4" }),
    // Before kernel 5.18: no cntrltype, and no namespaces means a discovery controller.
    kernelController({ device: "nvme6", cntrltype: "", traddr: "10.0.0.6" }),
    kernelController({ device: "nvme7", cntrltype: "", traddr: "10.0.0.7", hasNamespaces: true }),
  ];
  const result = plan(set(), [], kernel, ALL_MATCHING, matchesDesired);
  assert.deepEqual(result.audit.map((a) => a.kernel.device), ["nvme7"]);
});

Deno.test("plan() audit leaves alone connections that are managed or wanted", () => {
  const kernel = [
    kernelController({ device: "nvme0", traddr: "10.0.0.1" }), // managed, by device
    kernelController({ device: "nvme1", traddr: "10.0.0.2" }), // managed, not yet connected
    kernelController({ device: "nvme2", traddr: "10.0.0.3" }), // wanted, about to be adopted
    kernelController({ device: "nvme3", traddr: "10.0.0.4" }), // nobody's
  ];
  const result = plan(
    set(want("10.0.0.1"), want("10.0.0.2"), want("10.0.0.3")),
    [managed("10.0.0.1", "configured", "nvme0"), managed("10.0.0.2", "configured")],
    kernel,
    ALL_MATCHING,
    matchesDesired,
  );
  assert.deepEqual(result.audit.map((a) => a.kernel.device), ["nvme3"]);
  assert.deepEqual(addrs(result.add), ["10.0.0.3"]);
});

Deno.test("plan() keeps audited connections until the audit may disconnect, then disconnects them", () => {
  const audited = [managed("10.0.0.9", "audited", "nvme5")];
  const unknown = { ...ALL_MATCHING, discoveredKnown: false };
  assert.deepEqual(plan(set(), audited, [], unknown, matchesDesired).dispose, []);
  const boot = { ...ALL_MATCHING, bootConnections: true };
  assert.deepEqual(plan(set(), audited, [], boot, matchesDesired).dispose, []);
  assert.deepEqual(plan(set(), audited, [], ALL_MATCHING, matchesDesired).dispose, [
    { key: keyOf("10.0.0.9"), disconnect: true },
  ]);
});

Deno.test("plan() never disconnects an audited connection once the scope is only-stas-connections", () => {
  // Adopted by the audit under all-connections-matching-disconnect-trtypes, then
  // the scope changed on reload: stacd did not make this connection.
  const audited = [managed("10.0.0.9", "audited", "nvme5")];
  assert.deepEqual(plan(set(), audited, [], ONLY_STAS, matchesDesired).dispose, [
    { key: keyOf("10.0.0.9"), disconnect: false },
  ]);
  assert.deepEqual(plan(set(), audited, [], NO_DISCONNECT, matchesDesired).dispose, [
    { key: keyOf("10.0.0.9"), disconnect: false },
  ]);
});

Deno.test("plan() updates an audited controller that joins the desired set instead of adding it", () => {
  const result = plan(
    set(want("10.0.0.9", "configured")),
    [managed("10.0.0.9", "audited", "nvme5")],
    [kernelController({ device: "nvme5", traddr: "10.0.0.9" })],
    ALL_MATCHING,
    matchesDesired,
  );
  assert.deepEqual(addrs(result.update), ["10.0.0.9"]);
  assert.deepEqual(result.add, []);
  assert.deepEqual(result.dispose, []);
  assert.deepEqual(result.audit, []);
});

Deno.test("plan() disposes of an excluded discovered controller even while stafd's answer is unknown", () => {
  const kept = managed("192.168.1.20", "discovered", "nvme1");
  const excluded = { ...managed("192.168.1.21", "discovered", "nvme2"), excluded: true };
  const p = plan(
    set(),
    [kept, excluded],
    [],
    { ...ONLY_STAS, discoveredKnown: false },
    matchesDesired,
  );
  assert.deepEqual(p.dispose, [{ key: excluded.key, disconnect: true }]);
});
