import assert from "node:assert/strict";
import { ConnectError } from "../../../lib/core/kernel_api.ts";
import { connectViaFabricsDevice } from "../../../lib/kernel/fabrics_device.ts";
import { Libnvme } from "../../../lib/kernel/libnvme.ts";

const request = {
  target: {
    transport: "tcp",
    traddr: "127.0.0.1",
    trsvcid: "1",
    subsysnqn: "nqn.2026-11.io.test:none",
  },
  host: {
    hostnqn: "nqn.2014-08.org.nvmexpress:uuid:0c5b1d8e-0000-4000-8000-000000000001",
    hostid: "0c5b1d8e-0000-4000-8000-000000000001",
  },
};

/** The ConnectError a connect rejected with; fails the test on anything else. */
async function connectError(connecting: Promise<unknown>): Promise<ConnectError> {
  const error = await connecting.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof ConnectError, `a ConnectError, not ${error}`);
  return error;
}

Deno.test("a refused write to the fabrics device is a ConnectError with the kernel's errno", async () => {
  // /dev/full refuses every write (ENOSPC), as the kernel refuses a connect.
  const error = await connectError(connectViaFabricsDevice(request, "/dev/full"));
  assert.equal(
    error.message,
    "Failed to write to /dev/full: No space left on device",
  );
  assert.equal(error.reason, "Failed to write to /dev/full: No space left on device");
  assert.equal(error.errno, 28);
});

Deno.test("a fabrics device that cannot be opened is a ConnectError naming it", async () => {
  const error = await connectError(connectViaFabricsDevice(request, "/nonexistent/nvme-fabrics"));
  assert.equal(
    error.message,
    "Failed to open /nonexistent/nvme-fabrics: No such file or directory",
  );
  assert.equal(error.errno, 2);
});

Deno.test("a reply without an instance is a ConnectError without an errno", async () => {
  const file = await Deno.makeTempFile();
  try {
    // A plain file takes the write and then reads back nothing.
    const error = await connectError(connectViaFabricsDevice(request, file));
    assert.match(error.message, /^Unexpected reply from \/dev\/nvme-fabrics: ""$/);
    assert.equal(error.errno, undefined);
    assert.ok(error.cause instanceof SyntaxError);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test({
  name: "both connect paths reject alike when the kernel has no nvme-fabrics",
  ignore: await Deno.stat("/dev/nvme-fabrics").then(() => true, () => false),
  fn: async () => {
    using nvme = Libnvme.open();
    using ctrl = nvme.controller(request.host, request.target);
    const viaLibnvme = await connectError(ctrl.connect());
    const viaDevice = await connectError(connectViaFabricsDevice(request));
    assert.equal(viaDevice.message, viaLibnvme.message);
    assert.equal(viaDevice.errno, viaLibnvme.errno);
    assert.equal(viaDevice.errno, 2);
  },
});
