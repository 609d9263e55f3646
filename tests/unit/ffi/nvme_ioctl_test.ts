/**
 * The admin passthrough's struct and request number as the C compiler
 * computes them from the kernel's uapi header (linux-libc-dev), and the
 * Get Log Page command stafd builds with them.
 */
import assert from "node:assert/strict";
import {
  NVME_IOCTL_ADMIN_CMD,
  PASSTHRU_CMD_SIZE,
  PASSTHRU_OFFSETS,
  passthruCmd,
} from "../../../ffi/nvme_ioctl.ts";

const C_FIELDS: Record<keyof typeof PASSTHRU_OFFSETS, string> = {
  opcode: "opcode",
  nsid: "nsid",
  addr: "addr",
  dataLen: "data_len",
  cdw10: "cdw10",
  cdw11: "cdw11",
  cdw12: "cdw12",
  cdw13: "cdw13",
  timeoutMs: "timeout_ms",
};

Deno.test("struct nvme_passthru_cmd and NVME_IOCTL_ADMIN_CMD match <linux/nvme_ioctl.h>", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lines = [
      `printf("size %zu\\n", sizeof(struct nvme_passthru_cmd));`,
      `printf("request %lu\\n", (unsigned long)NVME_IOCTL_ADMIN_CMD);`,
      ...Object.entries(C_FIELDS).map(([ours, c]) =>
        `printf("${ours} %zu\\n", offsetof(struct nvme_passthru_cmd, ${c}));`
      ),
    ];
    await Deno.writeTextFile(
      `${dir}/probe.c`,
      `#include <stddef.h>\n#include <stdio.h>\n#include <sys/ioctl.h>\n#include <linux/nvme_ioctl.h>\n` +
        `int main(void) { ${lines.join(" ")} return 0; }\n`,
    );
    const cc = await new Deno.Command("cc", { args: ["-o", `${dir}/probe`, `${dir}/probe.c`] })
      .output();
    assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
    const out = new TextDecoder().decode((await new Deno.Command(`${dir}/probe`).output()).stdout);
    const got = Object.fromEntries(out.trim().split("\n").map((l) => l.split(" ")));
    assert.equal(Number(got.size), PASSTHRU_CMD_SIZE);
    assert.equal(BigInt(got.request!), NVME_IOCTL_ADMIN_CMD);
    for (const [ours, offset] of Object.entries(PASSTHRU_OFFSETS)) {
      assert.equal(Number(got[ours]), offset, ours);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("passthruCmd() lays out a Get Log Page with its data buffer and dwords", () => {
  const data = new Uint8Array(4096);
  const cmd = passthruCmd({ opcode: 2, data, cdw10: 0x03ff8070, cdw12: 1024 });
  const view = new DataView(cmd.buffer);
  assert.equal(view.getUint8(PASSTHRU_OFFSETS.opcode), 2);
  assert.equal(view.getUint32(PASSTHRU_OFFSETS.dataLen, true), 4096);
  assert.equal(view.getUint32(PASSTHRU_OFFSETS.cdw10, true), 0x03ff8070);
  assert.equal(view.getUint32(PASSTHRU_OFFSETS.cdw12, true), 1024);
  assert.equal(
    view.getBigUint64(PASSTHRU_OFFSETS.addr, true),
    BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(data))),
  );
});
