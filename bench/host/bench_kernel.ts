/**
 * The kernel of the host benchmarks: connects succeed at once and the
 * controllers are kept as the kernel keeps them, one record each, with
 * nothing else. tests/unit/fakes.ts's FakeKernel also logs every call with
 * its request for the tests to inspect: ~0.5 MB with 1,000 controllers that
 * the real stacd does not hold (its kernel state lives in the kernel) and
 * that would be charged to stacd's memory figure.
 */
import type { Kernel } from "../../lib/core/kernel_api.ts";
import type { ConnectRequest } from "../../lib/core/connect_request.ts";
import type { KernelController } from "../../lib/core/kernel_controller.ts";

export class BenchKernel implements Kernel {
  readonly #controllers = new Map<string, KernelController>();
  #instance = 0;

  list(): Promise<KernelController[]> {
    return Promise.resolve([...this.#controllers.values()].map((k) => ({ ...k })));
  }

  controller(device: string): Promise<KernelController | undefined> {
    const k = this.#controllers.get(device);
    return Promise.resolve(k && { ...k });
  }

  connect({ target, host }: ConnectRequest): Promise<string> {
    const device = `nvme${this.#instance++}`;
    this.#controllers.set(device, {
      device,
      transport: target.transport,
      traddr: target.traddr,
      trsvcid: target.trsvcid,
      hostTraddr: target.hostTraddr,
      hostIface: target.hostIface,
      subsysnqn: target.subsysnqn,
      hostnqn: host.hostnqn,
      hostid: host.hostid,
      cntrltype: "io",
      dctype: "none",
      state: "live",
      model: "Linux",
      serial: device,
    });
    return Promise.resolve(device);
  }

  disconnect(device: string): Promise<void> {
    this.#controllers.delete(device);
    return Promise.resolve();
  }
}
