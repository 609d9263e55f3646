/**
 * The kernel's NVMe admin passthrough (include/uapi/linux/nvme_ioctl.h):
 * `struct nvme_passthru_cmd` and NVME_IOCTL_ADMIN_CMD, stable uapi on
 * every kernel stafd runs on. stafd issues Get Log Page through it itself
 * (lib/kernel/discovery_log_reader.ts) to decide the Retain Asynchronous
 * Event bit of each read: libnvme 1.3's reader (Debian 12) keeps it set,
 * which leaves the target's "discovery log changed" event masked after
 * the first one (later libnvme clears it on its last read).
 */
import { storePointer } from "./pointers.ts";

/** _IOWR('N', 0x41, struct nvme_passthru_cmd): 0xC0484E41. */
export const NVME_IOCTL_ADMIN_CMD = 0xc0484e41n;

/** sizeof(struct nvme_passthru_cmd) on every ABI. */
export const PASSTHRU_CMD_SIZE = 72;

/** Admin opcode Get Log Page. */
export const NVME_ADMIN_GET_LOG_PAGE = 0x02;

/** Byte offsets of struct nvme_passthru_cmd (tests/unit/ffi/nvme_ioctl_test.ts checks them). */
export const PASSTHRU_OFFSETS = {
  opcode: 0,
  nsid: 4,
  addr: 24,
  dataLen: 36,
  cdw10: 40,
  cdw11: 44,
  cdw12: 48,
  cdw13: 52,
  timeoutMs: 64,
} as const;

export interface AdminCommand {
  opcode: number;
  /** The data buffer the controller writes into (kept alive by the caller during the call). */
  data: Uint8Array;
  cdw10: number;
  cdw11?: number;
  cdw12?: number;
  cdw13?: number;
  /** 0: the kernel's admin timeout. */
  timeoutMs?: number;
}

/** The struct for `command`, ready for ioctl(fd, NVME_IOCTL_ADMIN_CMD, struct). */
export function passthruCmd(command: AdminCommand): Uint8Array {
  const bytes = new Uint8Array(PASSTHRU_CMD_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint8(PASSTHRU_OFFSETS.opcode, command.opcode);
  storePointer(view, PASSTHRU_OFFSETS.addr, command.data);
  view.setUint32(PASSTHRU_OFFSETS.dataLen, command.data.length, true);
  view.setUint32(PASSTHRU_OFFSETS.cdw10, command.cdw10 >>> 0, true);
  view.setUint32(PASSTHRU_OFFSETS.cdw11, (command.cdw11 ?? 0) >>> 0, true);
  view.setUint32(PASSTHRU_OFFSETS.cdw12, (command.cdw12 ?? 0) >>> 0, true);
  view.setUint32(PASSTHRU_OFFSETS.cdw13, (command.cdw13 ?? 0) >>> 0, true);
  view.setUint32(PASSTHRU_OFFSETS.timeoutMs, command.timeoutMs ?? 0, true);
  return bytes;
}
