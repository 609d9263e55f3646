/**
 * The real kernel behind the Kernel interface: sysfs for the current
 * connections, libnvme for connect and disconnect. Where libnvme's fabrics
 * config layout is not verified for the installed version, connects go
 * through /dev/nvme-fabrics directly (the kernel's stable interface), which
 * the caller is told about once.
 */
import type { Kernel } from "./controller.ts";
import { connectViaFabricsDevice } from "./fabrics_device.ts";
import type { ConnectRequest } from "./fabrics_options.ts";
import type { KernelController } from "./kernel_controller.ts";
import { Libnvme } from "./libnvme.ts";
import { readNvmeControllers } from "./nvme_sysfs.ts";

export interface RealKernelOptions {
  /** sysfs class directory, for tests against a fake tree. */
  sysfsRoot?: string;
}

export class RealKernel implements Kernel {
  readonly #nvme: Libnvme;
  readonly #sysfsRoot: string | undefined;

  constructor(nvme: Libnvme, options: RealKernelOptions = {}) {
    this.#nvme = nvme;
    this.#sysfsRoot = options.sysfsRoot;
  }

  /** Whether connects use libnvme (verified layout) or the option string. */
  get connectPath(): "libnvme" | "fabrics-device" {
    return this.#nvme.layout ? "libnvme" : "fabrics-device";
  }

  list(): Promise<KernelController[]> {
    return Promise.resolve(readNvmeControllers({ root: this.#sysfsRoot }));
  }

  async connect(request: ConnectRequest): Promise<string> {
    if (!this.#nvme.layout) return (await connectViaFabricsDevice(request)).device;
    using ctrl = this.#nvme.controller(request.host, request.target);
    return await ctrl.connect(request.options);
  }

  async disconnect(device: string): Promise<void> {
    const instance = Number(device.replace(/^nvme/, ""));
    if (!Number.isInteger(instance)) throw new RangeError(`Not an nvme device: ${device}`);
    const k = (await this.list()).find((c) => c.device === device);
    if (!k) return;
    using ctrl = this.#nvme.adopt(
      { hostnqn: k.hostnqn, hostid: k.hostid },
      {
        transport: k.transport,
        traddr: k.traddr,
        trsvcid: k.trsvcid,
        subsysnqn: k.subsysnqn,
        hostTraddr: k.hostTraddr,
        hostIface: k.hostIface,
      },
      instance,
    );
    await ctrl.disconnect();
  }
}
