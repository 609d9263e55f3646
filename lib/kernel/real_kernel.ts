/**
 * The real kernel behind the Kernel interface: sysfs for the current
 * connections and for disconnect (delete_controller), libnvme for connect. Where libnvme's fabrics
 * config layout is not verified for the installed version, connects go
 * through /dev/nvme-fabrics directly (the kernel's stable interface), which
 * the caller is told about once. Settings the running kernel cannot take
 * (the host's DH-HMAC-CHAP key without kernel authentication, host-iface
 * where the driver does not list it) are left out of every connect
 * (docs/design.md#kernel-support), and reported once per setting through `warn`; a controller
 * key it cannot take fails that connect (ConnectRefusedError) instead.
 */
import { ConnectRefusedError, type DiscoveryKernel } from "../core/kernel_api.ts";
import { connectViaFabricsDevice, deleteController } from "./fabrics_device.ts";
import { type ConnectRequest, unsafeRequestField } from "../core/connect_request.ts";
import {
  dependsOnSupport,
  type FabricsSupport,
  readFabricsSupport,
  supportedRequest,
} from "./fabrics_support.ts";
import { refusesSharedHostId } from "../core/host_id.ts";
import type { KernelController } from "../core/kernel_controller.ts";
import { Libnvme } from "./libnvme.ts";
import { readDiscoveryLog } from "./discovery_log_reader.ts";
import { readNvmeController, readNvmeControllers } from "./nvme_sysfs.ts";

export interface RealKernelOptions {
  /** sysfs class directory, for tests against a fake tree. */
  sysfsRoot?: string;
  /** What the kernel supports; read from the running kernel when absent. */
  support?: FabricsSupport;
  /** Told once per setting the kernel cannot take (e.g. the logger's warning). */
  warn?: (message: string) => void;
}

/** Why a setting is left out, by its config name. */
const UNSUPPORTED: Record<string, string> = {
  "dhchap-secret": "the kernel has no NVMe authentication (DH-HMAC-CHAP)",
  "host-iface": "the kernel's nvme-fabrics does not take host_iface",
};

export class RealKernel implements DiscoveryKernel {
  readonly #nvme: Libnvme;
  readonly #sysfsRoot: string | undefined;
  readonly #warn: (message: string) => void;
  readonly #support: Promise<FabricsSupport>;
  readonly #warned = new Set<string>();
  readonly refusesSharedHostId = refusesSharedHostId(Deno.osRelease());

  constructor(nvme: Libnvme, options: RealKernelOptions = {}) {
    this.#nvme = nvme;
    this.#sysfsRoot = options.sysfsRoot;
    this.#warn = options.warn ?? (() => {});
    // Read from the start: its read of /dev/nvme-fabrics then takes the
    // kernel's fabrics mutex before the first connect does, and a connect
    // that needs it (a key, host-iface) mostly finds it ready.
    this.#support = options.support ? Promise.resolve(options.support) : readFabricsSupport();
  }

  /** Whether connects use libnvme (verified layout) or the option string. */
  get connectPath(): "libnvme" | "fabrics-device" {
    return this.#nvme.layout ? "libnvme" : "fabrics-device";
  }

  /** The running kernel's fabrics capabilities (read once, when this adapter is made). */
  support(): Promise<FabricsSupport> {
    return this.#support;
  }

  list(): Promise<KernelController[]> {
    return Promise.resolve(readNvmeControllers({ root: this.#sysfsRoot }));
  }

  /**
   * Connects through libnvme, or /dev/nvme-fabrics where its layout is not
   * verified; rejects with ConnectError when the kernel refuses, whichever
   * path, and with ConnectRefusedError when the connect must not be made.
   */
  async connect(request: ConnectRequest): Promise<string> {
    // The last guard for both paths: the config and stafd's pages are checked
    // before, with file and line; nothing reaches the option string unchecked.
    const unsafe = unsafeRequestField(request);
    if (unsafe !== undefined) {
      const { field, problem } = unsafe;
      throw new ConnectRefusedError(field, `${field} ${problem}; the kernel cannot be given it`);
    }
    // Waiting for the support read only where it matters: at start-up it
    // completes only once the first pass gives the event loop back.
    const { request: passed, dropped, refused } = dependsOnSupport(request)
      ? supportedRequest(request, await this.support())
      : { request, dropped: [] };
    if (refused !== undefined) {
      throw new ConnectRefusedError(
        refused,
        `${refused} is configured, so the host must authenticate the controller, ` +
          "but the kernel cannot (no DH-HMAC-CHAP controller authentication)",
      );
    }
    for (const setting of dropped) {
      if (this.#warned.has(setting)) continue;
      this.#warned.add(setting);
      this.#warn(`${setting} is configured but not passed: ${UNSUPPORTED[setting]}`);
    }
    if (!this.#nvme.layout) return (await connectViaFabricsDevice(passed)).device;
    using ctrl = this.#nvme.controller(passed.host, passed.target);
    return await ctrl.connect(passed.options);
  }

  controller(device: string): Promise<KernelController | undefined> {
    return Promise.resolve(readNvmeController(device, { root: this.#sysfsRoot }));
  }

  /** The discovery log page of the discovery controller `device` (the admin passthrough). */
  discoveryLog(device: string): Promise<Uint8Array> {
    return readDiscoveryLog(device);
  }

  /**
   * Writes delete_controller, as libnvme's nvme_disconnect_ctrl does, but
   * without binding a libnvme controller first: that (nvme_init_ctrl) reads
   * every attribute and scans the namespaces, which made taking 32
   * controllers away several times slower than the kernel needs.
   */
  disconnect(device: string): Promise<void> {
    return deleteController(device, this.#sysfsRoot);
  }
}
