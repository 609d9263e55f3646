/**
 * Makes sure the host has what the guest test bed needs: QEMU, a Debian kernel
 * with its modules, a static busybox for the initramfs, and the NVMe userspace
 * and tools the guest runs from the host's (shared) root.
 *
 * Usage: deno run -A tests/guest/setup.ts
 */
import { run, runShown } from "./host.ts";

/**
 * Debian packages the tests rely on; the guest uses the host's copies.
 * libnvme-dev and gcc let the unit tests check struct layouts against the
 * headers; dbus provides the private bus of the D-Bus tests.
 */
export const HOST_PACKAGES: readonly string[] = [
  "qemu-system-x86",
  "libnvme-dev",
  "gcc",
  "libc6-dev",
  "libudev1",
  "dbus",
  "systemd",
  "python3-dasbus",
  "linux-image-amd64",
  "busybox-static",
  "libnvme1",
  "nvme-cli",
  "udev",
  "kmod",
  "iproute2",
];

/** Returns which of `packages` dpkg does not report as installed. */
export async function missingPackages(packages: readonly string[]): Promise<string[]> {
  // One query for all: unknown packages make dpkg-query exit 1 but still list
  // the known ones, so the exit code is ignored and absence means missing.
  const r = await run("dpkg-query", ["-W", "-f=${Package} ${db:Status-Abbrev}\n", ...packages]);
  const installed = new Set(
    r.stdout.split("\n")
      .map((line) => line.split(" "))
      .filter(([, status]) => status?.startsWith("ii"))
      .map(([name]) => name),
  );
  return packages.filter((p) => !installed.has(p));
}

/**
 * Installs whatever of `packages` (default {@linkcode HOST_PACKAGES}) is
 * missing and reports what it did through `log`. Touches apt only when
 * something is missing.
 */
export async function ensureHostPackages(
  log: (line: string) => void = console.log,
  packages: readonly string[] = HOST_PACKAGES,
): Promise<{ installed: string[] }> {
  const missing = await missingPackages(packages);
  if (missing.length === 0) {
    if (packages === HOST_PACKAGES) log(`setup: all ${packages.length} host packages present`);
    return { installed: [] };
  }
  if (Deno.uid() !== 0) {
    throw new Error(`setup: missing packages ${missing.join(" ")}, and installing needs root`);
  }
  log(`setup: installing ${missing.join(" ")}`);
  Deno.env.set("DEBIAN_FRONTEND", "noninteractive");
  await runShown("apt-get", ["update"]);
  await runShown("apt-get", ["install", "-y", "--no-install-recommends", ...missing]);
  const still = await missingPackages(missing);
  if (still.length > 0) throw new Error(`setup: still missing after install: ${still.join(" ")}`);
  log(`setup: installed ${missing.join(" ")}`);
  return { installed: missing };
}

if (import.meta.main) {
  try {
    await ensureHostPackages();
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(1);
  }
}
