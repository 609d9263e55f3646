/**
 * Host NQN / host ID pairs (issue 15 item 15) against the guest's real
 * kernel, which keeps one host ID per host NQN: 6.12 refuses (EINVAL) a
 * pair it knows differently, 6.1 takes it and writes the new ID over the
 * NQN's other controllers. A discovery controller is connected with
 * another NQN and ID than sys.conf's, as a stafd with a sys.conf of its own
 * (upstream 2.4.1 connects with its sys.conf's pair) leaves it, and the
 * stand-in reports that NQN; stacd must connect what it discovers there,
 * a configured controller with its own host-nqn, and sys.conf's own pair,
 * each with the pair sysfs then shows, and leave the DC's pair alone.
 * Runs only in the guest: run_suite.ts host_pair
 */
import assert from "node:assert/strict";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import { discoverySource } from "../dbus/stafd_sources.ts";
import { STAC_POLICY, STAF_POLICY, startPrivateBus } from "../dbus/private_bus.ts";
import { StafdStandin } from "../stafd_standin.ts";
import {
  connectRaw,
  controllersOf,
  deleteAllControllers,
  hostIdentity,
  sysfsAttribute,
} from "./nvme_host.ts";
import { StacdProcess, waitForLiveSet } from "./stacd_process.ts";
import { createLinkedPort, createTarget, LOOPBACK_PORT, type TargetPort } from "./target.ts";

const CONFIGURED_PORT: TargetPort = { id: 2, adrfam: "ipv4", traddr: "127.0.0.1", trsvcid: 4421 };
const DC_HOST = {
  hostnqn: "nqn.2014-08.com.example:stafd-dc-host",
  hostid: "6a1d3c0e-5f7b-4e2a-9c1d-0b8e7f6a5d4c",
};
const OWN_NQN = "nqn.2014-08.com.example:controller-host";
const UUID_ID = "2f4e6a8c-1b3d-4f5e-8a7c-9d0e1f2a3b4c";
const UUID_NQN = `nqn.2014-08.org.nvmexpress:uuid:${UUID_ID}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The host NQN and ID sysfs shows for the one controller of subsystem `nqn`. */
function pairOf(nqn: string): { hostnqn: string; hostid: string } {
  const found = controllersOf(nqn);
  assert.equal(found.length, 1, `${nqn}: ${JSON.stringify(found)}`);
  const name = found[0]!.name;
  return { hostnqn: sysfsAttribute(name, "hostnqn"), hostid: sysfsAttribute(name, "hostid") };
}

/** A scratch dir with `conf` as stacd.conf, and stacd on a private bus. */
async function startStacd(conf: string, busAddress: string): Promise<StacdProcess> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-hostpair-" });
  await Deno.writeTextFile(`${dir}/stacd.conf`, conf);
  return new StacdProcess({
    confFile: `${dir}/stacd.conf`,
    runtimeDir: `${dir}/run`,
    env: { DBUS_SYSTEM_BUS_ADDRESS: busAddress },
  });
}

Deno.test("stacd connects discovered and per-controller host NQNs with pairs the kernel takes", async () => {
  // s1, s2 on the discovery port (4420); s3-s5 configured, on 4421.
  using t = createTarget({ subsystems: 5, ports: [] });
  const [s1, s2, s3, s4, s5] = t.nqns as [string, string, string, string, string];
  createLinkedPort(t.target, LOOPBACK_PORT, [s1, s2]);
  createLinkedPort(t.target, CONFIGURED_PORT, [s3, s4, s5]);
  await using bus = await startPrivateBus({ policies: [STAC_POLICY, STAF_POLICY] });
  // As stafd leaves it: a persistent DC connected with another host NQN and ID.
  const source = await discoverySource({
    dcs: ["transport=tcp;traddr=127.0.0.1;trsvcid=4420"],
    persistent: true,
    host: DC_HOST,
  });
  try {
    await using stafd = await StafdStandin.start(bus.address, await source.read());
    const line = (nqn: string, extra = "") =>
      `controller = transport=tcp;traddr=127.0.0.1;trsvcid=4421;nqn=${nqn}${extra}`;
    const conf = [
      "[Controllers]",
      line(s3, `;host-nqn=${OWN_NQN}`),
      line(s4, `;host-nqn=${UUID_NQN}`),
      line(s5),
      "",
    ].join("\n");
    await using stacd = await startStacd(conf, bus.address);
    // The stand-in's discovery controller is not counted (waitForLiveSet counts I/O controllers).
    await waitForLiveSet([s1, s2, s3, s4, s5], 90_000).catch((error) => {
      throw new Error(`${error}\n${stacd.log}`);
    });
    assert.ok(stafd.calls > 0, "stacd read the pages from the stand-in");

    const sys = hostIdentity();
    assert.deepEqual(pairOf(s1), DC_HOST, "discovered: the DC's pair");
    assert.deepEqual(pairOf(s2), DC_HOST, "discovered: the DC's pair");
    const own = pairOf(s3);
    assert.equal(own.hostnqn, OWN_NQN);
    assert.match(own.hostid, UUID);
    assert.notEqual(own.hostid, sys.hostid, "sys.conf's ID stays sys.conf's NQN's");
    assert.notEqual(own.hostid, DC_HOST.hostid);
    assert.deepEqual(pairOf(s4), { hostnqn: UUID_NQN, hostid: UUID_ID }, "uuid-form NQN");
    assert.deepEqual(pairOf(s5), sys, "sys.conf's pair");
    const dc = source.devices[0]!;
    assert.equal(sysfsAttribute(dc, "hostid"), DC_HOST.hostid, "the DC kept its host ID");
    assert.doesNotMatch(stacd.log, /Connect failed/);
    assert.equal(await stacd.stop(), 0);
  } finally {
    await source.close();
    await deleteAllControllers();
  }
});

Deno.test("stacd does not send sys.conf's host ID where the kernel pairs it with another NQN and refuses it", async () => {
  using t = createTarget({ subsystems: 1, ports: [LOOPBACK_PORT] });
  const sys = hostIdentity();
  const other = "nqn.2014-08.com.example:someone-else";
  await using bus = await startPrivateBus({ policies: [STAC_POLICY] });
  const conf = `[Controllers]\ncontroller = transport=tcp;traddr=127.0.0.1;trsvcid=4420;nqn=${
    t.nqns[0]
  }\n`;
  try {
    // Someone else (e.g. nvme connect --hostnqn without --hostid) took sys.conf's ID.
    connectRaw(
      `nqn=${DISCOVERY_NQN},transport=tcp,traddr=127.0.0.1,trsvcid=4420,` +
        `hostnqn=${other},hostid=${sys.hostid}`,
    );
    await using stacd = await startStacd(conf, bus.address);
    const strict = !Deno.osRelease().startsWith("6.1.");
    if (strict) {
      // One clear reason, from stacd, instead of the kernel's EINVAL.
      const reason = `Connect failed (Host ID ${sys.hostid} is paired with host NQN ${other} `;
      await stacd.waitForLog(new RegExp(reason.replace(/[.()]/g, "\\$&")));
      assert.doesNotMatch(stacd.log, /Invalid argument/);
      assert.equal(controllersOf(t.nqns[0]!).length, 0);
    } else {
      // 6.1 takes the pair; sys.conf's NQN keeps its ID.
      await waitForLiveSet(t.nqns);
      assert.deepEqual(pairOf(t.nqns[0]!), sys);
    }
    assert.equal(await stacd.stop(), 0);
  } finally {
    await deleteAllControllers();
  }
});
