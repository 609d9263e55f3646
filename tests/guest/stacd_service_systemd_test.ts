/**
 * systemd/stacd.service as systemd runs it: the guest boots real systemd as
 * PID 1 (tests/guest/guest.ts, init "systemd"), `deno task install` puts
 * stacd into that (throwaway) root, and the tests drive it as an operator
 * does, with systemctl, journalctl, systemd-analyze and stacctl, against the
 * guest's nvmet target: start (Type=notify), reload, stop, start again,
 * kill -9 (Restart=on-failure), the journal's priorities, the sandbox in
 * force, the exposure score, stacctl over the real system bus.
 *
 * Each test first brings stacd to the state it starts from, so one can run
 * alone (-- --filter ...); in file order they make one operator's session.
 * Runs only in that guest: deno run -A tests/guest/run_suite.ts --init systemd
 */
import assert from "node:assert/strict";
import { launcherScript, unitFor } from "../../build/install.ts";
import { parseUnit, type UnitEntry } from "../../build/systemd_unit.ts";
import { controllers, deleteAllControllers } from "./nvme_host.ts";
import { stacdConf, waitForLiveSet } from "./stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";
import { unitSandbox, x86_64Syscalls } from "./unit_sandbox.ts";
import { delay, ok, poll, showUnit, systemctl } from "./systemd_kit.ts";

if (Deno.readTextFileSync("/proc/1/comm").trim() !== "systemd") {
  throw new Error(
    "Needs systemd as PID 1: run it with tests/guest/run_suite.ts --init systemd",
  );
}

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const UNIT = "stacd.service";
const UNIT_FILE = `/usr/lib/systemd/system/${UNIT}`;
const CONF = "/etc/stas/stacd.conf";
const N = 8;

// Made once for the whole file and never torn down: the guest is thrown away.
const { nqns } = createTarget({ subsystems: N + 2, ports: [LOOPBACK_PORT] });
/** What the operator configures first: N controllers. */
const FIRST = nqns.slice(0, N);
/** The change: s1 removed, s9 and s10 added. */
const SECOND = nqns.slice(1, N + 2);
/**
 * The changed file also has a broken line (an error) and a deprecated key
 * (a warning), on purpose: the journal must keep their priorities.
 */
const SECOND_TEXT = stacdConf(SECOND, {
  controllers: "this line is not an option\nblacklist = transport=tcp;traddr=192.0.2.1",
});

const show = (...properties: string[]) => showUnit(UNIT, ...properties);

async function mainPid(): Promise<number> {
  return Number((await show("MainPID")).MainPID);
}
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

let installed: Promise<void> | undefined;

/**
 * `deno task install` into the guest's root (an overlay, so the cached tree
 * stays untouched), as an operator installs: files in place, then
 * `systemctl daemon-reload`, the bus told about the new policy, and the
 * unit enabled. Enabled, the unit stays loaded while stopped, so systemctl
 * show keeps the last exit status. Once per file.
 */
function install(): Promise<void> {
  return installed ??= (async () => {
    await ok(
      Deno.execPath(),
      ...["run", "--allow-all", "--frozen", `${root}/build/install.ts`],
      // No --deno: the launcher gets its own copy of deno in /usr/lib/stacd,
      // as on a host. The checkout's may be out of the unit's reach (a
      // clone under /tmp is hidden by PrivateTmp=yes).
      ...["--destdir=/", "--prefix=/usr", "--sysconfdir=/etc"],
    );
    await systemctl("daemon-reload");
    await systemctl("reload", "dbus.service");
    await systemctl("enable", UNIT);
  })();
}

/**
 * stacd active with `text` as stacd.conf and converged to `live`; starts or
 * reloads it as needed. Returns its PID.
 */
async function running(text: string, live: string[]): Promise<number> {
  await install();
  const changed = await Deno.readTextFile(CONF).catch(() => "") !== text;
  if (changed) await Deno.writeTextFile(CONF, text);
  if ((await show("ActiveState")).ActiveState !== "active") await systemctl("start", UNIT);
  else if (changed) await systemctl("reload", UNIT);
  await waitForLiveSet(live, 90_000);
  return await mainPid();
}

/** Every controller as "name subsysnqn cntlid state": the same list means nothing was redone. */
function snapshot(): string[] {
  return controllers().map((c) => `${c.name} ${c.subsysnqn} ${c.cntlid} ${c.state}`);
}

/** One journal entry as `journalctl -o json` prints it (only the fields read here). */
interface JournalEntry {
  MESSAGE?: string;
  PRIORITY?: string;
  SYSLOG_IDENTIFIER?: string;
  _PID?: string;
  __CURSOR: string;
}

/** stacd.service's journal entries of this boot, after `cursor` when given. */
async function journal(cursor?: string): Promise<JournalEntry[]> {
  const text = await ok(
    "journalctl",
    ...["-u", UNIT, "-b", "-o", "json", "--no-pager"],
    ...(cursor ? [`--after-cursor=${cursor}`] : []),
  );
  return text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as JournalEntry);
}

/** The cursor of the journal's newest entry (any unit): entries after it are new. */
async function journalCursor(): Promise<string> {
  const text = await ok("journalctl", "-n", "1", "-o", "json", "--no-pager");
  return (JSON.parse(text.trim().split("\n").at(-1)!) as JournalEntry).__CURSOR;
}

/** Waits until the journal (after `cursor`) has an entry matching `pattern`; journald lags a little. */
function journalEntry(pattern: RegExp, cursor?: string): Promise<JournalEntry> {
  return poll(
    async () => (await journal(cursor)).find((e) => pattern.test(e.MESSAGE ?? "")),
    `a journal entry of ${UNIT} matching ${pattern}`,
    30_000,
  );
}

/** The PID owning stacd's bus name, asked of the real system bus. */
async function busNameOwnerPid(): Promise<number> {
  const out = await ok(
    "busctl",
    ...["--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus"],
    ...["org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", "org.nvmexpress.stac"],
  );
  return Number(out.trim().split(/\s+/)[1]); // "u 431"
}

Deno.test("install.ts puts the launcher, stacd.service and the bus policy where systemd and dbus use them", async () => {
  await install();
  const { FragmentPath, LoadState, UnitFileState } = await show(
    "FragmentPath",
    "LoadState",
    "UnitFileState",
  );
  assert.equal(FragmentPath, UNIT_FILE);
  assert.equal(LoadState, "loaded");
  assert.equal(UnitFileState, "enabled");
  const unitText = await Deno.readTextFile(`${root}/systemd/stacd.service`);
  assert.equal(await Deno.readTextFile(UNIT_FILE), unitFor(unitText, "/usr"));
  assert.equal(await Deno.readTextFile("/usr/sbin/stacd"), launcherScript(undefined));
  assert.ok((await Deno.stat("/usr/lib/stacd/deno")).mode! & 0o100, "deno copied, executable");
  assert.equal(await Deno.readLink("/usr/bin/stacctl"), "../sbin/stacd");
  const policy = "dbus-1/system.d/org.nvmexpress.stac.conf";
  assert.equal(
    await Deno.readTextFile(`/etc/${policy}`),
    await Deno.readTextFile(`${root}/etc/${policy}`),
  );
});

Deno.test(`systemctl start returns once stacd is ready, then all ${N} configured controllers connect`, async () => {
  await install();
  await systemctl("stop", UNIT);
  await deleteAllControllers();
  await Deno.writeTextFile(CONF, stacdConf(FIRST));
  const started = performance.now();
  await systemctl("start", UNIT); // Type=notify: returns when stacd said READY=1
  const startMs = performance.now() - started;
  const s = await show("ActiveState", "SubState", "StatusText", "MainPID");
  assert.equal(s.ActiveState, "active");
  assert.equal(s.SubState, "running");
  assert.equal(s.StatusText, "Running", "stacd's own STATUS=, sent with READY=1");
  assert.equal(await busNameOwnerPid(), Number(s.MainPID), "the bus name is stacd's");
  await waitForLiveSet(FIRST, 90_000);
  const liveMs = performance.now() - started - startMs;
  assert.equal(controllers().length, N);
  console.log(
    `systemctl start stacd: ${seconds(startMs)} (process start to READY=1); ` +
      `all ${N} live ${seconds(liveMs)} after that`,
  );
});

Deno.test("systemctl reload applies a changed stacd.conf in the same process: 2 added, 1 removed", async () => {
  const pid = await running(stacdConf(FIRST), FIRST);
  const kept = new Map(controllers().map((c) => [c.subsysnqn, c.name]));
  kept.delete(FIRST[0]!);
  const cursor = await journalCursor();
  await Deno.writeTextFile(CONF, SECOND_TEXT);
  await systemctl("reload", UNIT);
  const s = await show("MainPID", "ActiveState", "ReloadResult");
  assert.deepEqual(s, { MainPID: String(pid), ActiveState: "active", ReloadResult: "success" });
  await waitForLiveSet(SECOND, 90_000);
  assert.equal(await mainPid(), pid, "same process");
  for (const [nqn, name] of kept) {
    assert.deepEqual(controllers().filter((c) => c.subsysnqn === nqn).map((c) => c.name), [name]);
  }
  const reloaded = await journalEntry(
    /Configuration reloaded from \/etc\/stas\/stacd\.conf/,
    cursor,
  );
  assert.equal(reloaded._PID, String(pid));
});

Deno.test("systemctl stop ends stacd with exit status 0 and leaves every connection in the kernel", async () => {
  await running(SECOND_TEXT, SECOND);
  const before = snapshot();
  await systemctl("stop", UNIT);
  const s = await show("ActiveState", "Result", "ExecMainCode", "ExecMainStatus");
  // ExecMainCode 1 is CLD_EXITED: stacd exited by itself (not killed) with status 0.
  assert.deepEqual(s, {
    ActiveState: "inactive",
    Result: "success",
    ExecMainCode: "1",
    ExecMainStatus: "0",
  });
  await delay(2_000); // whatever stacd might have started on its way out would show now
  assert.deepEqual(snapshot(), before);
  assert.ok(before.every((c) => c.endsWith(" live")));
});

Deno.test("systemctl start after a stop adopts the connections: same devices, none duplicated", async () => {
  await running(SECOND_TEXT, SECOND);
  await systemctl("stop", UNIT);
  const before = snapshot();
  const cursor = await journalCursor();
  await systemctl("start", UNIT);
  assert.equal((await show("ActiveState")).ActiveState, "active");
  await journalEntry(new RegExp(`Restored ${SECOND.length} controllers`), cursor);
  await delay(3_000); // a pass and a config soak: time enough to (wrongly) connect again
  assert.deepEqual(snapshot(), before);
  const connected = (await journal(cursor)).filter((e) =>
    /Connection established/.test(e.MESSAGE ?? "")
  );
  assert.deepEqual(connected.map((e) => e.MESSAGE), [], "adopted, not connected again");
});

Deno.test("kill -9: systemd restarts stacd (Restart=on-failure) with a new PID, nothing duplicated", async () => {
  const pid = await running(SECOND_TEXT, SECOND);
  const restarts = Number((await show("NRestarts")).NRestarts);
  const before = snapshot();
  const cursor = await journalCursor();
  const killed = performance.now();
  Deno.kill(pid, "SIGKILL");
  const s = await poll(async () => {
    const s = await show("ActiveState", "MainPID", "NRestarts");
    return s.ActiveState === "active" && s.MainPID !== "0" && s.MainPID !== String(pid)
      ? s
      : undefined;
  }, "stacd active again with a new PID");
  console.log(`kill -9 to active again: ${seconds(performance.now() - killed)} (RestartSec=2s)`);
  assert.equal(Number(s.NRestarts), restarts + 1);
  await journalEntry(/Main process exited, code=killed, status=9\/KILL/, cursor);
  await delay(3_000);
  assert.deepEqual(snapshot(), before);
});

Deno.test("journalctl -u stacd -o json: stacd's lines keep their priorities (info 6, warning 4, error 3)", async () => {
  await running(SECOND_TEXT, SECOND);
  const cursor = await journalCursor();
  await systemctl("reload", UNIT); // logs the file's problems again, then "reloaded"
  const priorityOf = async (pattern: RegExp, since?: string) => {
    const e = await journalEntry(pattern, since);
    assert.equal(e.SYSLOG_IDENTIFIER, "stacd", e.MESSAGE);
    return e.PRIORITY;
  };
  assert.equal(await priorityOf(/Connection established!/), "6");
  assert.equal(await priorityOf(/Configuration reloaded/, cursor), "6");
  assert.equal(await priorityOf(/blacklist: deprecated/, cursor), "4");
  assert.equal(await priorityOf(/line without "=".*this line is not an option/, cursor), "3");
  const prefixed = (await journal()).filter((e) => /^<\d>/.test(e.MESSAGE ?? ""));
  assert.deepEqual(prefixed.map((e) => e.MESSAGE), [], "the <N> prefixes were read by journald");
});

/** [Service] options whose `systemctl show` form is not just the file's text. */
const SHOWN_AS: Record<string, string> = { RestartSec: "RestartUSec" };
/** Not compared: systemd shows commands in a structure of its own. */
const NOT_COMPARED = new Set(["ExecStart", "ExecReload"]);
const ERRNO: Record<string, string> = { EPERM: "1", EACCES: "13" };

/** Options given as lists: compared as sets; DeviceAllow= as a subset (ProtectClock= adds one). */
function normalized(key: string, values: string[]): string {
  const words = values.join(" ").split(/\s+/).filter(Boolean);
  const bool: Record<string, string> = { true: "yes", on: "yes", 1: "yes", false: "no", off: "no" };
  if (/^(CapabilityBoundingSet|AmbientCapabilities)$/.test(key)) {
    return words.map((w) => w.toLowerCase()).sort().join(" ");
  }
  if (/^(RestrictAddressFamilies|ReadWritePaths|BindReadOnlyPaths)$/.test(key)) {
    return words.sort().join(" ");
  }
  if (key === "SystemCallErrorNumber") return ERRNO[values.join("")] ?? values.join("");
  const value = values.join("\n");
  return bool[value] ?? value;
}

Deno.test("systemctl show and /proc/MAINPID: the unit's sandbox is in force in the running stacd", async () => {
  const pid = await running(SECOND_TEXT, SECOND);
  const entries = parseUnit(await Deno.readTextFile(UNIT_FILE))
    .filter((e) => e.section === "Service" && !NOT_COMPARED.has(e.key));
  const byKey = Map.groupBy(entries, (e: UnitEntry) => e.key);
  const keys = [...byKey.keys()].filter((k) => k !== "SystemCallFilter" && k !== "DeviceAllow");
  const shown = await show(...keys.map((k) => SHOWN_AS[k] ?? k), "SystemCallFilter", "DeviceAllow");
  const mismatches = keys.flatMap((key) => {
    const want = normalized(key, byKey.get(key)!.map((e) => e.value));
    const got = normalized(key, (shown[SHOWN_AS[key] ?? key] ?? "").split("\n"));
    return want === got ? [] : [`${key}: unit file "${want}", systemd "${got}"`];
  });
  assert.deepEqual(mismatches, []);
  const allowed = shown.DeviceAllow!.split("\n");
  for (const device of byKey.get("DeviceAllow")!.map((e) => e.value)) {
    assert.ok(allowed.includes(device), `DeviceAllow=${device} in ${allowed}`);
  }
  // The filter as systemd compiled it: the unit's groups, resolved by this
  // systemd. Names the groups list but this architecture lacks (llseek,
  // newfstat, calls newer than the kernel headers) are left out by systemd.
  const sandbox = await unitSandbox(UNIT_FILE);
  const filter = new Set(shown.SystemCallFilter!.split(/\s+/));
  const native = new Set(x86_64Syscalls());
  assert.deepEqual(
    [...sandbox.allowedSyscalls].filter((c) => native.has(c) && !filter.has(c)),
    [],
    "allowed calls missing from the filter",
  );
  assert.deepEqual(
    [...filter].filter((c) => !sandbox.allowedSyscalls.has(c)),
    [],
    "calls in the filter that the unit does not allow",
  );

  // And in the process itself, as the kernel holds it.
  const status = Object.fromEntries(
    (await Deno.readTextFile(`/proc/${pid}/status`)).split("\n").map((l) => l.split(/:\s*/, 2)),
  );
  assert.equal(status.NoNewPrivs, "1");
  assert.equal(status.Seccomp, "2", "a seccomp filter");
  assert.equal(BigInt(`0x${status.CapBnd}`), 1n << 12n, "bounding set: CAP_NET_ADMIN only");
  assert.equal(BigInt(`0x${status.CapAmb}`), 0n);
  for (const ns of ["mnt", "ipc"]) {
    assert.notEqual(
      await Deno.readLink(`/proc/${pid}/ns/${ns}`),
      await Deno.readLink(`/proc/1/ns/${ns}`),
    );
  }
  const mounts = visibleMounts(await Deno.readTextFile(`/proc/${pid}/mountinfo`));
  const mode = (path: string) => mounts.get(path)?.options.split(",")[0];
  assert.equal(mode("/"), "ro", "ProtectSystem=strict");
  assert.equal(mode("/sys"), "ro", "ProtectKernelTunables=");
  assert.equal(mode("/proc/sys"), "ro", "ProtectKernelTunables=");
  assert.equal(mode("/sys/fs/cgroup"), "ro", "ProtectControlGroups=");
  assert.equal(mode("/sys/devices/virtual/nvme-fabrics"), "rw", "ReadWritePaths=");
  assert.equal(mode("/run/stacd"), "rw", "RuntimeDirectory=");
  assert.match(mounts.get("/proc")?.superOptions ?? "", /hidepid=invisible/, "ProtectProc=");
});

/** A mount as /proc/PID/mountinfo lists it. */
interface Mount {
  /** Per-mount options, "ro" or "rw" first. */
  options: string;
  /** The file system's own options (e.g. proc's hidepid=). */
  superOptions: string;
}

/** mountinfo's mounts by mount point; where mounts are stacked, the top one (what a path reaches). */
function visibleMounts(mountinfo: string): Map<string, Mount> {
  const visible = new Map<string, Mount>();
  for (const line of mountinfo.split("\n").filter(Boolean)) {
    const [fields, tail = ""] = line.split(" - ");
    const [, , , , point, options] = fields!.split(" ");
    // Listed parents first: a later mount on the same point covers the earlier one.
    visible.set(point!, { options: options!, superOptions: tail.split(" ")[2] ?? "" });
  }
  return visible;
}

Deno.test("systemd-analyze security stacd: the running unit's exposure, as its file scores offline", async () => {
  await running(SECOND_TEXT, SECOND);
  const score = (text: string) => text.match(/Overall exposure level for \S+: ([\d.]+) (\S+)/);
  const live = await ok("systemd-analyze", "security", "--no-pager", UNIT);
  const offline = await ok(
    "systemd-analyze",
    "security",
    "--offline=true",
    "--no-pager",
    UNIT_FILE,
  );
  const [, value, label] = score(live) ?? [];
  assert.ok(value, `no score in:\n${live}`);
  assert.equal(value, score(offline)?.[1], "running and offline analyses agree");
  const version = (await ok("systemctl", "--version")).split("\n")[0];
  const headline = `stacd.service exposure (systemd-analyze security, running unit, ${version}): ` +
    `${value} ${label}`;
  console.log(headline);
  const out = Deno.env.get("GUEST_OUT");
  if (out) await Deno.writeTextFile(`${out}/systemd-exposure.txt`, `${headline}\n\n${live}`);
});

Deno.test("stacctl as installed talks to the running stacd over the system bus", async () => {
  await running(SECOND_TEXT, SECOND);
  const ls = JSON.parse(await ok("/usr/bin/stacctl", "ls", "--json")) as Record<string, string>[];
  const kernel = controllers();
  assert.deepEqual(
    ls.map((c) => `${c.device} ${c.subsysnqn}`).sort(),
    kernel.map((c) => `${c.name} ${c.subsysnqn}`).sort(),
  );
  const status = JSON.parse(await ok("/usr/bin/stacctl", "status", "--json")) as {
    controllers: unknown[];
  };
  assert.equal(status.controllers.length, SECOND.length);
});
