/**
 * A writer for the cpio "newc" format the kernel unpacks as an initramfs.
 * Written here rather than calling cpio(1) so that device nodes (the initramfs
 * needs /dev/console before devtmpfs is mounted) can be made without root or
 * mknod, and so that the image depends only on its inputs (no host mtimes).
 */

/** One archive member; directories and device nodes have no data. */
export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "chardev"; path: string; major: number; minor: number; mode?: number };

const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000, chardev: 0o020000 };
const DEFAULT_MODE = { dir: 0o755, file: 0o644, symlink: 0o777, chardev: 0o600 };

/** Serialises `entries` (parents before children) followed by the trailer. */
export function cpioNewc(entries: readonly CpioEntry[]): Uint8Array<ArrayBuffer> {
  const text = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const push = (bytes: Uint8Array) => {
    chunks.push(bytes);
    size += bytes.length;
    const pad = (4 - size % 4) % 4; // header+name and data are each padded to 4 bytes
    if (pad) push(new Uint8Array(pad));
  };
  const member = (
    name: string,
    mode: number,
    data: Uint8Array,
    ino: number,
    rdev: [number, number] = [0, 0],
  ) => {
    const hex = (n: number) => n.toString(16).padStart(8, "0");
    const nameBytes = text.encode(`${name}\0`);
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    const fields = [
      ino,
      mode,
      0,
      0,
      1,
      0,
      data.length,
      0,
      0,
      rdev[0],
      rdev[1],
      nameBytes.length,
      0,
    ];
    push(new Uint8Array([...text.encode(`070701${fields.map(hex).join("")}`), ...nameBytes]));
    if (data.length) push(data);
  };
  entries.forEach((e, i) => {
    const name = e.path.replace(/^\/+/, "");
    const perm = "mode" in e && e.mode !== undefined ? e.mode : DEFAULT_MODE[e.kind];
    const mode = TYPE_BITS[e.kind] | perm;
    if (e.kind === "file") member(name, mode, e.data, i + 1);
    else if (e.kind === "symlink") member(name, mode, text.encode(e.target), i + 1);
    else if (e.kind === "chardev") member(name, mode, new Uint8Array(), i + 1, [e.major, e.minor]);
    else member(name, mode, new Uint8Array(), i + 1);
  });
  member("TRAILER!!!", 0, new Uint8Array(), 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
