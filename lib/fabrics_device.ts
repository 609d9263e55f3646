/**
 * The kernel's stable connect interface: write an option string to
 * /dev/nvme-fabrics and read back `instance=N,cntlid=M`. stacd uses it where
 * libnvme's struct layout is not verified for the installed version, and the
 * benchmarks use it as the kernel's own speed limit.
 */
import { type ConnectRequest, kernelOptionString, parseConnectReply } from "./fabrics_options.ts";
import { NVME_CLASS_DIR } from "./nvme_sysfs.ts";

export const FABRICS_DEVICE = "/dev/nvme-fabrics";

/** A connect refused by the kernel; `code` is the errno name (ECONNREFUSED, ...). */
export class FabricsConnectError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "FabricsConnectError";
  }
}

/** Writes one raw option string; resolves with the new controller's device name. */
export async function writeFabricsOptions(
  options: string,
  device = FABRICS_DEVICE,
): Promise<{ device: string; instance: number; cntlid: number }> {
  using file = await Deno.open(device, { read: true, write: true });
  try {
    await file.write(new TextEncoder().encode(options));
  } catch (error) {
    const code = error instanceof Error && "code" in error ? String(error.code) : "EIO";
    const reason = error instanceof Error ? error.message : String(error);
    throw new FabricsConnectError(code, `connect failed: ${reason}`);
  }
  const buffer = new Uint8Array(4096);
  const n = await file.read(buffer);
  const reply = parseConnectReply(new TextDecoder().decode(buffer.subarray(0, n ?? 0)));
  return { device: `nvme${reply.instance}`, ...reply };
}

/** Connects through /dev/nvme-fabrics without libnvme. */
export function connectViaFabricsDevice(
  request: ConnectRequest,
  device = FABRICS_DEVICE,
): Promise<{ device: string; instance: number; cntlid: number }> {
  return writeFabricsOptions(kernelOptionString(request), device);
}

/**
 * Deletes a kernel controller through sysfs, as nvme_disconnect_ctrl does;
 * nothing to do if it is gone already. The write runs off the event loop;
 * the kernel returns once the controller is gone.
 * @throws {RangeError} when `name` is not an nvme controller's.
 */
export async function deleteController(name: string, sysfs = NVME_CLASS_DIR): Promise<void> {
  if (!/^nvme\d+$/.test(name)) throw new RangeError(`Not an nvme device: ${name}`);
  let file: Deno.FsFile;
  try {
    // No create, no truncate: a sysfs attribute, opened only if the device still exists.
    file = await Deno.open(`${sysfs}/${name}/delete_controller`, { write: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  try {
    await file.write(new TextEncoder().encode("1"));
  } finally {
    file.close();
  }
}
