/**
 * stacd under systemd/stacd.service's sandbox, against the guest's real
 * kernel: started with the permission flags that ship (build/permissions.ts),
 * with the unit's capability bounding set, no new privileges and a read-only
 * /sys except the fabrics controllers (tests/guest/unit_sandbox.ts), it must
 * connect, reload, disconnect, answer --health and stop cleanly, and every
 * system call and address family it uses must be one the unit allows.
 * Runs only in the guest: deno run -A tests/guest/run_suite.ts hardening
 */
import assert from "node:assert/strict";
import { denoRunArgs } from "../../build/permissions.ts";
import { controllers, deleteAllControllers, waitFor } from "./nvme_host.ts";
import { notOnDebian13 } from "./platform.ts";
import { stacdConf, TEST_TIMER_SCALE } from "./stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";
import {
  confinedCommand,
  readTraceFiles,
  straceArgs,
  type UnitSandbox,
  unitSandbox,
} from "./unit_sandbox.ts";

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);

const liveSet = () =>
  controllers().filter((c) => c.state === "live").map((c) => c.subsysnqn).sort().join(" ");
const waitForLive = (nqns: string[]) =>
  waitFor(() => liveSet() === [...nqns].sort().join(" ") || undefined, `live: ${nqns}`, 90_000);

/** Starts stacd confined; `wrap` may put a tracer between the sandbox and deno. */
async function confinedStacd(
  boundingSet: string | undefined,
  wrap: (command: string[], sandbox: UnitSandbox) => string[] = (c) => c,
) {
  const sandbox = await unitSandbox();
  if (boundingSet !== undefined) sandbox.boundingSet = boundingSet;
  const dir = await Deno.makeTempDir({ prefix: "stacd-confined-" });
  const confFile = `${dir}/stacd.conf`;
  const runtimeDir = `${dir}/run`;
  const stacd = [Deno.execPath(), ...denoRunArgs(`${root}main.ts`, ["-f", confFile])];
  const [cmd, ...args] = confinedCommand(sandbox, wrap(stacd, sandbox));
  const start = (text: string) => {
    Deno.writeTextFileSync(confFile, text);
    return new Deno.Command(cmd!, {
      args,
      env: {
        RUNTIME_DIRECTORY: runtimeDir,
        STACD_TEST_TIMER_SCALE: TEST_TIMER_SCALE,
        // As under ProtectSystem=strict and ProtectHome=: Deno's cache
        // directory cannot be written (the guest's root is read-only).
        DENO_DIR: "/var/cache/stacd-deno-dir",
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  };
  /** stacd's own PID (the lock file holds it), not the wrappers'. */
  const pid = () => Number(Deno.readTextFileSync(`${runtimeDir}/stacd.lock`).trim());
  const health = async () =>
    (await new Deno.Command(Deno.execPath(), {
      args: denoRunArgs(`${root}main.ts`, ["--health"]),
      env: { RUNTIME_DIRECTORY: runtimeDir },
    }).output()).code;
  return { sandbox, dir, confFile, runtimeDir, start, pid, health };
}

/** Connect 2, reload to another 2 (one disconnect, one connect), health, SIGTERM. */
async function exercise(
  s: Awaited<ReturnType<typeof confinedStacd>>,
  nqns: string[],
): Promise<{ code: number; log: string; status: string }> {
  const child = s.start(stacdConf(nqns.slice(0, 2)));
  const log = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()])
    .then((parts) => parts.join("\n"));
  try {
    await waitForLive(nqns.slice(0, 2));
    const status = await Deno.readTextFile(`/proc/${s.pid()}/status`);
    await Deno.writeTextFile(s.confFile, stacdConf(nqns.slice(1, 3)));
    Deno.kill(s.pid(), "SIGHUP");
    await waitForLive(nqns.slice(1, 3));
    assert.equal(await s.health(), 0, "stacd --health");
    Deno.kill(s.pid(), "SIGTERM");
    const { code } = await child.status;
    return { code, log: await log, status };
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    console.error(await log);
    throw error;
  }
}

const capabilityLine = (status: string, name: string) =>
  status.split("\n").find((l) => l.startsWith(`${name}:`))?.split(/\s+/)[1];

Deno.test("stacd works inside the unit's sandbox, using only the calls and families it allows", async () => {
  using t = createTarget({ subsystems: 3, ports: [LOOPBACK_PORT] });
  const traceFile = `${Deno.env.get("GUEST_OUT") ?? "/tmp"}/stacd-sandbox.strace`;
  const s = await confinedStacd(
    undefined,
    (c, sandbox) => ["strace", ...straceArgs(sandbox, traceFile), ...c],
  );
  try {
    const r = await exercise(s, t.nqns);
    assert.equal(r.code, 0, r.log);
    assert.match(r.log, /Disconnected/);
    // CapabilityBoundingSet=CAP_NET_ADMIN: bit 12 only, and no way to gain more.
    assert.equal(capabilityLine(r.status, "CapEff"), "0000000000001000", r.status);
    assert.equal(capabilityLine(r.status, "NoNewPrivs"), "1");
    const found = readTraceFiles(traceFile, s.sandbox);
    assert.deepEqual([...found.refused], [], "system calls SystemCallFilter= refuses");
    const families = [...found.families].filter((f) => !s.sandbox.addressFamilies.has(f));
    assert.deepEqual(families, [], "families RestrictAddressFamilies= refuses");
    const devices = [...found.devicesOpened].filter((d) =>
      !/^\/dev\/(null|zero|u?random|nvme-fabrics|nvme\d+)$/.test(d)
    );
    assert.deepEqual(devices, [], "devices DeviceAllow= does not list");
    const writes = [...found.writtenPaths].filter((p) =>
      !p.startsWith(s.runtimeDir) && p !== "/dev/nvme-fabrics" &&
      !/^\/sys\/class\/nvme\/nvme\d+\/delete_controller$/.test(p)
    );
    assert.deepEqual(writes, [], "writes outside the runtime directory and the fabrics paths");
    console.log(
      `sandbox trace: families ${[...found.families].join(" ")}; devices ${
        [...found.devicesOpened].join(" ")
      }`,
    );
  } finally {
    await deleteAllControllers();
  }
});

Deno.test({
  name: "stacd connects and disconnects with no capability at all (CAP_SYS_ADMIN not needed)",
  ignore: notOnDebian13,
}, async () => {
  using t = createTarget({
    subsystems: 3,
    ports: [LOOPBACK_PORT],
    nqnPrefix: "nqn.2026-11.io.test.nocap",
  });
  const s = await confinedStacd("-all");
  try {
    const r = await exercise(s, t.nqns);
    assert.equal(r.code, 0, r.log);
    assert.equal(capabilityLine(r.status, "CapEff"), "0000000000000000", r.status);
    assert.match(r.log, /Disconnected/);
  } finally {
    await deleteAllControllers();
  }
});
