import assert from "node:assert/strict";
import {
  HostIdConflictError,
  pairedHost,
  preferredHostId,
  refusesSharedHostId,
  uuidOfNqn,
} from "../../../lib/core/host_id.ts";
import { HOSTID, HOSTNQN, kernelController, sysConfig } from "../fakes.ts";

const OTHER_NQN = "nqn.2014-08.com.example:host-b";
const OTHER_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const UUID_NQN = `nqn.2014-08.org.nvmexpress:uuid:${OTHER_ID.toUpperCase()}`;

Deno.test("uuidOfNqn() reads the UUID of a uuid-form NQN only", () => {
  assert.equal(uuidOfNqn(UUID_NQN), OTHER_ID);
  assert.equal(uuidOfNqn(OTHER_NQN), undefined);
  assert.equal(uuidOfNqn("nqn.2014-08.com.example:uuid:not-a-uuid"), undefined);
});

Deno.test("preferredHostId() gives sys.conf's NQN sys.conf's ID", () => {
  assert.equal(preferredHostId(HOSTNQN, sysConfig()), HOSTID);
  assert.equal(preferredHostId(HOSTNQN, sysConfig({ hostId: undefined })), "");
});

Deno.test("preferredHostId() gives a uuid-form NQN its own UUID", () => {
  assert.equal(preferredHostId(UUID_NQN, sysConfig()), OTHER_ID);
});

Deno.test("preferredHostId() never gives another NQN sys.conf's ID", () => {
  // A uuid-form NQN carrying sys.conf's ID while sys.conf's NQN is another one.
  const sys = sysConfig({ hostNqn: "nqn.2014-08.com.example:host-a" });
  const id = preferredHostId(HOSTNQN, sys);
  assert.notEqual(id, HOSTID);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

Deno.test("preferredHostId() derives a stable ID per host for any other NQN", () => {
  const id = preferredHostId(OTHER_NQN, sysConfig());
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(id, HOSTID);
  assert.equal(preferredHostId(OTHER_NQN, sysConfig()), id);
  assert.notEqual(preferredHostId("nqn.2014-08.com.example:host-c", sysConfig()), id);
  const otherHost = sysConfig({ hostNqn: "nqn.2014-08.com.example:host-a" });
  assert.notEqual(preferredHostId(OTHER_NQN, otherHost), id);
});

Deno.test("pairedHost() takes the ID the kernel pairs with the NQN", () => {
  const kernel = [
    kernelController({ device: "nvme0" }),
    kernelController({
      device: "nvme1",
      cntrltype: "discovery",
      hostnqn: OTHER_NQN,
      hostid: OTHER_ID,
    }),
  ];
  const host = {
    hostnqn: OTHER_NQN,
    hostid: preferredHostId(OTHER_NQN, sysConfig()),
    symname: "h",
  };
  assert.deepEqual(pairedHost(host, kernel, true), { ...host, hostid: OTHER_ID });
  const sys = { hostnqn: HOSTNQN, hostid: HOSTID };
  assert.equal(pairedHost(sys, kernel, true), sys);
});

Deno.test("pairedHost() keeps the ID of an NQN the kernel does not know", () => {
  const host = { hostnqn: OTHER_NQN, hostid: OTHER_ID };
  assert.equal(
    pairedHost(host, [kernelController(), kernelController({ hostnqn: "", hostid: "" })], true),
    host,
  );
});

Deno.test("pairedHost() refuses an ID the kernel pairs with another NQN, naming both", () => {
  const kernel = [kernelController({ device: "nvme2", hostnqn: OTHER_NQN, hostid: HOSTID })];
  assert.throws(
    () => pairedHost({ hostnqn: HOSTNQN, hostid: HOSTID }, kernel, true),
    (error: unknown) =>
      error instanceof HostIdConflictError &&
      error.message ===
        `Host ID ${HOSTID} is paired with host NQN ${OTHER_NQN} (nvme2) in the kernel, ` +
          `which refuses it for host NQN ${HOSTNQN}; not connecting`,
  );
});

Deno.test("pairedHost() sends a shared ID where the kernel takes it (before 6.5)", () => {
  const kernel = [kernelController({ device: "nvme2", hostnqn: OTHER_NQN, hostid: HOSTID })];
  const host = { hostnqn: HOSTNQN, hostid: HOSTID };
  assert.equal(pairedHost(host, kernel, false), host);
  // The NQN's own pair still wins: another ID would be written over its controllers'.
  const paired = [kernelController({ hostnqn: OTHER_NQN, hostid: OTHER_ID })];
  assert.equal(pairedHost({ hostnqn: OTHER_NQN, hostid: HOSTID }, paired, false).hostid, OTHER_ID);
});

Deno.test("refusesSharedHostId() is true from kernel 6.5 on", () => {
  assert.equal(refusesSharedHostId("6.12.117+deb13-amd64"), true);
  assert.equal(refusesSharedHostId("6.5.0"), true);
  assert.equal(refusesSharedHostId("7.0.1"), true);
  assert.equal(refusesSharedHostId("6.1.0-57-amd64"), false);
  assert.equal(refusesSharedHostId("5.14.0-503.el9.x86_64"), false);
  assert.equal(refusesSharedHostId("garbage"), false);
});
