import assert from "node:assert/strict";
import {
  dependsOnSupport,
  type FabricsSupport,
  parseOptionNames,
  readFabricsSupport,
  supportedRequest,
} from "../../../lib/kernel/fabrics_support.ts";
import type { ConnectRequest } from "../../../lib/core/connect_request.ts";

/** What reading /dev/nvme-fabrics returns on Debian 12's 6.1 (measured in the guest). */
const OPTIONS_6_1 = "instance=-1,cntlid=-1,transport=%s,traddr=%s,trsvcid=%s,nqn=%s," +
  "queue_size=%d,nr_io_queues=%d,reconnect_delay=%d,ctrl_loss_tmo=%d,keep_alive_tmo=%d," +
  "hostnqn=%s,host_traddr=%s,host_iface=%s,hostid=%s,duplicate_connect,disable_sqflow," +
  "hdr_digest,data_digest,nr_write_queues=%d,nr_poll_queues=%d,tos=%d,fast_io_fail_tmo=%d," +
  "discovery,dhchap_secret=%s,dhchap_ctrl_secret=%s\n";

const KEY = "DHHC-1:00:host-key-stand-in:";
const CTRL_KEY = "DHHC-1:00:ctrl-key-stand-in:";
const request: ConnectRequest = {
  target: {
    transport: "tcp",
    traddr: "192.168.1.10",
    trsvcid: "4420",
    subsysnqn: "nqn.2026-11.io.test:s1",
    hostIface: "eth1",
  },
  host: { hostnqn: "nqn.2014-08.org.nvmexpress:uuid:h", hostid: "h", dhchapKey: KEY },
  options: { kato: 30, dhchapCtrlKey: CTRL_KEY },
};

/** A fake /dev/nvme-fabrics, /sys/module and /lib/modules/<release> in a temp folder. */
async function fakeKernel(
  opts: { options?: string; loaded?: boolean; builtin?: string },
): Promise<{ dir: string; read: () => Promise<FabricsSupport> } & AsyncDisposable> {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/sys/module/nvme_core`, { recursive: true });
  await Deno.mkdir(`${dir}/modules`);
  if (opts.loaded) await Deno.mkdir(`${dir}/sys/module/nvme_auth`);
  if (opts.options !== undefined) await Deno.writeTextFile(`${dir}/nvme-fabrics`, opts.options);
  if (opts.builtin !== undefined) {
    await Deno.writeTextFile(`${dir}/modules/modules.builtin`, opts.builtin);
  }
  return {
    dir,
    read: () =>
      readFabricsSupport({
        fabricsDevice: `${dir}/nvme-fabrics`,
        sysModule: `${dir}/sys/module`,
        modulesDir: `${dir}/modules`,
      }),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("parseOptionNames() reads the names of the kernel's option template", () => {
  const names = parseOptionNames(OPTIONS_6_1);
  assert.ok(names?.has("dhchap_secret"));
  assert.ok(names?.has("host_iface"));
  assert.ok(names?.has("duplicate_connect"));
  assert.ok(!names?.has("tls"));
  assert.equal(parseOptionNames(""), undefined);
});

Deno.test("readFabricsSupport(): 6.1 lists dhchap_secret but has no nvme-auth, so no authentication", async () => {
  await using k = await fakeKernel({ options: OPTIONS_6_1, builtin: "kernel/fs/ext4/ext4.ko\n" });
  const support = await k.read();
  assert.equal(support.authentication, false);
  assert.ok(support.options?.has("dhchap_secret"));
});

Deno.test("readFabricsSupport(): nvme-auth loaded or built in means authentication", async () => {
  {
    await using k = await fakeKernel({ options: `${OPTIONS_6_1.trim()},tls`, loaded: true });
    assert.equal((await k.read()).authentication, true);
  }
  {
    await using k = await fakeKernel({
      options: OPTIONS_6_1,
      builtin: "kernel/drivers/nvme/common/nvme-auth.ko\nkernel/fs/ext4/ext4.ko\n",
    });
    assert.equal((await k.read()).authentication, true);
  }
});

Deno.test("readFabricsSupport(): an unreadable /dev/nvme-fabrics (old kernel) lists nothing", async () => {
  await using k = await fakeKernel({});
  assert.deepEqual(await k.read(), { options: undefined, authentication: false });
});

Deno.test("supportedRequest() leaves the host key out where the kernel cannot authenticate", () => {
  const { request: passed, dropped, refused } = supportedRequest(
    { ...request, options: { kato: 30 } },
    { options: parseOptionNames(OPTIONS_6_1), authentication: false },
  );
  assert.deepEqual(dropped, ["dhchap-secret"]);
  assert.equal(refused, undefined);
  assert.equal(passed.host.dhchapKey, undefined);
  assert.equal(passed.options?.kato, 30, "other options stay");
  assert.equal(passed.target.hostIface, "eth1");
  assert.equal(request.host.dhchapKey, KEY, "the caller's request is not changed");
});

Deno.test("supportedRequest() refuses a controller key the kernel cannot authenticate with (fail closed)", () => {
  const { request: passed, dropped, refused } = supportedRequest(request, {
    options: parseOptionNames(OPTIONS_6_1),
    authentication: false,
  });
  assert.equal(refused, "dhchap-ctrl-secret");
  assert.deepEqual(dropped, ["dhchap-secret"]);
  assert.ok(passed.options?.dhchapCtrlKey !== undefined, "not silently dropped");
});

Deno.test("supportedRequest() passes the keys where the kernel authenticates", () => {
  const support = { options: parseOptionNames(OPTIONS_6_1), authentication: true };
  const result = supportedRequest(request, support);
  assert.deepEqual(result.dropped, []);
  assert.equal(result.request, request);
});

Deno.test("supportedRequest() refuses a controller key whose option the kernel does not list", () => {
  const options = new Set(
    [...parseOptionNames(OPTIONS_6_1)!].filter((o) => o !== "dhchap_ctrl_secret"),
  );
  const result = supportedRequest(request, { options, authentication: true });
  assert.deepEqual(result.dropped, []);
  assert.equal(result.refused, "dhchap-ctrl-secret");
  assert.equal(result.request.host.dhchapKey, KEY);
});

Deno.test("supportedRequest() drops host-iface where the driver does not list host_iface", () => {
  const options = new Set([...parseOptionNames(OPTIONS_6_1)!].filter((o) => o !== "host_iface"));
  const { request: passed, dropped } = supportedRequest(
    { ...request, host: { ...request.host, dhchapKey: undefined }, options: {} },
    { options, authentication: false },
  );
  assert.deepEqual(dropped, ["host-iface"]);
  assert.equal(passed.target.hostIface, undefined);
  assert.equal(passed.target.traddr, "192.168.1.10");
});

Deno.test("dependsOnSupport(): only a request with a key or host-iface waits for the support read", () => {
  const plain: ConnectRequest = {
    target: { ...request.target, hostIface: undefined },
    host: { ...request.host, dhchapKey: undefined },
    options: { kato: 30 },
  };
  assert.equal(dependsOnSupport(plain), false);
  // The least capable kernel takes a plain request as it is: not waiting loses nothing.
  const least: FabricsSupport = { options: new Set(), authentication: false };
  assert.deepEqual(supportedRequest(plain, least), { request: plain, dropped: [] });

  const variants: [string, ConnectRequest][] = [
    ["host key", { ...plain, host: { ...plain.host, dhchapKey: KEY } }],
    ["controller key", { ...plain, options: { dhchapCtrlKey: CTRL_KEY } }],
    ["host-iface", { ...plain, target: { ...plain.target, hostIface: "eth1" } }],
  ];
  for (const [what, r] of variants) {
    assert.equal(dependsOnSupport(r), true, what);
    const { dropped, refused } = supportedRequest(r, least);
    assert.equal(dropped.length + (refused ? 1 : 0), 1, `${what} is what a kernel may not take`);
  }
});
