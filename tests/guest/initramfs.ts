/**
 * Builds the guest's initramfs: a static busybox, the kernel's virtio and 9p
 * modules (and overlay, for a guest that boots systemd), and init.sh as
 * /init. The guest gets everything else from the host's root over 9p, so
 * the image stays under 2 MB and builds in a moment; it is still cached,
 * keyed by kernel version and a hash of its inputs.
 *
 * Usage: deno run -A tests/guest/initramfs.ts   (prints the image's path)
 */
import { cacheDir, runOk } from "./host.ts";
import { type CpioEntry, cpioNewc } from "./cpio.ts";
import { type Kernel, pickKernel } from "./kernel.ts";

/** Modules init.sh must load to reach the 9p shares; their dependencies are added. */
const BOOT_MODULES = ["virtio_pci", "9pnet_virtio", "9p"];

/** Loaded too when the guest boots systemd: its writable root is an overlay. */
const SYSTEMD_MODULES = ["overlay"];

/** Busybox applets init.sh calls. */
const APPLETS = [
  ...["sh", "cat", "mount", "mkdir", "insmod", "stty", "chroot", "sync", "poweroff"],
  ...["ln", "rm", "switch_root"], // systemd mode
];

const BUSYBOX = "/bin/busybox";

/** Result of {@linkcode buildInitramfs}. */
export interface Initramfs {
  path: string;
  kernel: Kernel;
  /** False when this call built the image, true when it was already cached. */
  cached: boolean;
}

/** Returns the cached initramfs for `kernel`, building it first if needed. */
export async function buildInitramfs(kernel: Kernel = pickKernel()): Promise<Initramfs> {
  const init = await Deno.readTextFile(new URL("./init.sh", import.meta.url));
  const modules = await resolveModules(kernel, BOOT_MODULES);
  const loaded = new Set(modules.map((m) => m.name));
  const systemdModules = (await resolveModules(kernel, SYSTEMD_MODULES))
    .filter((m) => !loaded.has(m.name));
  const key = await sha256(JSON.stringify([init, modules, systemdModules, APPLETS]));
  const path = `${cacheDir}/initramfs-${kernel.version}-${key.slice(0, 12)}.cpio.gz`;
  if (await exists(path)) return { path, kernel, cached: true };

  const busybox = await Deno.readFile(BUSYBOX);
  // A dynamic busybox would panic the guest with a cryptic "init not found".
  if (new TextDecoder().decode(busybox.subarray(0, 4096)).includes("ld-linux")) {
    throw new Error(`${BUSYBOX} is dynamically linked: install busybox-static`);
  }
  const text = new TextEncoder();
  const entries: CpioEntry[] = [
    ...["bin", "dev", "proc", "sys", "lib", "lib/modules", "host", "newroot", "share"]
      .map((path): CpioEntry => ({ kind: "dir", path })),
    // The kernel opens /dev/console for init's stdio before anything is mounted.
    { kind: "chardev", path: "dev/console", major: 5, minor: 1 },
    { kind: "file", path: "bin/busybox", data: busybox, mode: 0o755 },
    ...APPLETS.map((a): CpioEntry => ({ kind: "symlink", path: `bin/${a}`, target: "busybox" })),
    { kind: "file", path: "init", data: text.encode(init), mode: 0o755 },
    { kind: "file", path: "modules", data: text.encode(modules.map((m) => m.name).join("\n")) },
    {
      kind: "file",
      path: "modules-systemd",
      data: text.encode(systemdModules.map((m) => m.name).join("\n")),
    },
  ];
  for (const m of [...modules, ...systemdModules]) {
    entries.push({
      kind: "file",
      path: `lib/modules/${m.name}.ko`,
      data: await readModule(m.path),
    });
  }
  const gz = new Blob([cpioNewc(entries)]).stream().pipeThrough(new CompressionStream("gzip"));
  const image = new Uint8Array(await new Response(gz).arrayBuffer());
  await Deno.mkdir(cacheDir, { recursive: true });
  // Write then rename: guests started in parallel may build the same image.
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeFile(tmp, image);
  await Deno.rename(tmp, path);
  await pruneImages(kernel.version, path);
  return { path, kernel, cached: false };
}

/** A loadable module file, named as init.sh insmods it. */
interface ModuleFile {
  name: string;
  path: string;
}

/**
 * Orders `names` and their dependencies so each comes after what it needs
 * (busybox insmod does not resolve dependencies). Built-in ones are skipped.
 */
async function resolveModules(kernel: Kernel, names: string[]): Promise<ModuleFile[]> {
  const order: ModuleFile[] = [];
  const seen = new Set<string>();
  const where = ["-b", kernel.moduleBase, "-k", kernel.version];
  const visit = async (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const path = (await runOk("modinfo", [...where, "-n", name])).trim();
    if (path === "(builtin)") return;
    const depends = (await runOk("modinfo", [...where, "-F", "depends", name])).trim();
    for (const dep of depends.split(",").filter(Boolean)) await visit(dep);
    order.push({ name, path });
  };
  for (const name of names) await visit(name);
  return order;
}

/** Reads a module, decompressing it: busybox insmod takes plain .ko files only. */
async function readModule(path: string): Promise<Uint8Array> {
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : undefined;
  if (!tool) return await Deno.readFile(path);
  const out = await new Deno.Command(tool, { args: ["-dc", path], stderr: "inherit" }).output();
  if (!out.success) throw new Error(`Cannot decompress ${path} with ${tool}`);
  return out.stdout;
}

/**
 * Drops images of `version` built from older inputs. Only ones older than ten
 * minutes: a guest starting in parallel may be about to boot one.
 */
async function pruneImages(version: string, keep: string): Promise<void> {
  const stale = Date.now() - 600_000;
  for await (const e of Deno.readDir(cacheDir)) {
    const path = `${cacheDir}/${e.name}`;
    if (path === keep || !e.name.startsWith(`initramfs-${version}-`)) continue;
    try {
      if (((await Deno.stat(path)).mtime?.getTime() ?? 0) < stale) await Deno.remove(path);
    } catch { /* removed meanwhile */ }
  }
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

if (import.meta.main) {
  const { path, kernel, cached } = await buildInitramfs();
  console.log(`${path} (kernel ${kernel.version}, ${cached ? "cached" : "built"})`);
}
