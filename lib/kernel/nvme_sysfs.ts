/**
 * The nvme controllers that exist now, as /sys/class/nvme/nvmeX describes
 * them. The daemon reads the attribute files (readNvmeControllers,
 * readNvmeController; no library needed, and tests point them at a fake
 * tree) on every reconcile pass and for each controller it checks. The
 * tests show that libudev's enumeration agrees (tests/udev_enumerate.ts).
 */

import {
  type KernelController,
  kernelControllerFromAttributes,
} from "../core/kernel_controller.ts";

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
 * Lists the controllers by reading the attribute files under `root` (default
 * /sys/class/nvme), sorted by device number; a missing class directory means
 * no controller. Deno lets only --allow-all read /sys; without it this
 * throws NotCapable.
 */
export function readNvmeControllers(options: { root?: string } = {}): KernelController[] {
  return nvmeControllersOf(
    fileClassDevices(options.root ?? NVME_CLASS_DIR, NVME_CONTROLLER_ATTRIBUTES),
  );
}

/** The controllers that devices of the nvme class describe, nvme2 before nvme10. */
export function nvmeControllersOf(devices: readonly SysfsDevice[]): KernelController[] {
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

/** nvme2 before nvme10. */
function sortByDevice(controllers: KernelController[]): KernelController[] {
  const number = (device: string) => Number(device.match(/\d+$/)?.[0] ?? Infinity);
  return controllers.sort((a, b) =>
    number(a.device) - number(b.device) || a.device.localeCompare(b.device)
  );
}
