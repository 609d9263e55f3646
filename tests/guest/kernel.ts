/**
 * Chooses the kernel the guest boots and the image QEMU loads. Debian ships an
 * xz-compressed bzImage, which takes about 3 s to decompress under TCG at every
 * boot; its kernel also has a PVH entry point, so QEMU can load the
 * uncompressed ELF directly. That ELF is extracted once and cached.
 */
import { existsSync } from "node:fs";
import { cacheDir } from "./host.ts";

/** A kernel the guest can boot. */
export interface Kernel {
  /** The version its modules are installed under (BASE/lib/modules/VERSION). */
  version: string;
  /** The distribution's vmlinuz-VERSION. */
  bzImage: string;
  /** Its build configuration (config-VERSION). */
  config: string;
  /**
   * The folder holding lib/modules/VERSION: "/" for the host's installed
   * kernels, the unpacked package's usr/ for others (modinfo -b, depmod -b).
   */
  moduleBase: string;
}

/**
 * Picks the kernel to boot: `$GUEST_KERNEL` if set, else the newest
 * /boot/vmlinuz-* that has modules installed (the host's running kernel may
 * be another one without modules, e.g. a microVM kernel).
 */
export function pickKernel(version = Deno.env.get("GUEST_KERNEL")): Kernel {
  const usable = (v: string) =>
    existsSync(`/lib/modules/${v}/modules.dep`) && existsSync(`/boot/vmlinuz-${v}`);
  if (version) {
    if (!usable(version)) {
      throw new Error(`Kernel "${version}" lacks /boot/vmlinuz-${version} or its modules`);
    }
    return hostKernel(version);
  }
  const versions = [...Deno.readDirSync("/boot")]
    .map((e) => e.name.match(/^vmlinuz-(.+)$/)?.[1])
    .filter((v): v is string => v !== undefined && usable(v))
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const newest = versions.at(-1);
  if (!newest) throw new Error("No /boot/vmlinuz-* with modules: run tests/guest/setup.ts");
  return hostKernel(newest);
}

function hostKernel(version: string): Kernel {
  return {
    version,
    bzImage: `/boot/vmlinuz-${version}`,
    config: `/boot/config-${version}`,
    moduleBase: "/",
  };
}

/** Compressed payloads a bzImage may carry, by magic number, with the tool that unpacks them. */
const PAYLOADS = [
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], args: ["xz", "-dc", "--single-stream"] },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], args: ["zstd", "-dc"] },
  { magic: [0x1f, 0x8b, 0x08], args: ["gzip", "-dc"] },
];

/**
 * Returns the fastest image to boot `kernel` with: the cached uncompressed
 * ELF when the kernel has a PVH entry point and it could be extracted, else
 * the bzImage.
 */
export async function bootImage(kernel: Kernel): Promise<string> {
  const elf = `${cacheDir}/vmlinux-${kernel.version}`;
  if (existsSync(elf)) return elf;
  const config = await Deno.readTextFile(kernel.config).catch(() => "");
  if (!/^CONFIG_PVH=y$/m.test(config)) return kernel.bzImage;
  const image = await Deno.readFile(kernel.bzImage);
  for (const { magic, args } of PAYLOADS) {
    const at = indexOf(image, magic);
    if (at < 0) continue;
    const stdout = await decompress(args, image.subarray(at));
    if (indexOf(stdout.subarray(0, 4), [0x7f, 0x45, 0x4c, 0x46]) !== 0) continue;
    await Deno.mkdir(cacheDir, { recursive: true });
    const tmp = `${elf}.${Deno.pid}.tmp`;
    await Deno.writeFile(tmp, stdout);
    await Deno.rename(tmp, elf); // atomic: parallel guests may extract at once
    return elf;
  }
  return kernel.bzImage;
}

/** Pipes `data` through a decompressor; empty when the tool is missing or fails outright. */
async function decompress(args: string[], data: Uint8Array): Promise<Uint8Array> {
  const [tool, ...flags] = args as [string, ...string[]];
  try {
    const child = new Deno.Command(tool, {
      args: flags,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const writer = child.stdin.getWriter();
    // The payload is followed by trailing data; decompressors complain but
    // still write the whole kernel, so the caller judges the output by its magic.
    writer.write(data).then(() => writer.close()).catch(() => {});
    return (await child.output()).stdout;
  } catch {
    return new Uint8Array();
  }
}

function indexOf(haystack: Uint8Array, needle: number[]): number {
  const first = needle[0];
  for (let i = haystack.indexOf(first ?? 0); i >= 0; i = haystack.indexOf(first ?? 0, i + 1)) {
    if (needle.every((b, j) => haystack[i + j] === b)) return i;
  }
  return -1;
}
