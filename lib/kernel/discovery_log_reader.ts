/**
 * Reads a discovery controller's log page (Get Log Page 70h) through the
 * kernel's admin passthrough on /dev/nvmeN (docs/design.md#reading-log-pages).
 *
 * The first read of the header clears the Retain Asynchronous Event bit
 * (RAE = 0): that is what re-arms the target's "discovery log changed"
 * event, so a change after it raises a new AEN and a new read. The page is
 * then read in 4 KiB pieces with RAE set, and the header again: a
 * generation counter that moved means the page changed under the read,
 * which is retried. Every record count is bounded before anything is
 * allocated for it (lib/core/discovery_page.ts).
 */
import { errnoText, lastErrno, libc, O_CLOEXEC, O_RDWR } from "../../ffi/libc.ts";
import {
  NVME_ADMIN_GET_LOG_PAGE,
  NVME_IOCTL_ADMIN_CMD,
  passthruCmd,
} from "../../ffi/nvme_ioctl.ts";
import { cstr } from "../../ffi/pointers.ts";
import {
  DISCOVERY_LOG_ENTRY_SIZE,
  DISCOVERY_LOG_HEADER_SIZE,
  recordCount,
} from "../core/discovery_page.ts";
import { ConnectError } from "../core/kernel_api.ts";

/** Log Page Identifier of the discovery log. */
const LID_DISCOVERY = 0x70;
/** Bytes per Get Log Page, as libnvme and nvme-cli read it. */
const PIECE = 4096;
/** Reads of a page that keeps changing before giving up. */
const MAX_TRIES = 4;

/** Where the device files are; tests point it elsewhere. */
export interface ReaderOptions {
  devRoot?: string;
}

/**
 * The raw page (header and every record it claims) of discovery controller
 * `device` (nvmeN). Rejects with ConnectError naming the kernel's reason.
 */
export async function readDiscoveryLog(
  device: string,
  options: ReaderOptions = {},
): Promise<Uint8Array> {
  if (!/^nvme\d+$/.test(device)) throw new RangeError(`Not an nvme device: ${device}`);
  const c = libc();
  const path = `${options.devRoot ?? "/dev"}/${device}`;
  const fd = c.open(cstr(path)!, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) throw new ConnectError(`cannot open ${path}: ${errnoText(c, lastErrno(c))}`);
  try {
    for (let attempt = 1;; attempt++) {
      const header = await getLog(fd, 0, DISCOVERY_LOG_HEADER_SIZE, false);
      const numrec = recordCount(header);
      if (numrec === 0) return header;
      const page = new Uint8Array(DISCOVERY_LOG_HEADER_SIZE + numrec * DISCOVERY_LOG_ENTRY_SIZE);
      page.set(header);
      for (let offset = DISCOVERY_LOG_HEADER_SIZE; offset < page.length; offset += PIECE) {
        const length = Math.min(PIECE, page.length - offset);
        page.set(await getLog(fd, offset, length, true), offset);
      }
      const again = await getLog(fd, 0, DISCOVERY_LOG_HEADER_SIZE, true);
      if (sameGeneration(header, again)) return page;
      if (attempt >= MAX_TRIES) {
        throw new ConnectError(`the discovery log page kept changing (${attempt} reads)`);
      }
    }
  } finally {
    c.close(fd);
  }
}

/** One Get Log Page of the discovery log: `length` bytes at `offset`. */
async function getLog(
  fd: number,
  offset: number,
  length: number,
  rae: boolean,
): Promise<Uint8Array> {
  const data = new Uint8Array(length);
  const numd = length / 4 - 1;
  const cmd = passthruCmd({
    opcode: NVME_ADMIN_GET_LOG_PAGE,
    data,
    cdw10: LID_DISCOVERY | (rae ? 1 << 15 : 0) | ((numd & 0xffff) << 16),
    cdw11: numd >>> 16,
    cdw12: offset,
    cdw13: 0,
  });
  // `cmd` and `data` stay referenced until the call returns (data is returned
  // below): the worker thread writes into memory that is still alive.
  const rc = await libc().ioctl(fd, NVME_IOCTL_ADMIN_CMD, cmd);
  // errno was set on the call's worker thread, out of reach: the kernel log has the reason.
  if (rc < 0) throw new ConnectError("Get Log Page failed: the kernel refused it (see its log)");
  // A positive value is the NVMe status the controller answered with.
  if (rc > 0) throw new ConnectError(`Get Log Page failed: NVMe status 0x${rc.toString(16)}`);
  return data;
}

function sameGeneration(a: Uint8Array, b: Uint8Array): boolean {
  const view = (x: Uint8Array) => new DataView(x.buffer, x.byteOffset, x.byteLength);
  return view(a).getBigUint64(0, true) === view(b).getBigUint64(0, true) &&
    view(a).getBigUint64(8, true) === view(b).getBigUint64(8, true);
}
