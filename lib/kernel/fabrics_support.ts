/**
 * What the running kernel's fabrics driver can take (docs/design.md#kernel-support: host-iface
 * and the DH-HMAC-CHAP keys are passed only where the kernel supports them,
 * and a controller key it cannot take keeps that controller unconnected).
 *
 * /dev/nvme-fabrics lists the option names the driver parses (kernel >=
 * 5.17), but for DH-HMAC-CHAP that list is not enough: Debian 12's 6.1 lists
 * `dhchap_secret` and `dhchap_ctrl_secret` although it is built without
 * NVME_AUTH, so it parses a key and then cannot authenticate with it. The
 * authentication code is the nvme-auth module (drivers/nvme/common), which
 * nvme-core needs when host authentication is built in: it is loaded
 * (/sys/module/nvme_auth) or built in (modules.builtin) exactly then.
 */
import type { ConnectRequest } from "../core/connect_request.ts";
import { FABRICS_DEVICE } from "./fabrics_device.ts";

/** The kernel's fabrics capabilities that decide what a connect may carry. */
export interface FabricsSupport {
  /** Option names /dev/nvme-fabrics lists; undefined when it lists none (older kernel). */
  options?: ReadonlySet<string>;
  /** Whether the kernel has NVMe in-band authentication (DH-HMAC-CHAP) built. */
  authentication: boolean;
}

/** Where {@linkcode readFabricsSupport} looks; tests point these at a fake tree. */
export interface FabricsSupportPaths {
  fabricsDevice?: string;
  /** /sys/module */
  sysModule?: string;
  /** /lib/modules/<running release> */
  modulesDir?: string;
}

/**
 * Reads the running kernel's {@linkcode FabricsSupport}. Never throws.
 * Asynchronous on purpose: reading /dev/nvme-fabrics takes the kernel's
 * fabrics mutex, which every connect in progress (stacd's, stafd's) holds
 * for its whole length.
 */
export async function readFabricsSupport(paths: FabricsSupportPaths = {}): Promise<FabricsSupport> {
  const sysModule = paths.sysModule ?? "/sys/module";
  const modulesDir = paths.modulesDir ?? `/lib/modules/${Deno.osRelease()}`;
  // Side by side: each read that follows another waits for the event loop to
  // come round, which at start-up is busy with the first pass.
  const [options, loaded, builtinList] = await Promise.all([
    readOptionNames(paths.fabricsDevice ?? FABRICS_DEVICE),
    Deno.stat(`${sysModule}/nvme_auth`).then(() => true, () => false),
    Deno.readTextFile(`${modulesDir}/modules.builtin`).catch(() => ""),
  ]);
  return { options, authentication: loaded || /(^|\/)nvme-auth\.ko$/m.test(builtinList) };
}

/** A kernel that lists no option and cannot authenticate: it takes the least. */
const LEAST_CAPABLE: FabricsSupport = { options: new Set(), authentication: false };

/**
 * Whether `request` carries a setting some kernels cannot take; the others
 * need not wait for {@linkcode readFabricsSupport}. Derived from
 * {@linkcode supportedRequest}, so the two cannot disagree on which settings those are.
 */
export function dependsOnSupport(request: ConnectRequest): boolean {
  const { dropped, refused } = supportedRequest(request, LEAST_CAPABLE);
  return dropped.length > 0 || refused !== undefined;
}

/** Parses what reading /dev/nvme-fabrics returns: `instance=-1,...,hostnqn=%s,...,tls`. */
export function parseOptionNames(text: string): ReadonlySet<string> | undefined {
  const names = text.trim().split(",").map((kv) => kv.split("=")[0]?.trim() ?? "").filter(Boolean);
  return names.length > 0 ? new Set(names) : undefined;
}

/** A connect request with what the kernel cannot take removed, and the config names of what was. */
export interface SupportedRequest {
  request: ConnectRequest;
  /** `dhchap-secret`, `host-iface`: only those that were set. */
  dropped: string[];
  /**
   * `dhchap-ctrl-secret` when it is set and the kernel cannot take it: the
   * request must not be made at all (fail closed), since leaving the key out
   * would connect without authenticating the controller.
   */
  refused?: string;
}

/**
 * Removes from `request` the settings `support` says the kernel cannot
 * take: the host key (`dhchap_secret`) without kernel authentication or
 * when the driver does not list it (the target decides whether it needs
 * one), and host-iface when the driver lists options but not `host_iface`.
 * A controller key (`dhchap_ctrl_secret`) the kernel cannot take is not
 * dropped but reported in `refused`. Pure; `request` itself is not changed.
 */
export function supportedRequest(
  request: ConnectRequest,
  support: FabricsSupport,
): SupportedRequest {
  const lists = (name: string) => support.options === undefined || support.options.has(name);
  const dropped: string[] = [];
  const host = { ...request.host };
  const target = { ...request.target };
  const options = { ...request.options };
  if (host.dhchapKey && !(support.authentication && lists("dhchap_secret"))) {
    delete host.dhchapKey;
    dropped.push("dhchap-secret");
  }
  const refused = options.dhchapCtrlKey &&
      !(support.authentication && lists("dhchap_ctrl_secret"))
    ? "dhchap-ctrl-secret"
    : undefined;
  if (target.hostIface && !lists("host_iface")) {
    delete target.hostIface;
    dropped.push("host-iface");
  }
  const result = dropped.length === 0 ? { request, dropped } : {
    request: { ...request, host, target, options },
    dropped,
  };
  return refused === undefined ? result : { ...result, refused };
}

async function readOptionNames(device: string): Promise<ReadonlySet<string> | undefined> {
  try {
    return parseOptionNames(await Deno.readTextFile(device));
  } catch {
    return undefined; // missing, or a kernel older than 5.17 (not readable)
  }
}
