/**
 * systemd/stafd.service as systemd runs it (the guest boots systemd as PID
 * 1; see stacd_service_systemd_test.ts, which installs both units): start
 * (Type=notify) with stafd.conf naming the guest's nvmet discovery
 * controller; the page read under the unit's sandbox (the admin
 * passthrough needs CAP_SYS_ADMIN and ioctl), again after the target
 * changes (the AEN); stafctl over the real system bus; the sandbox in
 * force in the process; stop keeps the discovery connection (persistent)
 * and a start adopts it.
 * Runs only in that guest: deno run -A tests/guest/run_suite.ts --init systemd
 */
import assert from "node:assert/strict";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import { controllers } from "./nvme_host.ts";
import { delay, ok, poll, showUnit, systemctl } from "./systemd_kit.ts";
import { createTarget, type TargetPort } from "./target.ts";

if (Deno.readTextFileSync("/proc/1/comm").trim() !== "systemd") {
  throw new Error("Needs systemd as PID 1: run it with tests/guest/run_suite.ts --init systemd");
}

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const UNIT = "stafd.service";
/** A port of its own: stacd's tests in the same guest use port 1 (4420). */
const PORT: TargetPort = { id: 3, adrfam: "ipv4", traddr: "127.0.0.1", trsvcid: 4422 };
const t = createTarget({ subsystems: 3, ports: [PORT], nqnPrefix: "nqn.2026-12.io.stafd" });
const CONF = "/etc/stas/stafd.conf";
const show = (...properties: string[]) => showUnit(UNIT, ...properties);

/** The discovery controllers the kernel has for PORT. */
const dcs = () =>
  controllers().filter((c) =>
    c.subsysnqn === DISCOVERY_NQN && c.address.trsvcid === String(PORT.trsvcid)
  );

/** stafctl as installed, --json. */
async function stafctl(...args: string[]): Promise<unknown> {
  return JSON.parse(await ok("/usr/bin/stafctl", ...args, "--json"));
}

/** The NQNs of the nvme entries stafd serves for its one DC. */
async function servedNqns(): Promise<string[]> {
  const pages = await stafctl("adlp") as { "log-pages": { subtype: string; subnqn: string }[] }[];
  return pages.flatMap((p) => p["log-pages"]).filter((e) => e.subtype === "nvme")
    .map((e) => e.subnqn).sort();
}

async function started(): Promise<number> {
  await Deno.stat("/usr/lib/systemd/system/stafd.service"); // installed by the stacd test file
  await Deno.writeTextFile(
    CONF,
    `[Controllers]\ncontroller = transport=tcp;traddr=${PORT.traddr};trsvcid=${PORT.trsvcid}\n`,
  );
  // stacd.service would follow stafd and connect these subsystems: not its test.
  await systemctl("stop", "stacd.service").catch(() => {});
  if ((await show("ActiveState")).ActiveState !== "active") await systemctl("start", UNIT);
  return Number((await show("MainPID")).MainPID);
}

Deno.test("systemctl start stafd: the DC is connected and its page served over the system bus", async () => {
  await ok(
    Deno.execPath(),
    ...["run", "--allow-all", "--frozen", `${root}/build/install.ts`],
    ...["--destdir=/", "--prefix=/usr", "--sysconfdir=/etc"],
  );
  await systemctl("daemon-reload");
  await systemctl("reload", "dbus.service");
  await started();
  assert.equal((await show("ActiveState")).ActiveState, "active", "READY=1 came");
  await poll(
    async () => (await servedNqns()).join() === [...t.nqns].sort().join() || undefined,
    "stafd serving the DC's 3 subsystems",
  );
  assert.equal(dcs().length, 1);
  assert.equal(dcs()[0]!.state, "live");
});

Deno.test("under the sandbox, a subsystem added on the target reaches stafd (AEN, admin passthrough)", async () => {
  await started();
  const added = "nqn.2026-12.io.stafd:added";
  t.target.createSubsystem(added);
  t.target.linkSubsystem(PORT.id, added);
  await poll(
    async () => (await servedNqns()).includes(added) || undefined,
    "the added subsystem in stafd's page",
  );
  t.target.unlinkSubsystem(PORT.id, added);
  await poll(
    async () => !(await servedNqns()).includes(added) || undefined,
    "the unlinked subsystem gone from stafd's page",
  );
  t.target.removeSubsystem(added);
});

Deno.test("the unit's sandbox is in force in the running stafd: CAP_SYS_ADMIN and CAP_NET_ADMIN only", async () => {
  const pid = await started();
  const status = Object.fromEntries(
    (await Deno.readTextFile(`/proc/${pid}/status`)).split("\n").map((l) => l.split(/:\s*/, 2)),
  );
  assert.equal(status.NoNewPrivs, "1");
  assert.equal(status.Seccomp, "2", "a seccomp filter");
  assert.equal(BigInt(`0x${status.CapBnd}`), (1n << 21n) | (1n << 12n));
  assert.equal(BigInt(`0x${status.CapAmb}`), 0n);
  const exposure = await ok("systemd-analyze", "security", "--no-pager", UNIT);
  console.log(exposure.match(/Overall exposure level for \S+: .*/)?.[0]);
});

Deno.test("systemctl stop keeps the DC connection (persistent); a start adopts it, none twice", async () => {
  await started();
  const before = dcs().map((c) => `${c.name} ${c.cntlid}`);
  await systemctl("stop", UNIT);
  assert.equal((await show("ExecMainStatus")).ExecMainStatus, "0");
  assert.deepEqual(dcs().map((c) => `${c.name} ${c.cntlid}`), before, "kept");
  await systemctl("start", UNIT);
  await delay(2_000);
  assert.deepEqual(dcs().map((c) => `${c.name} ${c.cntlid}`), before, "adopted, not redone");
  const journal = await ok("journalctl", "-u", UNIT, "-b", "--no-pager", "-o", "cat");
  assert.match(journal, /Adopted existing connection/);
  assert.doesNotMatch(journal, /Failed to retrieve log pages/);
});
