/**
 * What the control loop needs of the kernel, behind one small interface:
 * RealKernel (kernel/real_kernel.ts: libnvme, sysfs, /dev/nvme-fabrics) in stacd, an
 * in-memory fake in the unit tests and the host benches.
 */
import type { ConnectRequest } from "./connect_request.ts";
import type { KernelController } from "./kernel_controller.ts";

export interface Kernel {
  /** The fabrics controllers the kernel has now. */
  list(): Promise<KernelController[]>;
  /** One of them, read alone (cheaper than list() with many); undefined if it is gone. */
  controller(device: string): Promise<KernelController | undefined>;
  /**
   * Connects; resolves with the device name (nvmeX). Rejects with
   * {@linkcode ConnectError} when the kernel (or libnvme on the way there)
   * refuses, and with {@linkcode ConnectRefusedError} when the connect must
   * not be made at all.
   */
  connect(request: ConnectRequest): Promise<string>;
  /** Deletes the kernel controller `device`. */
  disconnect(device: string): Promise<void>;
  /** Whether a connect with a host ID paired with another host NQN fails (6.5+); default true. */
  readonly refusesSharedHostId?: boolean;
}

/** What the finder needs of the kernel: the same, and reading a discovery log page. */
export interface DiscoveryKernel extends Kernel {
  /** The raw discovery log page of the discovery controller `device` (connected now or before). */
  discoveryLog(device: string): Promise<Uint8Array>;
}

/**
 * A connect that must not be made (fail closed): retrying cannot help
 * until the configuration or the kernel changes. `setting` is the config
 * option concerned; the message never holds a key.
 */
export class ConnectRefusedError extends Error {
  constructor(readonly setting: string, message: string) {
    super(message);
    this.name = "ConnectRefusedError";
  }
}

/**
 * The one error a connect rejects with when the kernel refuses it (or
 * libnvme fails on the way there), whichever path it took: libnvme's
 * nvmf_add_ctrl, or a write to /dev/nvme-fabrics. Retried, unlike
 * {@linkcode ConnectRefusedError}.
 */
export class ConnectError extends Error {
  /** The errno behind the refusal (ECONNREFUSED is 111), when known. */
  readonly errno: number | undefined;

  /**
   * @param reason The kernel's reason in libnvme's words, e.g. "Failed to
   *   write to /dev/nvme-fabrics: Connection refused": the message itself,
   *   which the log shows as `Connect failed (<reason>)`.
   */
  constructor(readonly reason: string, options: { errno?: number; cause?: unknown } = {}) {
    super(reason, { cause: options.cause });
    this.name = "ConnectError";
    this.errno = options.errno;
  }
}
