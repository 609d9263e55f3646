/**
 * The platforms the guest test bed boots, chosen per run with `$GUEST_PLATFORM`
 * (or run_suite.ts --platform):
 * - debian12 (default): the host's own root and its installed 6.1 kernel,
 *   libnvme 1.3;
 * - debian13: a debootstrapped trixie root with trixie's 6.12 kernel,
 *   libnvme 1.13 and nvme-cli 2.13 (built by debian13.ts on first use).
 */
import { debian13Binds, debian13Kernel, debian13Root, type Log } from "./debian13.ts";
import { type Kernel, pickKernel } from "./kernel.ts";

export const PLATFORMS = ["debian12", "debian13"] as const;
export type PlatformName = typeof PLATFORMS[number];

/** What runInGuest needs to boot one platform. */
export interface Platform {
  name: PlatformName;
  kernel: Kernel;
  /** Host folder that becomes the guest's root ("/" is the host's own). */
  root: string;
  /** Host folders bound into the root: [host path, path in the guest]. */
  binds: [string, string][];
}

/** Validates a platform name; undefined or "" means the default, debian12. */
export function platformName(value: string | undefined): PlatformName {
  if (!value) return "debian12";
  const known = PLATFORMS.find((p) => p === value);
  if (!known) {
    throw new RangeError(`Unknown guest platform "${value}" (known: ${PLATFORMS.join(", ")})`);
  }
  return known;
}

/** The platform `$GUEST_PLATFORM` names (debian12 when unset). */
export function platformFromEnv(): PlatformName {
  return platformName(Deno.env.get("GUEST_PLATFORM"));
}

/** Gets `name` ready to boot, building what is missing (debian13's first use takes a minute or two). */
export async function preparePlatform(name: PlatformName, log?: Log): Promise<Platform> {
  if (name === "debian12") return { name, kernel: pickKernel(), root: "/", binds: [] };
  const kernel = await debian13Kernel(log);
  const root = await debian13Root(log);
  return { name, kernel, root, binds: await debian13Binds(root, kernel) };
}

/**
 * For `ignore:` of a guest test whose subject does not depend on the kernel
 * (the daemon's own rules): it runs on Debian 13 only, which keeps the whole
 * suite within CI's time. Debian 12 keeps the tests of the kernel paths.
 */
export const notOnDebian13 = platformFromEnv() !== "debian13";
