/**
 * The few pointer operations the typed wrappers in lib/ need, kept here so
 * that nothing outside ffi/ touches Deno.UnsafePointer directly.
 */

/** An opaque C handle (nvme_root_t, struct udev *, FILE *, ...). */
export type Handle = Deno.PointerValue;

const encoder = new TextEncoder();

/** A NUL-terminated UTF-8 copy of `s`, or null for an absent value. */
export function cstr(s: string | undefined | null): Uint8Array<ArrayBuffer> | null {
  if (s === undefined || s === null) return null;
  return encoder.encode(s + "\0");
}

/** Reads a `const char *` result; null pointers read as undefined. */
export function readCString(p: Handle): string | undefined {
  return p === null ? undefined : Deno.UnsafePointerView.getCString(p);
}

/** Stores the address of `target` (a C string we own) into a struct field. */
export function storePointer(view: DataView, offset: number, target: Uint8Array | null): void {
  const p = target === null ? null : Deno.UnsafePointer.of(target);
  view.setBigUint64(offset, BigInt(Deno.UnsafePointer.value(p)), true);
}
