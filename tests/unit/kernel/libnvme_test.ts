/**
 * The libnvme wrapper against the real library on this host. The host's
 * kernel may lack NVMe: then a connect must fail with libnvme's own reason,
 * not crash; connects that succeed are tested in the guest.
 */
import assert from "node:assert/strict";
import { ConnectError } from "../../../lib/core/kernel_api.ts";
import { Libnvme, libnvmeLogText, UnverifiedLayoutError } from "../../../lib/kernel/libnvme.ts";
import { ConnectRefusedError } from "../../../lib/core/kernel_api.ts";
import { RealKernel } from "../../../lib/kernel/real_kernel.ts";
import { FABRICS_CONFIG_LAYOUTS } from "../../../ffi/libnvme.ts";

const host = {
  hostnqn: "nqn.2014-08.org.nvmexpress:uuid:0c5b1d8e-0000-4000-8000-000000000001",
  hostid: "0c5b1d8e-0000-4000-8000-000000000001",
};
const target = {
  transport: "tcp",
  traddr: "127.0.0.1",
  trsvcid: "1",
  subsysnqn: "nqn.2026-11.io.test:none",
};

Deno.test("Libnvme.open() detects the library version and picks its verified layout", () => {
  using nvme = Libnvme.open();
  assert.match(nvme.version, /^1\.\d+/);
  const verified = FABRICS_CONFIG_LAYOUTS.get(nvme.version.split(".").slice(0, 2).join("."));
  assert.equal(nvme.layout, verified);
});

Deno.test("a connect that the kernel cannot make rejects with libnvme's reason", async () => {
  using nvme = Libnvme.open();
  using ctrl = nvme.controller(host, target);
  const hasFabrics = await Deno.stat("/dev/nvme-fabrics").then(() => true, () => false);
  await assert.rejects(ctrl.connect({ ctrlLossTmo: 0 }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.match(
      error.message,
      hasFabrics
        ? /.*(refused|Input\/output)/i
        : /^Failed to open \/dev\/nvme-fabrics: No such file or directory$/,
    );
    // Recovered from libnvme's text: ENOENT, else ECONNREFUSED or EIO.
    const errnos = hasFabrics ? [111, 5] : [2];
    assert.ok(errnos.includes(error.errno ?? 0), `errno ${error.errno}`);
    return true;
  });
  assert.equal(ctrl.device, undefined);
});

Deno.test("NvmeController.close() is idempotent and later use throws instead of crashing", async () => {
  using nvme = Libnvme.open();
  const ctrl = nvme.controller(host, target);
  ctrl.close();
  ctrl.close();
  // With a controller key, libnvme would be handed the freed ctrl first: checked before.
  const dhchapCtrlKey = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";
  await assert.rejects(ctrl.connect({ dhchapCtrlKey }), /after close/);
});

Deno.test("each verified libnvme version picks its own layout (1.3: 64 bytes, 1.13: 88)", () => {
  for (const [version, size] of [["1.3.0", 64], ["1.13", 88], ["1.13.1", 88]] as const) {
    using nvme = Libnvme.open({ version });
    assert.equal(nvme.layout?.size, size, version);
  }
});

Deno.test("an unverified libnvme version is refused, naming it and the verified versions", async () => {
  using nvme = Libnvme.open({ version: "1.8.0" });
  assert.equal(nvme.layout, undefined);
  using ctrl = nvme.controller(host, target);
  await assert.rejects(ctrl.connect(), (error: unknown) => {
    assert.ok(error instanceof UnverifiedLayoutError);
    assert.equal(
      error.message,
      "libnvme 1.8.0: struct nvme_fabrics_config layout not verified (verified: 1.3, 1.13)",
    );
    return true;
  });
  // stacd still runs: connects take the option-string path instead.
  assert.equal(new RealKernel(nvme).connectPath, "fabrics-device");
});

Deno.test("libnvmeLogText() cuts the keys out of libnvme 1.3's failed-parse error", () => {
  const hostKey = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";
  const ctrlKey = "DHHC-1:01:dGhpcyBpcyBub3QgYSByZWFsIGtleSwgb25seSBhIHRlc3Q=:";
  // What libnvme 1.3's __nvmf_add_ctrl logs at LOG_ERR (fabrics.c), keys last as it orders them.
  const logged = `__nvmf_add_ctrl: Failed to parse ctrl info for "nqn=${target.subsysnqn},` +
    `transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=${host.hostnqn},hostid=${host.hostid},` +
    `dhchap_secret=${hostKey},dhchap_ctrl_secret=${ctrlKey}"\nnvmf_add_ctrl: bare ${hostKey}\n`;
  const text = libnvmeLogText(logged);
  for (const secret of [hostKey, ctrlKey, hostKey.split(":")[2]!, ctrlKey.split(":")[2]!]) {
    assert.ok(!text.includes(secret), "a key (or its base64 body) reached the text");
  }
  assert.match(text, /^Failed to parse ctrl info for "nqn=nqn\.2026-11\.io\.test:none,/);
  assert.match(text, /,dhchap_secret=<redacted>,dhchap_ctrl_secret=<redacted>/);
  assert.match(text, /; bare <redacted>$/);
});

Deno.test("RealKernel refuses a controller key the kernel cannot authenticate with", async () => {
  using nvme = Libnvme.open();
  const warnings: string[] = [];
  const support = { options: undefined, authentication: false };
  const kernel = new RealKernel(nvme, { support, warn: (m) => warnings.push(m) });
  const ctrlKey = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";
  await assert.rejects(
    kernel.connect({ target, host, options: { dhchapCtrlKey: ctrlKey } }),
    (error: unknown) => {
      assert.ok(error instanceof ConnectRefusedError, "a refusal, not a failed connect");
      assert.equal(error.setting, "dhchap-ctrl-secret");
      assert.ok(!error.message.includes("DHHC"), "the message never holds the key");
      return true;
    },
  );
  assert.deepEqual(warnings, []);
});

Deno.test("RealKernel refuses a field that would add an option to the connect", async () => {
  using nvme = Libnvme.open();
  const kernel = new RealKernel(nvme, { support: { options: undefined, authentication: true } });
  const injected = { ...target, subsysnqn: `${target.subsysnqn},duplicate_connect` };
  await assert.rejects(kernel.connect({ target: injected, host }), (error: unknown) => {
    assert.ok(error instanceof ConnectRefusedError, `a refusal, not a connect: ${error}`);
    assert.equal(error.setting, "nqn");
    assert.match(error.message, /nqn contains ","/);
    return true;
  });
  const spaced = { ...host, hostnqn: `${host.hostnqn} x` };
  await assert.rejects(kernel.connect({ target, host: spaced }), ConnectRefusedError);
});

Deno.test("RealKernel reads one controller and disconnects through its delete_controller", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/nvme4`);
    await Deno.writeTextFile(`${root}/nvme4/transport`, "tcp\n");
    await Deno.writeTextFile(`${root}/nvme4/address`, "traddr=10.0.0.1,trsvcid=4420\n");
    await Deno.writeTextFile(`${root}/nvme4/delete_controller`, "");
    using nvme = Libnvme.open();
    const kernel = new RealKernel(nvme, { sysfsRoot: root });
    assert.equal((await kernel.controller("nvme4"))?.traddr, "10.0.0.1");
    assert.equal(await kernel.controller("nvme5"), undefined);
    await kernel.disconnect("nvme4");
    assert.equal(await Deno.readTextFile(`${root}/nvme4/delete_controller`), "1");
    await kernel.disconnect("nvme5"); // already gone: nothing to do, no error
    await assert.rejects(kernel.disconnect("sda"), RangeError);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
