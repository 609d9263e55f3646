/**
 * systemd/stacd.service: each option says why, the unit keeps what stacd
 * needs (docs/design.md#what-the-unit-must-allow), carries at least upstream's hardening, passes
 * `systemd-analyze verify` and beats upstream's hardening on exposure.
 */
import assert from "node:assert/strict";
import { parseUnit, valuesOf } from "../../../build/systemd_unit.ts";
import {
  checkUnit,
  UPSTREAM_HARDENING,
  upstreamHardeningUnit,
} from "../../../build/systemd_check.ts";

const unitText = Deno.readTextFileSync(new URL("../../../systemd/stacd.service", import.meta.url));
const unit = parseUnit(unitText);
const one = (key: string, section = "Service") => {
  const values = valuesOf(unit, key, section);
  assert.equal(values.length, 1, `${key}= once in [${section}]`);
  return values[0]!;
};
const hasSystemdAnalyze = await new Deno.Command("systemd-analyze", { args: ["--version"] })
  .output().then((r) => r.code === 0, () => false);

Deno.test("stacd.service: every option has a comment saying why", () => {
  const selfExplaining = new Set(["Description", "Documentation", "WantedBy"]);
  const bare = unit.filter((e) => !selfExplaining.has(e.key) && e.comment.length === 0);
  assert.deepEqual(bare.map((e) => `line ${e.line}: ${e.key}=`), []);
});

Deno.test("stacd.service: notify type, SIGHUP reload, preserved runtime dir, module ordering", () => {
  assert.equal(one("Type"), "notify");
  assert.equal(one("NotifyAccess"), "main");
  assert.match(one("ExecReload"), /kill -HUP \$MAINPID$/);
  assert.equal(one("RuntimeDirectory"), "stacd");
  assert.equal(one("RuntimeDirectoryPreserve"), "yes");
  assert.match(one("ExecStart"), /^\/usr\/sbin\/stacd /);
  assert.equal(one("AssertPathExists", "Unit"), "/dev/nvme-fabrics");
  for (const key of ["Wants", "After"]) {
    const deps = one(key, "Unit").split(/\s+/);
    for (const m of ["modprobe@nvme_fabrics.service", "modprobe@nvme_tcp.service"]) {
      assert.ok(deps.includes(m), `${key}= has ${m}`);
    }
  }
});

Deno.test("stacd.service: at least upstream's hardening", () => {
  for (const [key] of UPSTREAM_HARDENING) {
    assert.match(one(key), /^(yes|true|invisible)$/, `${key}=`);
  }
});

Deno.test("stacd.service: the sandbox leaves stacd what it writes, opens and calls", () => {
  // Read-only everywhere but the runtime directory, /dev and the fabrics
  // controllers' sysfs directory (where delete_controller lives).
  assert.equal(one("ProtectSystem"), "strict");
  assert.equal(one("ProtectKernelTunables"), "yes");
  assert.deepEqual(valuesOf(unit, "ReadWritePaths"), ["/sys/devices/virtual/nvme-fabrics"]);
  assert.equal(one("DevicePolicy"), "closed");
  assert.ok(valuesOf(unit, "DeviceAllow").includes("/dev/nvme-fabrics rw"));
  const families = one("RestrictAddressFamilies").split(/\s+/).sort();
  assert.deepEqual(families, ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
  assert.equal(one("CapabilityBoundingSet"), "CAP_NET_ADMIN");
});

Deno.test("stacd.service: no option that stacd cannot run under", () => {
  const keys = new Set(unit.map((e) => e.key));
  const breaking = [
    "MemoryDenyWriteExecute", // V8's JIT
    "PrivateDevices", // hides /dev/nvme-fabrics
    "PrivateNetwork", // the kernel's NVMe/TCP sockets live in stacd's namespace
    "IPAddressDeny", // ... and cgroup
    "User", // /dev/nvme-fabrics and delete_controller are root's
    "DynamicUser",
    "PrivateUsers",
    "ProcSubset", // Deno reads /proc/meminfo
  ];
  for (const key of breaking) assert.ok(!keys.has(key), `${key}= (see stacd.service(8))`);
});

Deno.test("upstreamHardeningUnit() keeps the service basics and only upstream's hardening", () => {
  const baseline = parseUnit(upstreamHardeningUnit(unitText));
  const service = baseline.filter((e) => e.section === "Service").map((e) => e.key);
  for (const [key] of UPSTREAM_HARDENING) assert.ok(service.includes(key), key);
  for (const key of ["Type", "ExecStart", "ExecReload", "RuntimeDirectory"]) {
    assert.ok(service.includes(key), key);
  }
  for (const key of ["ProtectSystem", "SystemCallFilter", "CapabilityBoundingSet"]) {
    assert.ok(!service.includes(key), key);
  }
  assert.deepEqual(valuesOf(baseline, "WantedBy", "Install"), ["multi-user.target"]);
});

Deno.test({
  name: "stacd.service as installed passes systemd-analyze verify and beats upstream's exposure",
  ignore: !hasSystemdAnalyze,
  async fn() {
    const r = await checkUnit();
    assert.deepEqual(r.problems, []);
    assert.ok(r.ours < r.upstream, `${r.ours} < ${r.upstream}`);
  },
});
