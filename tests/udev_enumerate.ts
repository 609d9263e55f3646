/**
 * sysfs as libudev enumerates it, for the tests to check stacd's plain file
 * reads (lib/kernel/nvme_sysfs.ts) against: the same devices and attribute texts.
 */
import { listEntries } from "../ffi/libudev.ts";
import { cstr, readCString } from "../ffi/pointers.ts";
import type { KernelController } from "../lib/core/kernel_controller.ts";
import {
  NVME_CONTROLLER_ATTRIBUTES,
  nvmeControllersOf,
  type SysfsDevice,
} from "../lib/kernel/nvme_sysfs.ts";
import { openLibudevExtra } from "./ffi/libudev_extra.ts";

/**
 * Lists the controllers through libudev, sorted by device number; a
 * controller deleted during the scan is left out.
 * @throws {LibraryNotFoundError} when libudev is missing.
 * @throws {Error} when libudev cannot scan sysfs.
 */
export function listNvmeControllers(): KernelController[] {
  return nvmeControllersOf(udevClassDevices("nvme", NVME_CONTROLLER_ATTRIBUTES));
}

/**
 * The devices of `subsystem` with `attributes`, through udev_enumerate and
 * udev_device_get_sysattr_value.
 */
export function udevClassDevices(subsystem: string, attributes: readonly string[]): SysfsDevice[] {
  using stack = new DisposableStack();
  const u = stack.adopt(openLibudevExtra(), (lib) => lib.close()).symbols;
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
        name: readCString(u.udev_device_get_sysname(device)) ??
          path.slice(path.lastIndexOf("/") + 1),
        path,
        attributes: Object.fromEntries(attributes.map((name) => [name, read(name)])),
      });
    } finally {
      u.udev_device_unref(device);
    }
  }
  return devices;
}
