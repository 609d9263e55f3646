/**
 * The nvme controllers that exist now, as /sys/class/nvme/nvmeX describes
 * them. The daemon reads the attribute files (readNvmeControllers,
 * readNvmeController; no library needed, and tests point them at a fake
 * tree) on every reconcile pass and for each controller it checks. The
 * libudev reader, listNvmeControllers, gives the same result; only a test
 * uses it, to show that the two agree.
 */

import { listEntries, openLibudev } from "../ffi/libudev.ts";
import { cstr, readCString } from "../ffi/pointers.ts";
import { type KernelController, kernelControllerFromAttributes } from "./kernel_controller.ts";

/** Where the kernel lists nvme controllers. */
export const NVME_CLASS_DIR = "/sys/class/nvme";

/** The attributes of /sys/class/nvme/nvmeX that make a {@linkcode KernelController}. */
export const NVME_CONTROLLER_ATTRIBUTES = [
  "transport",
  "address",
  "subsysnqn",
  "hostnqn",
  "hostid",
  "cntrltype",
  "dctype",
  "state",
  "model",
  "serial",
] as const;

/** A namespace below a controller: nvme3n1, or nvme3c3n1 with native multipath. */
const NAMESPACE = /^nvme\d+(c\d+)?n\d+$/;

/** One device of a sysfs class with the raw text of the attributes asked for. */
export interface SysfsDevice {
  /** Kernel name, e.g. "nvme3". */
  name: string;
  /** Its directory in sysfs. */
  path: string;
  /** Text without trailing newline or padding; undefined when absent or unreadable. */
  attributes: Record<string, string | undefined>;
}

/**
 * Lists the controllers through libudev, sorted by device number; a
 * controller deleted during the scan is left out.
 * @throws {LibraryNotFoundError} when libudev is missing.
 * @throws {Error} when libudev cannot scan sysfs.
 */
export function listNvmeControllers(): KernelController[] {
  return sortByDevice(udevClassDevices("nvme", NVME_CONTROLLER_ATTRIBUTES).map(toController));
}

/**
 * Lists the controllers by reading the attribute files under `root` (default
 * /sys/class/nvme), sorted by device number; a missing class directory means
 * no controller. Same result as {@linkcode listNvmeControllers}. Deno lets
 * only --allow-all read /sys; without it both readers see no namespaces and
 * this one throws NotCapable.
 */
export function readNvmeControllers(options: { root?: string } = {}): KernelController[] {
  const devices = fileClassDevices(options.root ?? NVME_CLASS_DIR, NVME_CONTROLLER_ATTRIBUTES);
  return sortByDevice(devices.map(toController));
}

/**
 * One controller, read from its attribute files under `root` (default
 * /sys/class/nvme); undefined when it does not exist (any more).
 */
export function readNvmeController(
  device: string,
  options: { root?: string } = {},
): KernelController | undefined {
  if (!/^nvme\d+$/.test(device)) return undefined;
  const read = fileDevice(options.root ?? NVME_CLASS_DIR, device, NVME_CONTROLLER_ATTRIBUTES);
  // A deleted controller has no attributes left; one read mid-deletion may lack some.
  return read.attributes.transport === undefined ? undefined : toController(read);
}

/**
 * The devices of `subsystem` with `attributes`, through udev_enumerate and
 * udev_device_get_sysattr_value.
 */
export function udevClassDevices(subsystem: string, attributes: readonly string[]): SysfsDevice[] {
  using stack = new DisposableStack();
  const u = stack.adopt(openLibudev(), (lib) => lib.close()).symbols;
  const fail = (what: string, rc: number) =>
    new Error(`Cannot list the ${subsystem} devices: ${what} failed (${rc})`);
  const udev = u.udev_new();
  if (udev === null) throw fail("udev_new", 0);
  stack.defer(() => u.udev_unref(udev));
  const enumerate = u.udev_enumerate_new(udev);
  if (enumerate === null) throw fail("udev_enumerate_new", 0);
  stack.defer(() => u.udev_enumerate_unref(enumerate));
  let rc = u.udev_enumerate_add_match_subsystem(enumerate, cstr(subsystem));
  if (rc < 0) throw fail("udev_enumerate_add_match_subsystem", rc);
  rc = u.udev_enumerate_scan_devices(enumerate);
  if (rc < 0) throw fail("udev_enumerate_scan_devices", rc);

  const devices: SysfsDevice[] = [];
  for (const [path] of listEntries(u, u.udev_enumerate_get_list_entry(enumerate))) {
    const device = u.udev_device_new_from_syspath(udev, cstr(path));
    if (device === null) continue; // deleted since the scan
    try {
      const read = (attribute: string) =>
        readCString(u.udev_device_get_sysattr_value(device, cstr(attribute)))?.trimEnd();
      devices.push({
        name: readCString(u.udev_device_get_sysname(device)) ?? baseName(path),
        path,
        attributes: Object.fromEntries(attributes.map((name) => [name, read(name)])),
      });
    } finally {
      u.udev_device_unref(device);
    }
  }
  return devices;
}

/** The devices listed in the class directory `root` with `attributes`, read as files. */
export function fileClassDevices(root: string, attributes: readonly string[]): SysfsDevice[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(root)].map((entry) => entry.name);
  } catch (error) {
    // The class does not exist (nvme module not loaded): no device, not an error.
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return names.map((name) => fileDevice(root, name, attributes));
}

/** Device `name` of the class directory `root`, its `attributes` read as files. */
function fileDevice(root: string, name: string, attributes: readonly string[]): SysfsDevice {
  const path = `${root}/${name}`;
  const read = (attribute: string) => readAttribute(`${path}/${attribute}`);
  return { name, path, attributes: Object.fromEntries(attributes.map((a) => [a, read(a)])) };
}

function toController(device: SysfsDevice): KernelController {
  const hasNamespaces = hasNamespaceChild(device.path);
  return kernelControllerFromAttributes(device.name, (a) => device.attributes[a], {
    hasNamespaces,
  });
}

/** An attribute's text, or undefined when the file is absent or unreadable (e.g. deleted). */
function readAttribute(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path).trimEnd();
  } catch {
    return undefined;
  }
}

/** Whether a namespace hangs below the controller directory `dir`. */
function hasNamespaceChild(dir: string): boolean {
  try {
    for (const entry of Deno.readDirSync(dir)) if (NAMESPACE.test(entry.name)) return true;
  } catch {
    // Deleted while we looked: it has no namespaces any more.
  }
  return false;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** nvme2 before nvme10. */
function sortByDevice(controllers: KernelController[]): KernelController[] {
  const number = (device: string) => Number(device.match(/\d+$/)?.[0] ?? Infinity);
  return controllers.sort((a, b) =>
    number(a.device) - number(b.device) || a.device.localeCompare(b.device)
  );
}
