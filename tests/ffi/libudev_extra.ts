/**
 * The libudev symbols that only the tests call: enumerating a sysfs class
 * and reading device attributes, to compare with what stacd reads from the
 * files themselves (lib/kernel/nvme_sysfs.ts). Kept out of stacd's table
 * (ffi/libudev.ts), where every symbol must resolve when stacd starts.
 */
import { CSTR, CSTR_RESULT, DEVICE, ENTRY, LIBUDEV_SYMBOLS, UDEV } from "../../ffi/libudev.ts";
import { openLibrary } from "../../ffi/loader.ts";

/** `struct udev_enumerate *`: a sysfs device scan. */
export type UdevEnumerate = Deno.PointerObject<"struct udev_enumerate">;
const ENUMERATE = "pointer" as Deno.NativeTypedPointer<UdevEnumerate>;

/** stacd's symbols (context, devices, lists) and the tests' own. */
export const LIBUDEV_EXTRA_SYMBOLS = {
  ...LIBUDEV_SYMBOLS,
  // const char *udev_device_get_sysattr_value(struct udev_device *udev_device, const char *sysattr);
  udev_device_get_sysattr_value: { parameters: [DEVICE, CSTR], result: CSTR_RESULT },
  // struct udev_device *udev_device_new_from_syspath(struct udev *udev, const char *syspath);
  udev_device_new_from_syspath: { parameters: [UDEV, CSTR], result: DEVICE },
  // struct udev_enumerate *udev_enumerate_new(struct udev *udev);
  udev_enumerate_new: { parameters: [UDEV], result: ENUMERATE },
  // int udev_enumerate_add_match_subsystem(struct udev_enumerate *udev_enumerate,
  //                                        const char *subsystem);
  udev_enumerate_add_match_subsystem: { parameters: [ENUMERATE, CSTR], result: "i32" },
  // int udev_enumerate_scan_devices(struct udev_enumerate *udev_enumerate);
  udev_enumerate_scan_devices: { parameters: [ENUMERATE], result: "i32" },
  // struct udev_list_entry *udev_enumerate_get_list_entry(struct udev_enumerate *udev_enumerate);
  udev_enumerate_get_list_entry: { parameters: [ENUMERATE], result: ENTRY },
  // struct udev_enumerate *udev_enumerate_unref(struct udev_enumerate *udev_enumerate);
  udev_enumerate_unref: { parameters: [ENUMERATE], result: ENUMERATE },
} as const satisfies Deno.ForeignLibraryInterface;

/** Opens libudev with the tests' table; the caller closes it. */
export function openLibudevExtra(): Deno.DynamicLibrary<typeof LIBUDEV_EXTRA_SYMBOLS> {
  return openLibrary("libudev", ["libudev.so.1"], LIBUDEV_EXTRA_SYMBOLS);
}
