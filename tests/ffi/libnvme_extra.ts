/**
 * The libnvme and libc symbols that only the tests and the stafd stand-in
 * call: binding a kernel controller that exists already and reading its
 * discovery log page. Kept out of stacd's table (ffi/libnvme.ts), where
 * every symbol must resolve when stacd starts.
 */
import { LIBNVME_SONAMES, LIBNVME_SYMBOLS } from "../../ffi/libnvme.ts";
import { openLibrary } from "../../ffi/loader.ts";
import type { Handle } from "../../ffi/pointers.ts";

/** stacd's symbols (to make a root, host and ctrl) and the tests' own. */
export const LIBNVME_EXTRA_SYMBOLS = {
  ...LIBNVME_SYMBOLS,
  // int nvme_init_ctrl(nvme_host_t h, nvme_ctrl_t c, int instance);
  nvme_init_ctrl: { parameters: ["pointer", "pointer", "i32"], result: "i32" },
  // int nvmf_get_discovery_log(nvme_ctrl_t c, struct nvmf_discovery_log **logp, int max_retries);
  // Issues admin commands to a remote discovery controller: blocks.
  nvmf_get_discovery_log: {
    parameters: ["pointer", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

export const LIBC_EXTRA_SYMBOLS = {
  // void free(void *ptr);  (the log page nvmf_get_discovery_log allocated)
  free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libraries = {
  nvme: Deno.DynamicLibrary<typeof LIBNVME_EXTRA_SYMBOLS>["symbols"];
  c: Deno.DynamicLibrary<typeof LIBC_EXTRA_SYMBOLS>["symbols"];
};
let opened: Libraries | undefined;

/** Both tables, opened on first use and kept for the life of the process. */
export function extraLibraries(): Libraries {
  opened ??= {
    nvme: openLibrary("libnvme", LIBNVME_SONAMES, LIBNVME_EXTRA_SYMBOLS).symbols,
    c: openLibrary("libc", ["libc.so.6"], LIBC_EXTRA_SYMBOLS).symbols,
  };
  return opened;
}

/** An out-parameter slot for a `T **` argument. */
export class PointerSlot {
  readonly buffer = new BigUint64Array(1);
  get value(): Handle {
    return Deno.UnsafePointer.create(this.buffer[0] ?? 0n);
  }
}

/** Copies `length` bytes starting at `p`. */
export function readBytes(p: Handle, length: number): Uint8Array {
  if (p === null) throw new TypeError("readBytes() of a null pointer");
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, length).slice(0));
}

/** Reads a little-endian u64 at `offset` of `p` (e.g. a size_t out-param). */
export function readU64(p: Handle, offset = 0): bigint {
  if (p === null) throw new TypeError("readU64() of a null pointer");
  return new Deno.UnsafePointerView(p).getBigUint64(offset);
}
