/**
 * The kernel of the host benchmarks: connects succeed at once and the
 * controllers are kept as the kernel keeps them, one record each, with
 * nothing else. tests/unit/fakes.ts's FakeKernel also logs every call with
 * its request for the tests to inspect: ~0.5 MB with 1,000 controllers that
 * the real stacd does not hold (its kernel state lives in the kernel) and
 * that would be charged to stacd's memory figure.
 *
 * A connect to the discovery NQN makes a discovery controller, and
 * BenchDiscoveryKernel reads its log page: the finder's benchmarks.
 */
import type { DiscoveryKernel, Kernel } from "../../lib/core/kernel_api.ts";
import { type ConnectRequest, DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
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
      cntrltype: target.subsysnqn === DISCOVERY_NQN ? "discovery" : "io",
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

/**
 * BenchKernel with discovery log pages: `pageOf(traddr)` makes the bytes of
 * the page a discovery controller at that address returns, on every read.
 * Nothing is held between reads (a real read allocates its buffer too), so
 * the pages are not charged to the finder's memory figure.
 */
export class BenchDiscoveryKernel extends BenchKernel implements DiscoveryKernel {
  readonly #pageOf: (traddr: string) => Uint8Array;

  constructor(pageOf: (traddr: string) => Uint8Array) {
    super();
    this.#pageOf = pageOf;
  }

  async discoveryLog(device: string): Promise<Uint8Array> {
    const k = await this.controller(device);
    if (!k) throw new Error(`${device}: no such device`);
    return this.#pageOf(k.traddr);
  }
}
