import assert from "node:assert/strict";
import type { StacdConfig } from "../../../lib/config/stacd_conf.ts";
import type { SysConfig } from "../../../lib/config/sys_conf.ts";
import {
  type DesiredController,
  desiredControllers,
  type DiscoveredPage,
  hostNamesToResolve,
} from "../../../lib/core/desired_set.ts";
import { resolveHostNames, type Resolver } from "../../../lib/daemon/host_resolver.ts";
import {
  configText,
  controllerLine,
  HOSTID,
  HOSTNQN,
  logEntry,
  page,
  stacdConfig,
  SUBNQN,
  sysConfig,
} from "../fakes.ts";

const KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";

interface Case {
  config?: StacdConfig;
  sys?: SysConfig;
  resolved?: Map<string, string>;
  discovered?: DiscoveredPage[];
}

/** The desired set and the reports, for a config text and/or discovered pages. */
function desired(
  c: Case,
): { set: Map<string, DesiredController>; reports: string[]; levels: string[] } {
  const reports: string[] = [];
  const levels: string[] = [];
  const set = desiredControllers({
    config: c.config ?? stacdConfig(""),
    sys: c.sys ?? sysConfig(),
    resolved: c.resolved ?? new Map(),
    discovered: c.discovered,
  }, (m, level = "info") => {
    reports.push(m);
    levels.push(level);
  });
  return { set, reports, levels };
}

const ids = (set: Map<string, DesiredController>) => [...set.values()].map((d) => d.id);
const fromLines = (lines: string[], head = "") => stacdConfig(configText(lines, head));

Deno.test("desiredControllers() takes every valid configured controller with its identity", () => {
  const { set, reports } = desired({
    config: fromLines([controllerLine("192.168.1.10"), controllerLine("192.168.1.11")]),
  });
  assert.deepEqual(ids(set), [
    `(tcp, 192.168.1.10, 4420, ${SUBNQN})`,
    `(tcp, 192.168.1.11, 4420, ${SUBNQN})`,
  ]);
  assert.deepEqual(reports, []);
  const first = [...set.values()][0]!;
  assert.equal(first.origin, "configured");
  assert.equal(first.ncc, false);
  assert.deepEqual(first.tid, {
    transport: "tcp",
    traddr: "192.168.1.10",
    trsvcid: "4420",
    subsysnqn: SUBNQN,
    hostTraddr: "",
    hostIface: "",
    hostNqn: HOSTNQN,
  });
});

Deno.test("desiredControllers() builds the connect request from sys.conf, [Global] and overrides", () => {
  const config = fromLines(
    [controllerLine("192.168.1.10", `;kato=5;dhchap-secret=${KEY};host-iface=eth1`)],
    "[Global]\nkato=30\nnr-io-queues=4\n",
  );
  const { set } = desired({ config, sys: sysConfig({ hostSymname: "h1" }) });
  const request = [...set.values()][0]!.request;
  assert.deepEqual(request.target, {
    transport: "tcp",
    traddr: "192.168.1.10",
    trsvcid: "4420",
    subsysnqn: SUBNQN,
    hostTraddr: undefined,
    hostIface: "eth1",
  });
  assert.deepEqual(request.host, {
    hostnqn: HOSTNQN,
    hostid: HOSTID,
    dhchapKey: KEY,
    symname: "h1",
  });
  assert.equal(request.options?.kato, 5);
  assert.equal(request.options?.nrIoQueues, 4);
});

Deno.test("desiredControllers() never pairs sys.conf's host ID with another host NQN", () => {
  const uuidNqn = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
  const config = fromLines([
    controllerLine("192.168.1.10"),
    controllerLine("192.168.1.11", ";host-nqn=nqn.2014-08.com.example:host-b"),
    controllerLine("192.168.1.12", `;host-nqn=${uuidNqn}`),
  ]);
  const { set } = desired({
    config,
    discovered: [page([logEntry()], { hostNqn: "nqn.2014-08.com.example:dc-host" })],
  });
  const hosts = [...set.values()].map((d) => d.request.host);
  assert.equal(hosts.length, 4);
  assert.deepEqual(hosts[0], {
    hostnqn: HOSTNQN,
    hostid: HOSTID,
    dhchapKey: undefined,
    symname: undefined,
  });
  assert.equal(hosts[2]!.hostid, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
  for (const host of hosts.slice(1)) assert.notEqual(host.hostid, HOSTID, host.hostnqn);
  assert.notEqual(hosts[1]!.hostid, hosts[3]!.hostid);
});

Deno.test("desiredControllers() uses the sys.conf host key when the entry has none", () => {
  const { set } = desired({
    config: fromLines([controllerLine("192.168.1.10")]),
    sys: sysConfig({ hostKey: KEY }),
  });
  assert.equal([...set.values()][0]!.request.host.dhchapKey, KEY);
});

Deno.test("desiredControllers(): a malformed sys.conf host key refuses every controller that would use it", () => {
  const { set } = desired({
    config: fromLines([
      controllerLine("192.168.1.10"),
      controllerLine("192.168.1.11", `;dhchap-secret=${KEY}`),
    ]),
    sys: sysConfig({
      hostKeyProblem: "the host key read from /etc/nvme/hostkey is not valid base64",
    }),
    discovered: [page([logEntry({ traddr: "192.168.1.20" })])],
  });
  const refused = new Map([...set.values()].map((d) => [d.tid.traddr, d.refused?.message]));
  assert.equal(
    refused.get("192.168.1.10"),
    "the host key read from /etc/nvme/hostkey is not valid base64 (sys.conf [Host] key), " +
      "and it has no dhchap-secret of its own",
  );
  assert.equal(refused.get("192.168.1.11"), undefined, "its own key is fine");
  assert.match(refused.get("192.168.1.20") ?? "", /^the host key read from/, "discovered");
  assert.equal([...set.values()][0]!.request.host.dhchapKey, undefined);
});

Deno.test("desiredControllers() skips configured entries found invalid at load time", () => {
  const config = fromLines([
    controllerLine("192.168.1.10"),
    "controller = transport=tcp;traddr=192.168.1.11;trsvcid=4420", // no nqn
    controllerLine("192.168.1.12", ";dhchap-secret=DHHC-1:00:bad:"),
  ]);
  assert.equal(config.controllers.length, 3);
  const { set } = desired({ config });
  assert.deepEqual(ids(set), [`(tcp, 192.168.1.10, 4420, ${SUBNQN})`]);
});

Deno.test("desiredControllers() drops a controller matched by an exclude entry", () => {
  const config = fromLines([
    controllerLine("192.168.1.10"),
    controllerLine("192.168.1.11", ";host-iface=enp0s8"),
    "exclude = host-iface=enp0s8",
  ]);
  const { set, reports } = desired({ config });
  assert.deepEqual(ids(set), [`(tcp, 192.168.1.10, 4420, ${SUBNQN})`]);
  assert.deepEqual(reports, [
    `(tcp, 192.168.1.11, 4420, ${SUBNQN}, enp0s8) - Excluded by configuration`,
  ]);
});

Deno.test("desiredControllers() excludes discovered controllers too, by subsystem NQN", () => {
  const config = fromLines(["exclude = nqn=nqn.2026-11.io.test:s9"]);
  const { set } = desired({
    config,
    discovered: [page([logEntry(), logEntry({ subnqn: "nqn.2026-11.io.test:s9" })])],
  });
  assert.deepEqual(ids(set), [`(tcp, 192.168.1.20, 4420, ${SUBNQN})`]);
});

Deno.test("desiredControllers() ignores an exclude entry that was invalid in the file", () => {
  const config = fromLines([controllerLine("192.168.1.10"), "exclude = colour=blue"]);
  assert.equal(config.excluded.length, 1);
  const { set } = desired({ config });
  assert.equal(set.size, 1);
});

Deno.test("desiredControllers() drops addresses of a disabled ip-family", () => {
  const config = fromLines(
    [
      controllerLine("192.168.1.10"),
      "controller = transport=tcp;traddr=fd00::10;trsvcid=4420;nqn=" + SUBNQN,
    ],
    "[Global]\nip-family=ipv6\n",
  );
  const { set, reports } = desired({
    config,
    discovered: [page([logEntry({ traddr: "192.168.1.20" }), logEntry({ traddr: "fd00::20" })])],
  });
  assert.deepEqual(ids(set), [
    `(tcp, fd00::10, 4420, ${SUBNQN})`,
    `(tcp, fd00::20, 4420, ${SUBNQN})`,
  ]);
  assert.deepEqual(reports, [
    `(tcp, 192.168.1.10, 4420, ${SUBNQN}) - IPv4 is not enabled (ip-family); skipped`,
    `(tcp, 192.168.1.20, 4420, ${SUBNQN}) - IPv4 is not enabled (ip-family); skipped`,
  ]);
});

Deno.test("desiredControllers() treats an IPv4-mapped IPv6 address as IPv4", () => {
  const config = fromLines([], "[Global]\nip-family=ipv4\n");
  const { set } = desired({
    config,
    discovered: [page([logEntry({ traddr: "::ffff:10.0.0.1" })])],
  });
  assert.equal(set.size, 1);
});

Deno.test("desiredControllers() drops a discovered tcp entry whose traddr is not an IP address", () => {
  const { set, reports } = desired({
    discovered: [page([logEntry({ traddr: "999.1.1.1" }), logEntry({ traddr: "127.1" })])],
  });
  assert.equal(set.size, 0);
  assert.deepEqual(reports, [
    `(tcp, 999.1.1.1, 4420, ${SUBNQN}) - Invalid address "999.1.1.1"; skipped`,
    `(tcp, 127.1, 4420, ${SUBNQN}) - Invalid address "127.1"; skipped`,
  ]);
});

Deno.test("desiredControllers() lets fc and loop addresses pass and drops other transports", () => {
  const fc = "nn-0x20000090fa9425f5:pn-0x10000090fa9425f5";
  const { set, reports } = desired({
    discovered: [
      page([
        logEntry({ trtype: "fc", traddr: fc, trsvcid: "" }),
        logEntry({ trtype: "loop", traddr: "1", trsvcid: "" }),
        logEntry({ trtype: "pcie", traddr: "0000:01:00.0" }),
      ]),
    ],
  });
  assert.deepEqual(ids(set), [`(fc, ${fc}, , ${SUBNQN})`, `(loop, 1, , ${SUBNQN})`]);
  assert.deepEqual(reports, [
    `(pcie, 0000:01:00.0, 4420, ${SUBNQN}) - Unsupported transport "pcie"; skipped`,
  ]);
});

Deno.test("desiredControllers() takes only subtype nvme from the log pages", () => {
  const { set } = desired({
    discovered: [
      page([
        logEntry({ traddr: "192.168.1.20", subtype: "nvme" }),
        logEntry({ traddr: "192.168.1.21", subtype: "discovery" }),
        logEntry({ traddr: "192.168.1.22", subtype: "referral" }),
        logEntry({ traddr: "192.168.1.23", subtype: "current discovery subsystem" }),
      ]),
    ],
  });
  assert.deepEqual(ids(set), [`(tcp, 192.168.1.20, 4420, ${SUBNQN})`]);
});

Deno.test("desiredControllers() ignores log page entries with an unspecified or empty traddr", () => {
  const { set, reports } = desired({
    discovered: [
      page([
        logEntry({ traddr: "0.0.0.0" }),
        logEntry({ traddr: "::" }),
        logEntry({ traddr: "" }),
        logEntry({ traddr: "  " }),
      ]),
    ],
  });
  assert.equal(set.size, 0);
  assert.deepEqual(reports, [], "silently: they are not errors");
});

Deno.test("desiredControllers() skips entries that require TLS, with one report each", () => {
  const { set, reports, levels } = desired({
    discovered: [
      page([
        logEntry({ traddr: "192.168.1.20", treq: "required" }),
        logEntry({ traddr: "192.168.1.21", treq: "not required" }),
      ]),
    ],
  });
  assert.deepEqual(ids(set), [`(tcp, 192.168.1.21, 4420, ${SUBNQN})`]);
  assert.equal(reports.length, 1);
  assert.match(
    reports[0]!,
    /^\(tcp, 192\.168\.1\.20, 4420, .*\) - Requires a secure channel \(TLS\)/,
  );
  assert.deepEqual(
    levels,
    ["warning"],
    "a target asking for what stacd cannot do is worth a warning",
  );
});

Deno.test("desiredControllers() skips TLS entries whose TREQ arrives as a number (Linux targets)", () => {
  const { set, reports } = desired({
    discovered: [
      page([
        logEntry({ traddr: "192.168.1.20", treq: "5" }),
        logEntry({ traddr: "192.168.1.21", treq: "required, sq flow control disable supported" }),
        logEntry({ traddr: "192.168.1.22", treq: "6" }),
        logEntry({ traddr: "192.168.1.23", treq: "disable sqflow" }),
      ]),
    ],
  });
  assert.deepEqual(ids(set), [
    `(tcp, 192.168.1.22, 4420, ${SUBNQN})`,
    `(tcp, 192.168.1.23, 4420, ${SUBNQN})`,
  ]);
  assert.equal(reports.length, 2);
  assert.ok(
    reports.every((r) => r.includes("Requires a secure channel (TLS)")),
    reports.join("\n"),
  );
});

Deno.test("desiredControllers() gives discovered controllers the host side of their page", () => {
  const { set } = desired({
    discovered: [
      page([logEntry()], {
        hostTraddr: "192.168.1.2",
        hostIface: "eth1",
        hostNqn: "nqn.2014-08.org.nvmexpress:uuid:other",
      }),
    ],
  });
  const d = [...set.values()][0]!;
  assert.equal(d.origin, "discovered");
  assert.equal(d.tid.hostTraddr, "192.168.1.2");
  assert.equal(d.tid.hostIface, "eth1");
  assert.equal(d.tid.hostNqn, "nqn.2014-08.org.nvmexpress:uuid:other");
  assert.equal(d.request.host.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:other");
  assert.deepEqual(d.dlpe, logEntry());
});

Deno.test("desiredControllers() drops host-iface everywhere under ignore-iface", () => {
  const config = fromLines(
    [controllerLine("192.168.1.10", ";host-iface=eth1")],
    "[Global]\nignore-iface=true\n",
  );
  const { set } = desired({ config, discovered: [page([logEntry()], { hostIface: "eth2" })] });
  for (const d of set.values()) {
    assert.equal(d.tid.hostIface, "");
    assert.equal(d.request.target.hostIface, undefined);
  }
  assert.equal(set.size, 2);
});

Deno.test("desiredControllers() reads the NCC bit of a discovered entry's eflags", () => {
  const { set } = desired({
    discovered: [
      page([
        logEntry({ traddr: "192.168.1.20", eflags: "4" }),
        logEntry({ traddr: "192.168.1.21", eflags: "3" }),
      ]),
    ],
  });
  assert.deepEqual([...set.values()].map((d) => d.ncc), [true, false]);
});

Deno.test("desiredControllers() lets a configured controller win over the same one discovered, with its log page entry", () => {
  const config = fromLines([controllerLine("192.168.1.20", ";kato=7")]);
  const dlpe = logEntry({ traddr: "192.168.1.20", eflags: "4" });
  const { set } = desired({
    config,
    discovered: [page([dlpe, logEntry({ traddr: "192.168.1.21" })])],
  });
  assert.equal(set.size, 2);
  const same = [...set.values()].find((d) => d.tid.traddr === "192.168.1.20")!;
  assert.equal(same.origin, "configured");
  assert.equal(same.request.options?.kato, 7, "with its configured options");
  assert.deepEqual(same.dlpe, dlpe, "and the log page entry, so that NCC applies to it");
  assert.equal(same.ncc, true);
});

Deno.test("desiredControllers() keys equal addresses in different spellings once", () => {
  const { set } = desired({
    config: fromLines([
      "controller = transport=tcp;traddr=fd00::10;trsvcid=4420;nqn=" + SUBNQN,
      "controller = transport=tcp;traddr=FD00:0:0:0:0:0:0:10;trsvcid=4420;nqn=" + SUBNQN,
    ]),
  });
  assert.equal(set.size, 1);
});

Deno.test("desiredControllers() defaults a missing trsvcid of a log page entry like a config entry", () => {
  const { set } = desired({ discovered: [page([logEntry({ trsvcid: " " })])] });
  assert.equal([...set.values()][0]!.tid.trsvcid, "8009");
});

Deno.test("desiredControllers() with no stafd answer has only the configured controllers", () => {
  const { set } = desired({ config: fromLines([controllerLine("192.168.1.10")]) });
  assert.equal(set.size, 1);
  assert.equal([...set.values()][0]!.origin, "configured");
});

Deno.test("desiredControllers() connects a configured host name at its resolved address", () => {
  const config = fromLines([
    "controller = transport=tcp;traddr=array.example;trsvcid=4420;nqn=" + SUBNQN,
  ]);
  const { set, reports } = desired({
    config,
    resolved: new Map([["array.example", "192.168.1.30"]]),
  });
  const d = [...set.values()][0]!;
  assert.equal(d.tid.traddr, "192.168.1.30");
  assert.equal(d.request.target.traddr, "192.168.1.30");
  assert.deepEqual(reports, []);
});

Deno.test("desiredControllers() skips a configured host name that did not resolve, with a report", () => {
  const config = fromLines([
    "controller = transport=tcp;traddr=array.example;trsvcid=4420;nqn=" + SUBNQN,
  ]);
  const { set, reports } = desired({ config });
  assert.equal(set.size, 0);
  assert.deepEqual(reports, [
    `(tcp, array.example, 4420, ${SUBNQN}) - Cannot resolve host name; skipped`,
  ]);
});

Deno.test("desiredControllers() applies exclusion to the resolved address of a host name", () => {
  const config = fromLines([
    "controller = transport=tcp;traddr=array.example;trsvcid=4420;nqn=" + SUBNQN,
    "exclude = traddr=192.168.1.30",
  ]);
  const { set } = desired({ config, resolved: new Map([["array.example", "192.168.1.30"]]) });
  assert.equal(set.size, 0);
});

Deno.test("desiredControllers() excludes a configured controller by the host name it is written with", () => {
  const config = fromLines([
    "controller = transport=tcp;traddr=array.example;trsvcid=4420;nqn=" + SUBNQN,
    "controller = transport=tcp;traddr=other.example;trsvcid=4420;nqn=" + SUBNQN,
    "exclude = traddr=Array.Example",
  ]);
  const { set, reports } = desired({
    config,
    resolved: new Map([["array.example", "192.168.1.30"], ["other.example", "192.168.1.31"]]),
  });
  assert.deepEqual(ids(set), [`(tcp, 192.168.1.31, 4420, ${SUBNQN})`]);
  assert.deepEqual(reports, [
    `(tcp, array.example, 4420, ${SUBNQN}) - Excluded by configuration`,
  ]);
});

Deno.test("desiredControllers() says an excluded host name is excluded, not that it did not resolve", () => {
  const config = fromLines([
    "controller = transport=tcp;traddr=array.example;trsvcid=4420;nqn=" + SUBNQN,
    "exclude = traddr=array.example;trsvcid=4420",
  ]);
  const { set, reports } = desired({ config });
  assert.equal(set.size, 0);
  assert.deepEqual(reports, [
    `(tcp, array.example, 4420, ${SUBNQN}) - Excluded by configuration`,
  ]);
});

Deno.test("hostNamesToResolve() leaves out a host name whose controller is excluded as written", () => {
  const config = fromLines([
    "controller = transport=tcp;traddr=a.example;trsvcid=4420;nqn=" + SUBNQN,
    "controller = transport=tcp;traddr=b.example;trsvcid=4420;nqn=" + SUBNQN,
    "controller = transport=tcp;traddr=c.example;trsvcid=4421;nqn=" + SUBNQN,
    "exclude = traddr=b.example",
    "exclude = traddr=c.example;trsvcid=4420",
  ]);
  assert.deepEqual(hostNamesToResolve(config, sysConfig()), ["a.example", "c.example"]);
});

Deno.test("hostNamesToResolve() lists each tcp/rdma host name once, never an address", () => {
  const config = fromLines([
    "controller = transport=tcp;traddr=a.example;trsvcid=4420;nqn=" + SUBNQN,
    "controller = transport=tcp;traddr=a.example;trsvcid=4421;nqn=" + SUBNQN,
    "controller = transport=rdma;traddr=b.example;nqn=" + SUBNQN,
    "controller = transport=tcp;traddr=fd00::1;trsvcid=4420;nqn=" + SUBNQN,
    controllerLine("192.168.1.10"),
    "controller = transport=fc;traddr=nn-0x1:pn-0x2;host-traddr=nn-0x3:pn-0x4;nqn=" + SUBNQN,
  ]);
  assert.deepEqual(hostNamesToResolve(config, sysConfig()), ["a.example", "b.example"]);
});

/** A resolver that answers from a table and records what it was asked. */
function fakeResolver(table: Record<string, { address: string; family: number }[]>) {
  const asked: string[] = [];
  const resolver: Resolver = (name) => {
    asked.push(name);
    const answer = table[name];
    return answer ? Promise.resolve(answer) : Promise.reject(new Error(`ENOTFOUND ${name}`));
  };
  return { resolver, asked };
}

const DUAL = [
  { address: "fd00::30", family: 6 },
  { address: "192.168.1.30", family: 4 },
  { address: "192.168.1.31", family: 4 },
];

Deno.test("resolveHostNames() takes the first address of the first enabled family", async () => {
  const { resolver } = fakeResolver({ "a.example": DUAL });
  assert.deepEqual(
    await resolveHostNames(["a.example"], [4, 6], resolver),
    new Map([["a.example", "192.168.1.30"]]),
  );
  assert.deepEqual(
    await resolveHostNames(["a.example"], [6, 4], resolver),
    new Map([["a.example", "fd00::30"]]),
  );
  assert.deepEqual(
    await resolveHostNames(["a.example"], [6], resolver),
    new Map([["a.example", "fd00::30"]]),
  );
});

Deno.test("resolveHostNames() reports a name with no address of an enabled family", async () => {
  const { resolver } = fakeResolver({ "v6.example": [{ address: "fd00::1", family: 6 }] });
  const reports: string[] = [];
  const resolved = await resolveHostNames(["v6.example"], [4], resolver, (m) => reports.push(m));
  assert.equal(resolved.size, 0);
  assert.deepEqual(reports, [`Host name "v6.example" has no address of an enabled IP family`]);
});

Deno.test("resolveHostNames() reports a failed lookup without throwing and keeps the others", async () => {
  const { resolver, asked } = fakeResolver({ "a.example": DUAL });
  const reports: string[] = [];
  const resolved = await resolveHostNames(
    ["gone.example", "a.example"],
    [4, 6],
    resolver,
    (m) => reports.push(m),
  );
  assert.deepEqual(resolved, new Map([["a.example", "192.168.1.30"]]));
  assert.deepEqual(asked, ["gone.example", "a.example"]);
  assert.deepEqual(reports, [`Cannot resolve host name "gone.example": ENOTFOUND gone.example`]);
});

Deno.test("resolveHostNames() survives a resolver that throws synchronously", async () => {
  const resolver: Resolver = () => {
    throw new TypeError("boom");
  };
  const reports: string[] = [];
  const resolved = await resolveHostNames(["x.example"], [4], resolver, (m) => reports.push(m));
  assert.equal(resolved.size, 0);
  assert.deepEqual(reports, [`Cannot resolve host name "x.example": boom`]);
});
