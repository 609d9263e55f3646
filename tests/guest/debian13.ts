/**
 * Debian 13 (trixie) for the test bed, fetched from the Debian archive the
 * host's apt already uses, without touching the system's apt configuration
 * (apt runs with a sources list, lists and cache of its own): the 6.12
 * kernel (package unpacked, modules indexed with depmod), libnvme-dev's
 * headers (for the struct layout test), and a debootstrapped root with
 * libnvme 1.13, nvme-cli, nvme-stas, udev and dbus. Everything lives under
 * .cache/guest/debian13/, is built once and reused; a stamp written last
 * marks each piece complete, so an interrupted build is redone, not used.
 *
 * Usage: deno run -A tests/guest/debian13.ts   (builds what is missing, prints where)
 */
import { existsSync } from "node:fs";
import { cacheDir, checkoutDir, type CommandResult } from "./host.ts";
import type { Kernel } from "./kernel.ts";
import { ensureHostPackages } from "./setup.ts";

const SUITE = "trixie";
export const DEBIAN13_DIR = `${cacheDir}/debian13`;
const APT_DIR = `${DEBIAN13_DIR}/apt`;

/** Host tools the builds below need, beyond the bed's usual ones. */
export const DEBIAN13_HOST_PACKAGES: readonly string[] = [
  "debootstrap",
  "debian-archive-keyring",
  "zstd", // the 6.12 bzImage's payload, unpacked for a fast boot
  "xz-utils", // its modules, unpacked for busybox insmod
  "kmod",
];

/**
 * What the guest root holds besides debootstrap's minbase: the NVMe
 * userspace the tests drive (libnvme 1.13 through nvme-stas's dependencies),
 * the tools prepare.sh calls, udev and dbus for the daemon tests, what the
 * unit-sandbox test uses (systemd-analyze, strace, setpriv, the syscall
 * numbers of linux-libc-dev), upstream's own nvme-stas (python3) to
 * compare with, and podman with crun to run stacd's container image.
 */
export const ROOT_PACKAGES: readonly string[] = [
  "libnvme1t64",
  "nvme-cli",
  "nvme-stas",
  "kmod",
  "iproute2",
  "mount",
  "util-linux",
  "procps",
  "dbus",
  "udev",
  "systemd",
  "strace",
  "linux-libc-dev",
  "podman",
  "crun",
];

/** Log lines of the slow steps (downloads, debootstrap); defaults to stderr. */
export type Log = (line: string) => void;
const stderrLog: Log = (line) => console.error(line);

/**
 * The archive the host installs from (the first deb822 or one-line source
 * serving a Debian suite other than *-security), or `$GUEST_DEBIAN_MIRROR`.
 */
export function archiveUri(): string {
  const override = Deno.env.get("GUEST_DEBIAN_MIRROR");
  if (override) return override;
  const candidates: string[] = [];
  for (const file of listFiles("/etc/apt/sources.list.d").filter((f) => f.endsWith(".sources"))) {
    for (const stanza of readOr(file).split(/\n\s*\n/)) {
      const field = (name: string) =>
        stanza.match(new RegExp(`^${name}:\\s*(.+)$`, "mi"))?.[1]?.trim().split(/\s+/) ?? [];
      if (!field("Types").includes("deb")) continue;
      if (field("Suites").some((s) => !s.endsWith("-security"))) candidates.push(...field("URIs"));
    }
  }
  for (const line of readOr("/etc/apt/sources.list").split("\n")) {
    const m = line.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/);
    if (m && !m[2]!.endsWith("-security")) candidates.push(m[1]!);
  }
  return candidates.find((u) => /debian\/?$/.test(u)) ?? candidates[0] ??
    "http://deb.debian.org/debian";
}

/**
 * The 6.12 kernel of trixie, unpacked into the cache (downloaded the first
 * time; later calls use the cached one without touching the network).
 */
export async function debian13Kernel(log: Log = stderrLog): Promise<Kernel> {
  const cached = cachedKernel();
  if (cached) return cached;
  return await withLock(async () => {
    const again = cachedKernel();
    if (again) return again;
    await ensureHostPackages(log, DEBIAN13_HOST_PACKAGES);
    const pkg = await kernelPackage();
    const version = pkg.replace(/^linux-image-/, "");
    const dir = `${DEBIAN13_DIR}/kernel-${version}`;
    log(`debian13: fetching ${pkg}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await unpackPackage(`${pkg}/${SUITE}`, dir);
    await tool("depmod", ["-b", `${dir}/usr`, version]);
    await Deno.writeTextFile(`${dir}/.complete`, `${pkg}\n`);
    return kernelAt(dir, version);
  });
}

/**
 * Include folder holding libnvme-dev `version`'s headers (e.g. "1.13"),
 * from trixie's package, fetched the first time.
 */
export async function libnvmeHeaders(version: string, log: Log = stderrLog): Promise<string> {
  const dir = `${DEBIAN13_DIR}/libnvme-dev-${version}`;
  const include = `${dir}/usr/include`;
  if (existsSync(`${dir}/.complete`)) return include;
  return await withLock(async () => {
    if (existsSync(`${dir}/.complete`)) return include;
    // Only apt-get and dpkg-deb: no extra host packages for a unit test.
    log(`debian13: fetching libnvme-dev ${version} headers`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    const got = await unpackPackage(`libnvme-dev/${SUITE}`, dir);
    if (!got.version.startsWith(`${version}-`) && got.version !== version) {
      throw new Error(`${SUITE} has libnvme-dev ${got.version}, not ${version}`);
    }
    await Deno.writeTextFile(`${dir}/.complete`, `${got.version}\n`);
    return include;
  });
}

/** The debootstrapped trixie root (host path), built the first time (about a minute). */
export async function debian13Root(log: Log = stderrLog): Promise<string> {
  const root = `${DEBIAN13_DIR}/root`;
  const stamp = `${DEBIAN13_DIR}/root.json`;
  const wanted = JSON.stringify({ suite: SUITE, packages: ROOT_PACKAGES });
  if (readOr(stamp) === wanted) return root;
  return await withLock(async () => {
    if (readOr(stamp) === wanted) return root;
    await ensureHostPackages(log, DEBIAN13_HOST_PACKAGES);
    await Deno.remove(stamp).catch(() => {});
    const building = `${root}.new`;
    await Deno.remove(building, { recursive: true }).catch(() => {});
    const uri = archiveUri();
    log(`debian13: debootstrap ${SUITE} from ${uri} into ${root} (about a minute)`);
    const started = performance.now();
    const r = await run("debootstrap", [
      "--variant=minbase",
      `--include=${ROOT_PACKAGES.join(",")}`,
      SUITE,
      building,
      uri,
    ]);
    if (r.code !== 0) {
      throw new Error(`debootstrap failed (exit ${r.code}):\n${tail(r.stdout + r.stderr)}`);
    }
    await finishRoot(building);
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await Deno.rename(building, root);
    await Deno.writeTextFile(stamp, wanted);
    log(`debian13: root ready in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return root;
  });
}

/**
 * Makes the tree fit to be the guest's read-only root: a host identity of
 * its own whose host ID is the UUID in its NQN (6.12 checks that the two
 * belong together), the mount point of the kernel's modules, and no apt
 * caches.
 */
async function finishRoot(root: string): Promise<void> {
  const uuid = crypto.randomUUID();
  await Deno.mkdir(`${root}/etc/nvme`, { recursive: true });
  await Deno.writeTextFile(`${root}/etc/nvme/hostnqn`, `nqn.2014-08.org.nvmexpress:uuid:${uuid}\n`);
  await Deno.writeTextFile(`${root}/etc/nvme/hostid`, `${uuid}\n`);
  await Deno.mkdir(`${root}/usr/lib/modules`, { recursive: true });
  await Deno.mkdir(`${root}/etc/stas`, { recursive: true });
  await run("chroot", [root, "apt-get", "clean"]);
  for (const e of listFiles(`${root}/var/lib/apt/lists`)) {
    if (!e.endsWith("/lock") && !e.endsWith("/partial")) await Deno.remove(e).catch(() => {});
  }
}

/**
 * Host folders the guest must see inside the trixie root: the checkout (at
 * its own path, as on Debian 12) and the kernel's modules over /lib/modules.
 * Creates their mount points in the root.
 */
export async function debian13Binds(root: string, kernel: Kernel): Promise<[string, string][]> {
  await Deno.mkdir(`${root}${checkoutDir}`, { recursive: true });
  const binds: [string, string][] = [
    [checkoutDir, checkoutDir],
    [`${kernel.moduleBase}/lib/modules`, "/usr/lib/modules"],
  ];
  // A cache shared by worktrees lies outside the checkout: the run folder is in it.
  if (!cacheDir.startsWith(`${checkoutDir}/`)) {
    await Deno.mkdir(`${root}${cacheDir}`, { recursive: true });
    binds.push([cacheDir, cacheDir]);
  }
  return binds;
}

function cachedKernel(): Kernel | undefined {
  const versions = listFiles(DEBIAN13_DIR)
    .map((path) => path.match(/\/kernel-(.+)$/)?.[1])
    .filter((v): v is string =>
      v !== undefined && existsSync(`${DEBIAN13_DIR}/kernel-${v}/.complete`)
    )
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const newest = versions.at(-1);
  return newest === undefined ? undefined : kernelAt(`${DEBIAN13_DIR}/kernel-${newest}`, newest);
}

function kernelAt(dir: string, version: string): Kernel {
  return {
    version,
    bzImage: `${dir}/boot/vmlinuz-${version}`,
    config: `${dir}/boot/config-${version}`,
    moduleBase: `${dir}/usr`,
  };
}

/** The versioned image package trixie's linux-image-amd64 points at. */
async function kernelPackage(): Promise<string> {
  const out = await apt("apt-cache", ["depends", `linux-image-amd64/${SUITE}`]);
  const pkg = out.match(/Depends:\s*(linux-image-6\.\S+-amd64)/)?.[1];
  if (!pkg) throw new Error(`No kernel package behind ${SUITE}'s linux-image-amd64:\n${out}`);
  return pkg;
}

/** Downloads `spec` ("name/suite") and unpacks it into `dir`; returns its version. */
async function unpackPackage(spec: string, dir: string): Promise<{ version: string }> {
  const debs = await Deno.makeTempDir({ dir: await ensureDir(DEBIAN13_DIR), prefix: "debs-" });
  try {
    await apt("apt-get", ["download", spec], debs);
    const [deb] = listFiles(debs).filter((f) => f.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${spec} left no .deb`);
    await ensureDir(dir);
    await tool("dpkg-deb", ["-x", deb, dir]);
    return { version: (await tool("dpkg-deb", ["-f", deb, "Version"])).trim() };
  } finally {
    await Deno.remove(debs, { recursive: true });
  }
}

/**
 * Runs apt-get or apt-cache against trixie only, with lists and caches of
 * its own; the lists are fetched once and refreshed when a lookup fails.
 */
async function apt(cmd: "apt-get" | "apt-cache", args: string[], cwd?: string): Promise<string> {
  await ensureDir(`${APT_DIR}/lists/partial`);
  await ensureDir(`${APT_DIR}/cache/archives/partial`);
  await Deno.writeTextFile(
    `${APT_DIR}/sources.list`,
    `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${archiveUri()} ${SUITE} main\n`,
  );
  const options = [
    ["Dir::Etc::sourcelist", `${APT_DIR}/sources.list`],
    ["Dir::Etc::sourceparts", "/dev/null"],
    ["Dir::State::Lists", `${APT_DIR}/lists`],
    ["Dir::Cache", `${APT_DIR}/cache`],
    ["APT::Sandbox::User", "root"],
  ].flatMap(([k, v]) => ["-o", `${k}=${v}`]);
  const update = async () => {
    const r = await run("apt-get", ["-q", ...options, "update"]);
    if (r.code !== 0) throw new Error(`apt-get update (${SUITE}) failed:\n${tail(r.stderr)}`);
  };
  if (!listFiles(`${APT_DIR}/lists`).some((f) => f.endsWith("_Packages"))) await update();
  let r = await run(cmd, ["-q", ...options, ...args], cwd);
  if (r.code !== 0) {
    await update(); // stale lists: the archive moved on
    r = await run(cmd, ["-q", ...options, ...args], cwd);
  }
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${tail(r.stderr)}`);
  return r.stdout;
}

/**
 * Runs `fn` holding the debian13 cache's lock, so that guests and unit tests
 * started side by side build each piece once.
 */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  await ensureDir(DEBIAN13_DIR);
  using lock = await Deno.open(`${DEBIAN13_DIR}/.lock`, { write: true, create: true });
  await lock.lock(true);
  try {
    return await fn();
  } finally {
    await lock.unlock();
  }
}

async function run(cmd: string, args: string[], cwd?: string): Promise<CommandResult> {
  const env = { DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" };
  const out = await new Deno.Command(cmd, { args, cwd, env, stdin: "null" }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

async function tool(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${tail(r.stderr)}`);
  return r.stdout;
}

function tail(text: string, lines = 20): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}

async function ensureDir(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

function listFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`);
  } catch {
    return [];
  }
}

function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

if (import.meta.main) {
  const kernel = await debian13Kernel();
  console.log(`kernel ${kernel.version}: ${kernel.bzImage}`);
  console.log(`libnvme 1.13 headers: ${await libnvmeHeaders("1.13")}`);
  console.log(`root: ${await debian13Root()}`);
}
