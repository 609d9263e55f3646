/**
 * Proves the guest test bed: a kernel NVMe/TCP target built with target.ts
 * serves the guest's own NVMe host over IPv4 and IPv6 loopback, and targets
 * can be changed under connected hosts (the fault tests rely on that).
 * Runs only in the guest: deno run -A tests/guest/run_suite.ts target
 */
import assert from "node:assert/strict";
import { createTarget, LOOPBACK_PORT, NVMET_ROOT, NvmetTarget, type TargetPort } from "./target.ts";
import {
  connectRaw,
  controllersOf,
  deleteAllControllers,
  hostIdentity,
  nvme,
  waitFor,
} from "./nvme_host.ts";

const IPV4 = LOOPBACK_PORT;
const IPV6: TargetPort = { id: 2, adrfam: "ipv6", traddr: "::1", trsvcid: 4420 };
const { hostnqn, hostid } = hostIdentity();
/** Short delays so that controllers come back within a test's patience. */
const RECONNECT = "reconnect_delay=1,ctrl_loss_tmo=60";

function connectString(nqn: string, port: TargetPort, extra = ""): string {
  return [
    `transport=tcp,traddr=${port.traddr},trsvcid=${port.trsvcid},nqn=${nqn}`,
    `hostnqn=${hostnqn},hostid=${hostid}`,
    ...(extra ? [extra] : []),
  ].join(",");
}

/** Probe: the first live controller of `nqn`, undefined until there is one. */
const live = (nqn: string) => () => controllersOf(nqn).find((c) => c.state === "live");
/** Probe: controller `name` once it is not live (null once deleted); undefined while live. */
const notLive = (name: string, nqn: string) => () => {
  const c = controllersOf(nqn).find((c) => c.name === name);
  return c === undefined || c.state !== "live" ? c ?? null : undefined;
};

Deno.test("nvme connect to 127.0.0.1 gives a live tcp controller; disconnect removes it", async () => {
  using t = createTarget({ subsystems: 2, ports: [IPV4, IPV6] });
  const [s1, s2] = t.nqns as [string, string];
  try {
    await nvme(
      ...["connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-n", s1],
      ...["--hostnqn", hostnqn, "--hostid", hostid],
    );
    const c = await waitFor(live(s1), `${s1} live`);
    assert.equal(c.transport, "tcp");
    assert.equal(c.address.traddr, "127.0.0.1");
    assert.equal(c.address.trsvcid, "4420");
    assert.equal(c.hostnqn, hostnqn);
    assert.deepEqual(controllersOf(s2), [], "only the requested subsystem is connected");

    await nvme("disconnect", "-n", s1);
    await waitFor(() => controllersOf(s1).length === 0 || undefined, `${s1} gone`);
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("a raw write to /dev/nvme-fabrics connects over IPv6 loopback", async () => {
  using t = createTarget({ subsystems: 2, ports: [IPV4, IPV6] });
  const [, s2] = t.nqns as [string, string];
  try {
    const name = connectRaw(connectString(s2, IPV6));
    const c = await waitFor(live(s2), `${s2} live over ::1`);
    assert.equal(c.name, name);
    assert.equal(c.address.traddr, "::1");
    assert.equal(c.address.trsvcid, "4420");
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("the port's discovery controller lists the subsystems linked to it", async () => {
  using t = createTarget({ subsystems: 2, ports: [IPV4] });
  t.target.unlinkSubsystem(IPV4.id, t.nqns[1]!);
  try {
    const log = JSON.parse(
      await nvme(
        ...["discover", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-o", "json"],
        ...["--hostnqn", hostnqn, "--hostid", hostid],
      ),
    ) as { records: { subnqn: string; traddr: string }[] };
    const subsystems = log.records.map((r) => r.subnqn).filter((n) => !n.includes("discovery"));
    assert.deepEqual(subsystems, [t.nqns[0]]);
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("unlinking a connected subsystem drops its controller until relinked", async () => {
  using t = createTarget({ subsystems: 2, ports: [IPV4] });
  const [s1, s2] = t.nqns as [string, string];
  try {
    const name = connectRaw(connectString(s1, IPV4, RECONNECT));
    const other = connectRaw(connectString(s2, IPV4, RECONNECT));
    await waitFor(live(s1), `${s1} live`);
    await waitFor(live(s2), `${s2} live`);

    t.target.unlinkSubsystem(IPV4.id, s1);
    await waitFor(notLive(name, s1), `${name} no longer live`);
    assert.equal(controllersOf(s2)[0]?.state, "live", `${other} on the same port stays live`);

    t.target.linkSubsystem(IPV4.id, s1);
    const back = await waitFor(live(s1), `${name} live again`);
    assert.equal(back.name, name, "the same controller reconnects");
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("a port removed under a connected host and re-added gets it back", async () => {
  using t = createTarget({ subsystems: 1, ports: [IPV4] });
  const [s1] = t.nqns as [string];
  try {
    const name = connectRaw(connectString(s1, IPV4, RECONNECT));
    await waitFor(live(s1), `${s1} live`);

    t.target.removePort(IPV4.id);
    assert.deepEqual([...Deno.readDirSync(`${NVMET_ROOT}/ports`)], []);
    await waitFor(notLive(name, s1), `${name} no longer live`);

    t.target.createPort(IPV4.id, IPV4);
    t.target.linkSubsystem(IPV4.id, s1);
    const back = await waitFor(live(s1), `${name} live again`);
    assert.equal(back.name, name);
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("a subsystem removed under a connected host and re-created gets it back", async () => {
  using t = createTarget({ subsystems: 1, ports: [IPV4] });
  const [s1] = t.nqns as [string];
  try {
    const name = connectRaw(connectString(s1, IPV4, RECONNECT));
    await waitFor(live(s1), `${s1} live`);

    t.target.removeSubsystem(s1);
    await waitFor(notLive(name, s1), `${name} no longer live`);

    t.target.createSubsystem(s1);
    t.target.linkSubsystem(IPV4.id, s1);
    const back = await waitFor(live(s1), `${name} live again`);
    assert.equal(back.name, name);
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("allowHost admits the listed host and refuses others", async () => {
  using t = createTarget({ subsystems: 1, ports: [IPV4] });
  const [s1] = t.nqns as [string];
  t.target.createHost(hostnqn);
  t.target.allowHost(s1, hostnqn);
  try {
    const stranger = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001";
    const refused = connectString(s1, IPV4).replace(hostnqn, stranger);
    assert.throws(() => connectRaw(refused));
    assert.deepEqual(controllersOf(s1), []);

    connectRaw(connectString(s1, IPV4));
    await waitFor(live(s1), `${s1} live for the allowed host`);
  } finally {
    await deleteAllControllers();
  }
});

Deno.test("teardown removes every port, subsystem and host it made", () => {
  const target = new NvmetTarget();
  target.createSubsystem("nqn.2026-11.io.test:t1");
  target.createSubsystem("nqn.2026-11.io.test:t2");
  target.createPort(IPV4.id, IPV4);
  target.createPort(IPV6.id, IPV6);
  target.linkSubsystem(IPV4.id, "nqn.2026-11.io.test:t1");
  target.linkSubsystem(IPV6.id, "nqn.2026-11.io.test:t2");
  target.createHost(hostnqn);
  target.allowHost("nqn.2026-11.io.test:t2", hostnqn);

  target.teardown();
  for (const dir of ["ports", "subsystems", "hosts"]) {
    assert.deepEqual([...Deno.readDirSync(`${NVMET_ROOT}/${dir}`)], [], `${dir} is empty`);
  }
});
