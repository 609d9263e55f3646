/**
 * The kernel's stable connect interface: write an option string to
 * /dev/nvme-fabrics and read back `instance=N,cntlid=M`. stacd uses it where
 * libnvme's struct layout is not verified for the installed version. And
 * deleting a controller through sysfs, which stacd always does.
 */
import { ConnectError } from "../core/kernel_api.ts";
import {
  type ConnectRequest,
  kernelOptionString,
  parseConnectReply,
} from "../core/connect_request.ts";
import { NVME_CLASS_DIR } from "./nvme_sysfs.ts";

export const FABRICS_DEVICE = "/dev/nvme-fabrics";

/**
 * Writes one raw option string; resolves with the new controller's device
 * name. Rejects with ConnectError, worded as libnvme words it ("Failed to
 * write to /dev/nvme-fabrics: Connection refused") so that a refusal reads
 * the same whichever path the connect took.
 */
async function writeFabricsOptions(
  options: string,
  device = FABRICS_DEVICE,
): Promise<{ device: string; instance: number; cntlid: number }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(device, { read: true, write: true });
  } catch (error) {
    throw osError(`open ${device}`, error);
  }
  using _ = file;
  try {
    await file.write(new TextEncoder().encode(options));
  } catch (error) {
    throw osError(`write to ${device}`, error);
  }
  const buffer = new Uint8Array(4096);
  let n: number | null;
  try {
    n = await file.read(buffer);
  } catch (error) {
    throw osError(`read from ${device}`, error);
  }
  try {
    const reply = parseConnectReply(new TextDecoder().decode(buffer.subarray(0, n ?? 0)));
    return { device: `nvme${reply.instance}`, ...reply };
  } catch (error) {
    throw new ConnectError((error as Error).message, { cause: error });
  }
}

/** Deno's "Connection refused (os error 111)" as "Failed to <what>: Connection refused", errno 111. */
function osError(what: string, error: unknown): ConnectError {
  const text = error instanceof Error ? error.message : String(error);
  const os = text.match(/^(.*?) \(os error (\d+)\)/);
  const reason = `Failed to ${what}: ${os?.[1] ?? text}`;
  return new ConnectError(reason, { errno: os ? Number(os[2]) : undefined, cause: error });
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
