/**
 * systemd/stacd.service and systemd/stafd.service: each option says why,
 * the units keep what their daemon needs (docs/design.md#what-the-unit-must-allow), carry
 * at least upstream's hardening (but for what V8 cannot run under), pass
 * `systemd-analyze verify` and beat upstream's hardening on exposure.
 */
import assert from "node:assert/strict";
import { parseUnit, type UnitEntry, valuesOf } from "../../../build/systemd_unit.ts";
import {
  checkUnit,
  checkUnits,
  UNIT_NAMES,
  type UnitName,
  UPSTREAM_HARDENING,
  UPSTREAM_HARDENING_OF,
  UPSTREAM_STAFD_HARDENING,
  upstreamHardeningUnit,
} from "../../../build/systemd_check.ts";

const unitText = (name: UnitName) =>
  Deno.readTextFileSync(new URL(`../../../systemd/${name}.service`, import.meta.url));
const units = Object.fromEntries(UNIT_NAMES.map((n) => [n, parseUnit(unitText(n))])) as Record<
  UnitName,
  UnitEntry[]
>;
const oneOf = (unit: readonly UnitEntry[]) => (key: string, section = "Service") => {
  const values = valuesOf(unit, key, section);
  assert.equal(values.length, 1, `${key}= once in [${section}]`);
  return values[0]!;
};
const hasSystemdAnalyze = await new Deno.Command("systemd-analyze", { args: ["--version"] })
  .output().then((r) => r.code === 0, () => false);

/** Options V8 (Deno) cannot run under, with why. */
const V8_BREAKING = new Set(["MemoryDenyWriteExecute"]);

for (const name of UNIT_NAMES) {
  const unit = units[name];
  const one = oneOf(unit);

  Deno.test(`${name}.service: every option has a comment saying why`, () => {
    const selfExplaining = new Set(["Description", "Documentation", "WantedBy"]);
    const bare = unit.filter((e) => !selfExplaining.has(e.key) && e.comment.length === 0);
    assert.deepEqual(bare.map((e) => `line ${e.line}: ${e.key}=`), []);
  });

  Deno.test(`${name}.service: notify type, SIGHUP reload, preserved runtime dir, module ordering`, () => {
    assert.equal(one("Type"), "notify");
    assert.equal(one("NotifyAccess"), "main");
    assert.match(one("ExecReload"), /kill -HUP \$MAINPID$/);
    assert.equal(one("RuntimeDirectory"), name);
    assert.equal(one("RuntimeDirectoryPreserve"), "yes");
    assert.equal(one("ExecStart"), `/usr/sbin/${name} --syslog`);
    assert.equal(one("SyslogIdentifier"), name);
    assert.equal(one("BusName"), name === "stacd" ? "org.nvmexpress.stac" : "org.nvmexpress.staf");
    assert.equal(one("AssertPathExists", "Unit"), "/dev/nvme-fabrics");
    for (const key of ["Wants", "After"]) {
      const deps = one(key, "Unit").split(/\s+/);
      for (const m of ["modprobe@nvme_fabrics.service", "modprobe@nvme_tcp.service"]) {
        assert.ok(deps.includes(m), `${key}= has ${m}`);
      }
    }
    const man = one("Documentation", "Unit").split(/\s+/);
    assert.deepEqual(man, [`man:${name}.service(8)`, `man:${name}(8)`, `man:${name}.conf(5)`]);
  });

  Deno.test(`${name}.service: at least upstream's hardening, but what V8 cannot run under`, () => {
    for (const [key] of UPSTREAM_HARDENING_OF[name]) {
      if (V8_BREAKING.has(key)) continue;
      assert.match(one(key), /^(yes|true|invisible)$/, `${key}=`);
    }
  });

  Deno.test(`${name}.service: the sandbox leaves ${name} what it writes, opens and calls`, () => {
    // Read-only everywhere but the runtime directory, /dev and the fabrics
    // controllers' sysfs directory (where delete_controller lives).
    assert.equal(one("ProtectSystem"), "strict");
    assert.equal(one("ProtectKernelTunables"), "yes");
    assert.deepEqual(valuesOf(unit, "ReadWritePaths"), ["/sys/devices/virtual/nvme-fabrics"]);
    assert.equal(one("DevicePolicy"), "closed");
    assert.ok(valuesOf(unit, "DeviceAllow").includes("/dev/nvme-fabrics rw"));
    const families = one("RestrictAddressFamilies").split(/\s+/).sort();
    assert.deepEqual(families, ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
  });

  Deno.test(`${name}.service: no option that ${name} cannot run under`, () => {
    const keys = new Set(unit.map((e) => e.key));
    const breaking = [
      ...V8_BREAKING, // V8's JIT
      "PrivateDevices", // hides /dev/nvme-fabrics
      "PrivateNetwork", // the kernel's NVMe/TCP sockets live in the daemon's namespace
      "IPAddressDeny", // ... and cgroup
      "User", // /dev/nvme-fabrics and delete_controller are root's
      "DynamicUser",
      "PrivateUsers",
      "ProcSubset", // Deno reads /proc/meminfo
    ];
    for (const key of breaking) assert.ok(!keys.has(key), `${key}= (see ${name}.service(8))`);
  });
}

Deno.test("stacd.service: no capability but CAP_NET_ADMIN", () => {
  assert.equal(oneOf(units.stacd)("CapabilityBoundingSet"), "CAP_NET_ADMIN");
});

Deno.test("stafd.service: Get Log Page on /dev/nvmeX: the devices, CAP_SYS_ADMIN and ioctl", () => {
  const one = oneOf(units.stafd);
  // The kernel takes an admin command other than Identify only with CAP_SYS_ADMIN.
  assert.deepEqual(one("CapabilityBoundingSet").split(/\s+/).sort(), [
    "CAP_NET_ADMIN",
    "CAP_SYS_ADMIN",
  ]);
  assert.ok(valuesOf(units.stafd, "DeviceAllow").includes("char-nvme rw"));
  // ioctl is in @system-service; nothing denied takes it away again.
  const filters = valuesOf(units.stafd, "SystemCallFilter");
  assert.ok(filters.some((f) => !f.startsWith("~") && f.split(/\s+/).includes("@system-service")));
  const denied = filters.filter((f) => f.startsWith("~")).flatMap((f) => f.slice(1).split(/\s+/));
  assert.deepEqual(denied.sort(), ["@privileged", "@resources"]);
  // The same sandbox as stacd's otherwise: every option after the capabilities.
  const sandbox = (name: UnitName) => {
    const unit = units[name];
    const from = unit.findIndex((e) => e.key === "CapabilityBoundingSet") + 1;
    return unit.slice(from).filter((e) => e.section === "Service").map((e) =>
      `${e.key}=${e.value}`
    );
  };
  assert.deepEqual(sandbox("stafd"), sandbox("stacd"));
});

Deno.test("stafd.service: ordered after avahi-daemon as upstream's unit, without needing it", () => {
  const one = oneOf(units.stafd);
  assert.ok(one("After", "Unit").split(/\s+/).includes("avahi-daemon.service"));
  assert.ok(!one("Wants", "Unit").includes("avahi"));
});

Deno.test("upstream stafd.service's hardening is stacd's and MemoryDenyWriteExecute", () => {
  assert.deepEqual(UPSTREAM_STAFD_HARDENING, [
    ...UPSTREAM_HARDENING,
    ["MemoryDenyWriteExecute", "yes"],
  ]);
});

Deno.test("upstreamHardeningUnit() keeps the service basics and only upstream's hardening", () => {
  for (const name of UNIT_NAMES) {
    const upstream = UPSTREAM_HARDENING_OF[name];
    const baseline = parseUnit(upstreamHardeningUnit(unitText(name), upstream));
    const service = baseline.filter((e) => e.section === "Service").map((e) => e.key);
    for (const [key] of upstream) assert.ok(service.includes(key), `${name}: ${key}`);
    for (const key of ["Type", "ExecStart", "ExecReload", "RuntimeDirectory"]) {
      assert.ok(service.includes(key), `${name}: ${key}`);
    }
    for (const key of ["ProtectSystem", "SystemCallFilter", "CapabilityBoundingSet"]) {
      assert.ok(!service.includes(key), `${name}: ${key}`);
    }
    assert.deepEqual(valuesOf(baseline, "WantedBy", "Install"), ["multi-user.target"]);
  }
  // The default is stacd's.
  assert.equal(
    upstreamHardeningUnit(unitText("stacd")),
    upstreamHardeningUnit(unitText("stacd"), UPSTREAM_HARDENING),
  );
});

Deno.test({
  name: "both units as installed pass systemd-analyze verify and beat upstream's exposure",
  ignore: !hasSystemdAnalyze,
  async fn() {
    const results = await checkUnits();
    assert.deepEqual(results.map((r) => r.name), ["stacd", "stafd"]);
    for (const r of results) {
      assert.deepEqual(r.problems, [], r.name);
      assert.ok(r.ours < r.upstream, `${r.name}: ${r.ours} < ${r.upstream}`);
    }
  },
});

Deno.test({
  name: "checkUnit() checks stacd.service by default",
  ignore: !hasSystemdAnalyze,
  async fn() {
    assert.equal((await checkUnit()).name, "stacd");
  },
});
