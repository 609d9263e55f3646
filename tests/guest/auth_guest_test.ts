/**
 * DH-HMAC-CHAP through stacd against a kernel target that requires it
 * (docs/design.md#controller-entries, #host-identity, #kernel-support). On Debian 13 (6.12,
 * NVME_HOST_AUTH and NVME_TARGET_AUTH): the host key from sys.conf (`key`, inline and
 * `file://`) and per controller (`dhchap-secret`) connects and the kernel
 * logs the handshake; a controller key (`dhchap-ctrl-secret`) makes it
 * bidirectional; a wrong or missing key fails with a clear line and is
 * retried per the retry rules while everything else stays connected; a
 * malformed key is reported at load and never reaches the kernel. On Debian
 * 12 (6.1, no NVME_AUTH) a host key is detected as unsupported and not
 * passed, and a controller key refuses the connect (fail closed).
 * Runs only in the guest:
 *   deno run -A tests/guest/run_suite.ts --platform debian13 auth
 */
import assert from "node:assert/strict";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import { connectViaFabricsDevice } from "../../lib/kernel/fabrics_device.ts";
import { readFabricsSupport } from "../../lib/kernel/fabrics_support.ts";
import { ConnectRefusedError } from "../../lib/core/kernel_api.ts";
import { RealKernel } from "../../lib/kernel/real_kernel.ts";
import { Libnvme } from "../../lib/kernel/libnvme.ts";
import {
  controllersOf,
  deleteAllControllers,
  hostIdentity,
  nvme,
  sysfsAttribute,
  waitFor,
} from "./nvme_host.ts";
import { identities, liveNqns, StacdProcess, waitForLiveSet } from "./stacd_process.ts";
import { assertNoSecret, authTarget, generateKey, scratchConfig } from "./auth_target.ts";

const host = hostIdentity();
const debian13 = Deno.env.get("GUEST_PLATFORM") === "debian13";
/** The 6.12 tests: they need a kernel target that can demand authentication. */
const on612 = { ignore: !debian13 };

/**
 * Writes a unique mark into the kernel's log and returns it: what the kernel
 * logs after it is what a step made the kernel say (a mark, not a line
 * count, because the ring buffer drops old lines once it is full).
 */
async function kernelMark(): Promise<string> {
  const mark = `auth_guest_test mark ${crypto.randomUUID()}`;
  await Deno.writeTextFile("/dev/kmsg", mark);
  return mark;
}

/** What the kernel logged since `mark` (dmesg). */
async function kernelLogSince(mark: string): Promise<string> {
  const out = await new Deno.Command("dmesg", { stdout: "piped", stderr: "inherit" }).output();
  const lines = new TextDecoder().decode(out.stdout).split("\n");
  const at = lines.findLastIndex((line) => line.includes(mark));
  assert.ok(at >= 0, "the kernel log lost the mark");
  return lines.slice(at + 1).join("\n");
}

/**
 * Sets the host's admin command timeout (nvme_core.admin_timeout, seconds)
 * for controllers created until disposal. 6.12 has a race on a failed
 * authentication: nvmet tears the queue down while its failure message is
 * on the way, and the host's connect then waits for the admin timeout (60 s)
 * while holding /dev/nvme-fabrics, so every other connect waits too.
 */
function adminTimeout(seconds: number): Disposable {
  const param = "/sys/module/nvme_core/parameters/admin_timeout";
  const old = Deno.readTextFileSync(param).trim();
  Deno.writeTextFileSync(param, String(seconds));
  return { [Symbol.dispose]: () => Deno.writeTextFileSync(param, old) };
}

function stacdConf(lines: string[], global = ""): string {
  return `[Global]\n${global}\n[Controllers]\n${lines.join("\n")}\n`;
}

function controllerLine(nqn: string, extra = ""): string {
  return `controller = transport=tcp;traddr=127.0.0.1;trsvcid=4420;nqn=${nqn}${extra}`;
}

/** The device of the one controller connected to `nqn`, once it is live. */
function liveDevice(nqn: string): Promise<string> {
  return waitFor(
    () => controllersOf(nqn).find((c) => c.state === "live")?.name,
    `${nqn} live`,
    30_000,
  );
}

Deno.test(
  "the kernel's authentication support is detected as built: 6.1 lists dhchap_secret but cannot, 6.12 can",
  async () => {
    const support = await readFabricsSupport();
    assert.ok(support.options?.has("dhchap_secret"), "both kernels list dhchap_secret");
    assert.equal(support.authentication, debian13);
  },
);

Deno.test({
  name: "on 6.1 a host key is left out with a warning and it connects; a controller key is refused",
  ignore: debian13,
  fn: async () => {
    const target = authTarget({ secured: [], open: ["nqn.2026-11.io.test:auth-open"] });
    const warnings: string[] = [];
    using lib = Libnvme.open();
    const kernel = new RealKernel(lib, { warn: (m) => warnings.push(m) });
    const open = {
      transport: "tcp",
      traddr: "127.0.0.1",
      trsvcid: "4420",
      subsysnqn: "nqn.2026-11.io.test:auth-open",
    };
    try {
      // Fail closed: the host is to authenticate the controller and cannot.
      await assert.rejects(
        kernel.connect({
          target: open,
          host: { ...host, dhchapKey: generateKey() },
          options: { dhchapCtrlKey: generateKey() },
        }),
        (error: unknown) =>
          error instanceof ConnectRefusedError && error.setting === "dhchap-ctrl-secret",
      );
      assert.deepEqual(controllersOf(open.subsysnqn), [], "nothing was connected");
      const device = await kernel.connect({
        target: open,
        host: { ...host, dhchapKey: generateKey() },
      });
      assert.equal(sysfsAttribute(device, "state"), "live");
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0]!, /^dhchap-secret is configured but not passed: .*no NVMe auth/);
    } finally {
      await deleteAllControllers();
      target.teardown();
    }
  },
});

Deno.test({
  ...on612,
  name: "sys.conf key (inline, from nvme gen-dhchap-key) authenticates a stacd connect",
  fn: async () => {
    const nqn = "nqn.2026-11.io.test:auth-sys";
    const key = (await nvme("gen-dhchap-key", "--key-length=32", `--nqn=${host.hostnqn}`)).trim();
    assert.match(key, /^DHHC-1:0[0-3]:[A-Za-z0-9+/=]+:$/);
    using _target = authTarget({ secured: [nqn], hostKey: key });
    await using s = await scratchConfig(`[Host]\nkey = ${key}\n`);
    await Deno.writeTextFile(s.confFile, stacdConf([controllerLine(nqn)]));
    const before = await kernelMark();
    await using stacd = new StacdProcess({ ...s, args: ["--tron"] });
    const device = await liveDevice(nqn);
    await stacd.waitForLog(/Connection established!/);
    const kernelSaid = await kernelLogSince(before);
    // The host's side of the handshake, and the target's.
    assert.match(kernelSaid, new RegExp(`${device}: qid 0: authenticated with hash hmac`));
    assert.match(kernelSaid, new RegExp(`for subsystem ${nqn} .* with DH-HMAC-CHAP`), kernelSaid);
    assert.equal(sysfsAttribute(device, "state"), "live");
    assert.equal(
      sysfsAttribute(device, "dhchap_secret"),
      key,
      "the kernel holds the key stacd passed",
    );
    assert.equal(await stacd.stop(), 0);
    assertNoSecret(stacd.log, [key], "stacd's log (tron)");
  },
});

Deno.test({
  ...on612,
  name: "sys.conf key = file://PATH authenticates a stacd connect",
  fn: async () => {
    const nqn = "nqn.2026-11.io.test:auth-file";
    const key = generateKey(48);
    using _target = authTarget({ secured: [nqn], hostKey: key });
    await using s = await scratchConfig("[Host]\nkey = file:///etc/stas/hostkey\n", {
      hostkey: `${key}\n`,
    });
    await Deno.writeTextFile(s.confFile, stacdConf([controllerLine(nqn)]));
    const before = await kernelMark();
    await using stacd = new StacdProcess(s);
    const device = await liveDevice(nqn);
    assert.match(await kernelLogSince(before), new RegExp(`${device}: qid 0: authenticated`));
    assert.equal(sysfsAttribute(device, "dhchap_secret"), key);
    assert.equal(await stacd.stop(), 0);
  },
});

Deno.test({
  ...on612,
  name: "a controller's dhchap-secret wins over the sys.conf key",
  fn: async () => {
    const nqn = "nqn.2026-11.io.test:auth-ctrl";
    const key = generateKey(64);
    using _target = authTarget({ secured: [nqn], hostKey: key });
    // The sys.conf key is well-formed but not the one the target expects.
    await using s = await scratchConfig(`[Host]\nkey = ${generateKey()}\n`);
    await Deno.writeTextFile(s.confFile, stacdConf([controllerLine(nqn, `;dhchap-secret=${key}`)]));
    await using stacd = new StacdProcess(s);
    const device = await liveDevice(nqn);
    assert.equal(sysfsAttribute(device, "dhchap_secret"), key);
    assert.equal(await stacd.stop(), 0);
  },
});

Deno.test({
  ...on612,
  name: "bidirectional: dhchap-ctrl-secret makes the host authenticate the controller too",
  fn: async () => {
    const good = "nqn.2026-11.io.test:auth-bidi";
    const key = generateKey();
    const ctrlKey = generateKey();
    using _target = authTarget({ secured: [good], hostKey: key, ctrlKey });
    await using s = await scratchConfig("[Host]\n");
    await Deno.writeTextFile(
      s.confFile,
      stacdConf([controllerLine(good, `;dhchap-secret=${key};dhchap-ctrl-secret=${ctrlKey}`)]),
    );
    const before = await kernelMark();
    await using stacd = new StacdProcess(s);
    const device = await liveDevice(good);
    const kernelSaid = await kernelLogSince(before);
    assert.match(kernelSaid, new RegExp(`${device}: qid 0: controller authenticated`), kernelSaid);
    assert.match(kernelSaid, new RegExp(`${device}: qid 0: authenticated`));
    assert.equal(sysfsAttribute(device, "dhchap_ctrl_secret"), ctrlKey);
    assert.equal(await stacd.stop(), 0);
  },
});

Deno.test({
  ...on612,
  name: "bidirectional with the wrong controller key: the host refuses the controller",
  fn: async () => {
    const nqn = "nqn.2026-11.io.test:auth-bidi-wrong";
    const key = generateKey();
    using _target = authTarget({ secured: [nqn], hostKey: key, ctrlKey: generateKey() });
    using _timeout = adminTimeout(10);
    await using s = await scratchConfig("[Host]\n");
    await Deno.writeTextFile(
      s.confFile,
      stacdConf([controllerLine(nqn, `;dhchap-secret=${key};dhchap-ctrl-secret=${generateKey()}`)]),
    );
    const before = await kernelMark();
    await using stacd = new StacdProcess(s);
    const line = await stacd.waitForLog(/ERROR: .*auth-bidi-wrong.*Connect failed/, 90_000);
    const failures = stacd.lines.filter((l) => /auth-bidi-wrong.*Connect failed/.test(l));
    assert.ok(failures.some((l) => /Key was rejected by service/.test(l)), failures.join("\n"));
    assert.match(await kernelLogSince(before), /qid 0: controller authentication failed/);
    assert.equal(controllersOf(nqn).length, 0, line);
    assert.equal(await stacd.stop(), 0);
  },
});

Deno.test({
  ...on612,
  name:
    "a wrong key and a missing key fail clearly, are retried per the rules, and disturb nothing else",
  fn: async () => {
    const good = "nqn.2026-11.io.test:auth-good";
    const wrong = "nqn.2026-11.io.test:auth-wrong";
    const missing = "nqn.2026-11.io.test:auth-missing";
    const open = "nqn.2026-11.io.test:auth-open";
    const key = generateKey();
    const badKey = generateKey();
    using _target = authTarget({ secured: [good, wrong, missing], open: [open], hostKey: key });
    using _timeout = adminTimeout(10);
    await using s = await scratchConfig("[Host]\n");
    const conf = (wrongKey: string) =>
      stacdConf([
        controllerLine(good, `;dhchap-secret=${key}`),
        controllerLine(wrong, `;dhchap-secret=${wrongKey}`),
        controllerLine(missing),
        controllerLine(open),
      ]);
    await Deno.writeTextFile(s.confFile, conf(badKey));
    await using stacd = new StacdProcess({ ...s, args: ["--tron"] });
    // Generous waits: a failed authentication may hold every connect for the admin timeout.
    await waitForLiveSet([good, open], 90_000);
    const before = identities();

    // First failure: DEBUG, retry in 3 s (scaled); second: one ERROR, then every 60 s (scaled).
    const esc = (nqn: string) => nqn.replace(/\./g, "\\.");
    for (const nqn of [wrong, missing]) {
      await stacd.waitForLog(
        new RegExp(`DEBUG: .*${esc(nqn)}.*Connect failed .*retrying in`),
        90_000,
      );
      await stacd.waitForLog(
        new RegExp(`ERROR: .*${esc(nqn)}.*Connect failed .*retrying every`),
        90_000,
      );
    }
    const failures = (nqn: string) =>
      stacd.lines.filter((l) => l.includes(nqn) && l.includes("Connect failed"));
    // The kernel's reason, as libnvme reports it (a raced attempt may say I/O error instead).
    assert.ok(failures(missing).some((l) => /Required key not available/.test(l)), stacd.log);
    assert.ok(failures(wrong).some((l) => /Key was rejected by service/.test(l)), stacd.log);
    // A third attempt of each, logged at DEBUG: still retrying, never another ERROR.
    for (const nqn of [wrong, missing]) {
      await waitFor(
        () =>
          stacd.lines.filter((l) => l.includes(nqn) && /Connect failed/.test(l)).length >= 3 ||
          undefined,
        `third attempt of ${nqn}\n${stacd.log}`,
        90_000,
      );
      const errors = stacd.lines.filter((l) => l.includes(nqn) && l.startsWith("ERROR"));
      assert.equal(errors.length, 1, errors.join("\n"));
    }
    assert.deepEqual(identities(), before, "the good connections kept device and cntlid");
    assert.deepEqual(liveNqns(), [good, open].sort());

    // Correcting the key and reloading connects it.
    await Deno.writeTextFile(s.confFile, conf(key));
    stacd.signal("SIGHUP");
    await waitForLiveSet([good, wrong, open], 90_000);
    assert.equal(identities().get(good), before.get(good));
    assert.equal(await stacd.stop(), 0);
    assertNoSecret(stacd.log, [key, badKey], "stacd's log (tron)");
  },
});

Deno.test({
  ...on612,
  name: "a malformed key is reported at load (without the key) and never reaches the kernel",
  fn: async () => {
    const good = "nqn.2026-11.io.test:auth-good";
    const bad = "nqn.2026-11.io.test:auth-malformed";
    const key = generateKey();
    // Valid base64 and length, wrong CRC: the kernel would take it as far as its own CRC check.
    const valid = generateKey();
    const body = atob(valid.split(":")[2]!);
    const flipped = btoa(String.fromCharCode(body.charCodeAt(0) ^ 1) + body.slice(1));
    const malformed = `DHHC-1:00:${flipped}:`;
    // The malformed key's subsystem is open: had stacd tried it, it would have connected.
    using _target = authTarget({ secured: [good], open: [bad], hostKey: key });
    await using s = await scratchConfig("[Host]\n");
    await Deno.writeTextFile(
      s.confFile,
      stacdConf([
        controllerLine(good, `;dhchap-secret=${key}`),
        controllerLine(bad, `;dhchap-secret=${malformed}`),
      ]),
    );
    const before = await kernelMark();
    await using stacd = new StacdProcess({ ...s, args: ["--tron"] });
    const warning = await stacd.waitForLog(/WARNING: .*auth-malformed.*dhchap-secret/);
    assert.match(warning, /CRC-32.*not connected/);
    await waitForLiveSet([good]);
    // A few retry periods (scaled) in which a connect would have happened.
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(controllersOf(bad).length, 0);
    assert.ok(!stacd.lines.some((l) => l.includes(bad) && /Connect/.test(l)), stacd.log);
    const kernelSaid = await kernelLogSince(before);
    assert.ok(!kernelSaid.includes(bad), `the kernel saw ${bad}:\n${kernelSaid}`);
    assert.doesNotMatch(kernelSaid, /Invalid DH-CHAP|crc mismatch|failed to (decode|extract)/i);
    assert.equal(await stacd.stop(), 0);
    assertNoSecret(stacd.log, [key, malformed], "stacd's log (tron)");
  },
});

Deno.test({
  ...on612,
  name:
    "the /dev/nvme-fabrics path (unverified libnvme) authenticates too, and never for discovery",
  fn: async () => {
    const nqn = "nqn.2026-11.io.test:auth-raw";
    const key = generateKey();
    const ctrlKey = generateKey();
    using _target = authTarget({ secured: [nqn], hostKey: key, ctrlKey });
    try {
      const target = { transport: "tcp", traddr: "127.0.0.1", trsvcid: "4420" };
      const { device } = await connectViaFabricsDevice({
        target: { ...target, subsysnqn: nqn },
        host: { ...host, dhchapKey: key },
        options: { dhchapCtrlKey: ctrlKey },
      });
      assert.equal(sysfsAttribute(device, "state"), "live");
      assert.equal(sysfsAttribute(device, "dhchap_secret"), key);
      // Discovery controllers are not authenticated: the keys are left out.
      const disc = await connectViaFabricsDevice({
        target: { ...target, subsysnqn: DISCOVERY_NQN },
        host: { ...host, dhchapKey: key },
        options: { dhchapCtrlKey: ctrlKey },
      });
      assert.equal(sysfsAttribute(disc.device, "dhchap_secret"), "none");
    } finally {
      await deleteAllControllers();
    }
  },
});
