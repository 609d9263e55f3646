import assert from "node:assert/strict";
import {
  DISCOVERY_NQN,
  kernelOptionString,
  parseConnectReply,
  redactOptionString,
} from "../../../lib/core/connect_request.ts";

const host = { hostnqn: "nqn.2014-08.org.nvmexpress:uuid:h", hostid: "h-id" };
const target = {
  transport: "tcp",
  traddr: "192.168.1.10",
  trsvcid: "4420",
  subsysnqn: "nqn.2026-11.io.test:s1",
};

Deno.test("kernelOptionString() writes the identity first, then only the options set", () => {
  const s = kernelOptionString({ target, host, options: { kato: 30, hdrDigest: true } });
  assert.equal(
    s,
    "nqn=nqn.2026-11.io.test:s1,transport=tcp,traddr=192.168.1.10,trsvcid=4420," +
      "hostnqn=nqn.2014-08.org.nvmexpress:uuid:h,hostid=h-id,keep_alive_tmo=30,hdr_digest",
  );
});

Deno.test("kernelOptionString() leaves hostid out when there is none (the kernel refuses it empty)", () => {
  const s = kernelOptionString({ target, host: { ...host, hostid: "" } });
  assert.equal(
    s,
    "nqn=nqn.2026-11.io.test:s1,transport=tcp,traddr=192.168.1.10,trsvcid=4420," +
      "hostnqn=nqn.2014-08.org.nvmexpress:uuid:h",
  );
});

Deno.test("kernelOptionString() passes host-traddr, host-iface and a ctrl-loss-tmo of -1", () => {
  const s = kernelOptionString({
    target: { ...target, hostTraddr: "192.168.1.2", hostIface: "eth1" },
    host,
    options: { ctrlLossTmo: -1, nrIoQueues: 4 },
  });
  assert.match(s, /,host_traddr=192\.168\.1\.2,host_iface=eth1,trsvcid=4420,/);
  assert.match(s, /,nr_io_queues=4,ctrl_loss_tmo=-1$/);
});

Deno.test("kernelOptionString() never sends DH-HMAC-CHAP keys to a discovery controller", () => {
  const s = kernelOptionString({
    target: { ...target, subsysnqn: DISCOVERY_NQN },
    host: { ...host, dhchapKey: "DHHC-1:00:abc:" },
    options: { dhchapCtrlKey: "DHHC-1:00:def:" },
  });
  assert.doesNotMatch(s, /dhchap/);
});

Deno.test("kernelOptionString() names a unique-NQN (TP8013) discovery controller, with no key", () => {
  const unique = kernelOptionString({
    target: { ...target, subsysnqn: "nqn.2014-08.com.example:unique-dc" },
    host: { ...host, dhchapKey: "DHHC-1:00:abc:" },
    options: { discovery: true, kato: 30 },
  });
  assert.match(unique, /^nqn=nqn\.2014-08\.com\.example:unique-dc,.*,discovery,/);
  assert.doesNotMatch(unique, /dhchap/);
  const wellKnown = kernelOptionString({
    target: { ...target, subsysnqn: DISCOVERY_NQN },
    host,
    options: { discovery: true },
  });
  assert.doesNotMatch(wellKnown, /,discovery/, "the kernel knows the well-known NQN by itself");
});

Deno.test("redactOptionString() hides both DH-HMAC-CHAP secrets", () => {
  const s = kernelOptionString({
    target,
    host: { ...host, dhchapKey: "DHHC-1:00:c2VjcmV0:" },
    options: { dhchapCtrlKey: "DHHC-1:01:b3RoZXI=:" },
  });
  assert.match(s, /dhchap_secret=DHHC-1:00:c2VjcmV0:/);
  const redacted = redactOptionString(s);
  assert.doesNotMatch(redacted, /c2VjcmV0|b3RoZXI/);
  assert.match(redacted, /dhchap_secret=<redacted>,dhchap_ctrl_secret=<redacted>/);
});

Deno.test("parseConnectReply() reads instance and cntlid, and rejects garbage", () => {
  assert.deepEqual(parseConnectReply("instance=12,cntlid=3\n"), { instance: 12, cntlid: 3 });
  assert.throws(() => parseConnectReply("oops"), SyntaxError);
});
