/**
 * libudev (libudev.so.1) symbols stacd uses: the uevent monitor. Only the
 * documented, stable libudev API; every handle is an opaque pointer, so
 * nothing here depends on a layout. (The tests also enumerate sysfs
 * through libudev: tests/ffi/libudev_extra.ts.)
 */

import { openLibrary } from "./loader.ts";
import { readCString } from "./pointers.ts";

/** `struct udev *`: the library context. */
export type Udev = Deno.PointerObject<"struct udev">;
/** `struct udev_monitor *`: a netlink uevent socket. */
export type UdevMonitorHandle = Deno.PointerObject<"struct udev_monitor">;
/** `struct udev_device *`: one device (from an event or from sysfs). */
export type UdevDevice = Deno.PointerObject<"struct udev_device">;
/** `struct udev_list_entry *`: one name/value pair of a list owned by its parent. */
export type UdevListEntry = Deno.PointerObject<"struct udev_list_entry">;

// Branded pointer types, so passing a udev_device where a udev_monitor is
// expected is a compile error instead of a crash.
export const UDEV = "pointer" as Deno.NativeTypedPointer<Udev>;
const MONITOR = "pointer" as Deno.NativeTypedPointer<UdevMonitorHandle>;
export const DEVICE = "pointer" as Deno.NativeTypedPointer<UdevDevice>;
export const ENTRY = "pointer" as Deno.NativeTypedPointer<UdevListEntry>;
/** `const char *` parameter: a NUL-terminated buffer (see `cstr`), or null. */
export const CSTR = "buffer";
/** `const char *` result, owned by libudev: read it before the owner is unref'd. */
export const CSTR_RESULT = "pointer";

/** libudev symbols, keyed by their C names. */
export const LIBUDEV_SYMBOLS = {
  // struct udev *udev_new(void);
  udev_new: { parameters: [], result: UDEV },
  // struct udev *udev_unref(struct udev *udev);
  udev_unref: { parameters: [UDEV], result: UDEV },

  // struct udev_monitor *udev_monitor_new_from_netlink(struct udev *udev, const char *name);
  udev_monitor_new_from_netlink: { parameters: [UDEV, CSTR], result: MONITOR },
  // int udev_monitor_filter_add_match_subsystem_devtype(struct udev_monitor *udev_monitor,
  //                                                     const char *subsystem, const char *devtype);
  udev_monitor_filter_add_match_subsystem_devtype: {
    parameters: [MONITOR, CSTR, CSTR],
    result: "i32",
  },
  // int udev_monitor_enable_receiving(struct udev_monitor *udev_monitor);
  udev_monitor_enable_receiving: { parameters: [MONITOR], result: "i32" },
  // int udev_monitor_set_receive_buffer_size(struct udev_monitor *udev_monitor, int size);
  udev_monitor_set_receive_buffer_size: { parameters: [MONITOR, "i32"], result: "i32" },
  // int udev_monitor_get_fd(struct udev_monitor *udev_monitor);
  udev_monitor_get_fd: { parameters: [MONITOR], result: "i32" },
  // struct udev_device *udev_monitor_receive_device(struct udev_monitor *udev_monitor);
  udev_monitor_receive_device: { parameters: [MONITOR], result: DEVICE },
  // struct udev_monitor *udev_monitor_unref(struct udev_monitor *udev_monitor);
  udev_monitor_unref: { parameters: [MONITOR], result: MONITOR },

  // const char *udev_device_get_action(struct udev_device *udev_device);
  udev_device_get_action: { parameters: [DEVICE], result: CSTR_RESULT },
  // const char *udev_device_get_sysname(struct udev_device *udev_device);
  udev_device_get_sysname: { parameters: [DEVICE], result: CSTR_RESULT },
  // const char *udev_device_get_devpath(struct udev_device *udev_device);
  udev_device_get_devpath: { parameters: [DEVICE], result: CSTR_RESULT },
  // const char *udev_device_get_subsystem(struct udev_device *udev_device);
  udev_device_get_subsystem: { parameters: [DEVICE], result: CSTR_RESULT },
  // const char *udev_device_get_property_value(struct udev_device *udev_device, const char *key);
  udev_device_get_property_value: { parameters: [DEVICE, CSTR], result: CSTR_RESULT },
  // struct udev_list_entry *udev_device_get_properties_list_entry(struct udev_device *udev_device);
  udev_device_get_properties_list_entry: { parameters: [DEVICE], result: ENTRY },
  // struct udev_device *udev_device_unref(struct udev_device *udev_device);
  udev_device_unref: { parameters: [DEVICE], result: DEVICE },

  // struct udev_list_entry *udev_list_entry_get_next(struct udev_list_entry *list_entry);
  udev_list_entry_get_next: { parameters: [ENTRY], result: ENTRY },
  // const char *udev_list_entry_get_name(struct udev_list_entry *list_entry);
  udev_list_entry_get_name: { parameters: [ENTRY], result: CSTR_RESULT },
  // const char *udev_list_entry_get_value(struct udev_list_entry *list_entry);
  udev_list_entry_get_value: { parameters: [ENTRY], result: CSTR_RESULT },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libudev. */
export type Libudev = Deno.DynamicLibrary<typeof LIBUDEV_SYMBOLS>["symbols"];

/**
 * Opens libudev; the caller closes the library once it has unref'd every
 * handle it created.
 * @throws {LibraryNotFoundError} listing every path tried.
 */
export function openLibudev(): Deno.DynamicLibrary<typeof LIBUDEV_SYMBOLS> {
  return openLibrary("libudev", ["libudev.so.1"], LIBUDEV_SYMBOLS);
}

/** Walks a udev list from `first`, yielding `[name, value]` (value "" when NULL). */
export function* listEntries(
  u: Libudev,
  first: UdevListEntry | null,
): Generator<[string, string]> {
  for (let entry = first; entry !== null; entry = u.udev_list_entry_get_next(entry)) {
    const name = readCString(u.udev_list_entry_get_name(entry));
    if (name !== undefined) yield [name, readCString(u.udev_list_entry_get_value(entry)) ?? ""];
  }
}
