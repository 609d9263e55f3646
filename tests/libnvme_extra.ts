/**
 * What only the tests and the stafd stand-in do with libnvme; stacd itself
 * only connects (lib/kernel/libnvme.ts) and reads and deletes controllers through
 * sysfs. Here: binding a kernel controller that exists already
 * (nvme_init_ctrl, as stafd adopts one, and as nvmf_add_ctrl itself does
 * after a connect) and reading its discovery log page. libnvme logs its
 * errors to stderr.
 */
import { cstr, type Handle, readCString } from "../ffi/pointers.ts";
import type { DiscoveryLogEntry } from "../lib/core/discovery_log.ts";
import { deleteController } from "../lib/kernel/fabrics_device.ts";
import type { ConnectTarget, FabricsOptions, HostIdentity } from "../lib/core/connect_request.ts";
import type { Libnvme } from "../lib/kernel/libnvme.ts";
import {
  decodeDiscoveryLog,
  DISCOVERY_LOG_ENTRY_SIZE,
  DISCOVERY_LOG_HEADER_SIZE,
} from "./discovery_log_page.ts";
import { extraLibraries, PointerSlot, readBytes, readU64 } from "./ffi/libnvme_extra.ts";

/** syslog.h LOG_ERR: what libnvme writes to stderr here. */
const LOG_ERR = 3;

/** A libnvme controller object bound to the kernel controller `device`. */
export class AdoptedController implements Disposable {
  readonly device: string;
  #root: Handle;
  #ctrl: Handle;
  /** C strings libnvme keeps pointers to must outlive the objects holding them. */
  readonly #keepAlive: Uint8Array[];

  private constructor(device: string, root: Handle, ctrl: Handle, keepAlive: Uint8Array[]) {
    this.device = device;
    this.#root = root;
    this.#ctrl = ctrl;
    this.#keepAlive = keepAlive;
  }

  /**
   * Binds the existing kernel controller `device` (nvmeN), made by stacd,
   * by nvme-cli or by this module, to a libnvme controller object.
   * @throws {Error} when libnvme cannot bind it (gone, not a fabrics controller).
   */
  static adopt(host: HostIdentity, target: ConnectTarget, device: string): AdoptedController {
    const instance = Number(device.match(/^nvme(\d+)$/)?.[1]);
    if (!Number.isInteger(instance)) throw new RangeError(`Not an nvme device: ${device}`);
    const { nvme } = extraLibraries();
    const keep: Uint8Array[] = [];
    const c = (s: string | undefined) => {
      const bytes = cstr(s || undefined);
      if (bytes !== null) keep.push(bytes);
      return bytes;
    };
    const root = nvme.nvme_create_root(null, LOG_ERR);
    if (root === null) throw new Error("nvme_create_root failed");
    const h = nvme.nvme_lookup_host(root, c(host.hostnqn), c(host.hostid));
    const ctrl = nvme.nvme_create_ctrl(
      root,
      c(target.subsysnqn),
      c(target.transport),
      c(target.traddr),
      c(target.hostTraddr),
      c(target.hostIface),
      c(target.trsvcid),
    );
    const rc = ctrl === null ? -1 : nvme.nvme_init_ctrl(h, ctrl, instance);
    if (rc !== 0) {
      nvme.nvme_free_tree(root);
      throw new Error(`Cannot adopt ${device}: nvme_init_ctrl returned ${rc}`);
    }
    return new AdoptedController(device, root, ctrl, keep);
  }

  /** The device libnvme bound, read back from it. */
  get name(): string | undefined {
    if (this.#ctrl === null) return undefined;
    return readCString(extraLibraries().nvme.nvme_ctrl_get_name(this.#ctrl));
  }

  /** Reads the discovery log page of this (discovery) controller. */
  async discoveryLog(maxRetries = 4): Promise<DiscoveryLogEntry[]> {
    if (this.#ctrl === null) throw new Error("AdoptedController used after close()");
    const { nvme, c } = extraLibraries();
    const slot = new PointerSlot();
    const rc = await nvme.nvmf_get_discovery_log(this.#ctrl, slot.buffer, maxRetries);
    if (rc !== 0) throw new Error(`Cannot read the discovery log of ${this.device} (${rc})`);
    const page = slot.value;
    try {
      const numrec = Number(readU64(page, 8));
      const bytes = readBytes(page, DISCOVERY_LOG_HEADER_SIZE + numrec * DISCOVERY_LOG_ENTRY_SIZE);
      return decodeDiscoveryLog(bytes);
    } finally {
      c.free(page);
    }
  }

  /** Frees the libnvme objects; the kernel controller is left as it is. Idempotent. */
  close(): void {
    if (this.#root !== null) extraLibraries().nvme.nvme_free_tree(this.#root);
    this.#root = this.#ctrl = null;
    this.#keepAlive.length = 0;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Connects a discovery controller through stacd's binding, reads its
 * discovery log page and deletes the controller again.
 */
export async function discover(
  nvme: Libnvme,
  host: HostIdentity,
  target: ConnectTarget,
  options: FabricsOptions = {},
): Promise<DiscoveryLogEntry[]> {
  using ctrl = nvme.controller(host, target);
  const device = await ctrl.connect(options);
  try {
    using adopted = AdoptedController.adopt(host, target, device);
    return await adopted.discoveryLog();
  } finally {
    await deleteController(device);
  }
}
