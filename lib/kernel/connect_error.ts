/**
 * The one error a connect rejects with when the kernel refuses it (or
 * libnvme fails on the way there), whichever path it took: libnvme's
 * nvmf_add_ctrl, or a write to /dev/nvme-fabrics. A connect that must not
 * be made at all rejects with ConnectRefusedError (kernel_api.ts) instead:
 * retrying cannot help that one.
 */
export class ConnectError extends Error {
  /** The errno behind the refusal (ECONNREFUSED is 111), when known. */
  readonly errno: number | undefined;

  /**
   * @param reason The kernel's reason in libnvme's words, e.g. "Failed to
   *   write to /dev/nvme-fabrics: Connection refused".
   */
  constructor(readonly reason: string, options: { errno?: number; cause?: unknown } = {}) {
    super(`connect failed: ${reason}`, { cause: options.cause });
    this.name = "ConnectError";
    this.errno = options.errno;
  }
}
