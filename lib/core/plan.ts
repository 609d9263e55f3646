/**
 * The reconcile decision (docs/design.md#what-stacd-connects-to) as a pure function: from the
 * desired set, the controllers stacd manages and the kernel's connections to what
 * to add, update, dispose of, audit, and which connected controllers lost
 * their device. Level-based: it looks at state, not at events, so a missed
 * or repeated event is harmless.
 */
import type { DisconnectScope, DisconnectTrtype } from "../config/stacd_conf.ts";
import type { DesiredController } from "./desired_set.ts";
import { isIoController, type KernelController } from "./kernel_controller.ts";
import type { ManagedOrigin } from "./managed_controller.ts";

/** What the plan needs to know of a controller stacd manages. */
export interface ManagedView {
  key: string;
  origin: ManagedOrigin;
  transport: string;
  device: string | undefined;
  /** Whether it holds its device (a connect in flight has none yet). */
  connected: boolean;
  /** Excluded by the configuration: exclusion wins even while stafd's answer is unknown. */
  excluded?: boolean;
  /**
   * Whether this kernel connection is this controller
   * (docs/design.md#matching-a-kernel-connection).
   */
  matches(kernel: KernelController): boolean;
}

export interface Policy {
  scope: DisconnectScope;
  trtypes: readonly DisconnectTrtype[];
  /** False while stafd's answer is unknown: discovered controllers are then kept. */
  discoveredKnown: boolean;
  /** NVMe-oF boot connections listed by the firmware (NBFT): the audit disconnects nothing. */
  bootConnections: boolean;
}

export interface Plan {
  /** New members of the desired set. */
  add: DesiredController[];
  /** Members already managed, with their (possibly new) spec. */
  update: DesiredController[];
  /** Managed controllers that left the set; `disconnect` per disconnect-scope. */
  dispose: { key: string; disconnect: boolean }[];
  /** Kernel connections nobody manages that the audit adopts; `disconnect` when not wanted. */
  audit: { kernel: KernelController; disconnect: boolean }[];
  /**
   * Connected controllers whose device the kernel no longer has as theirs:
   * removed (the udev event may be lost, or came before their connect
   * returned), or the name now belongs to another connection.
   */
  vanished: string[];
}

/** Whether leaving the desired set disconnects a controller of `transport`. */
export function disconnectsOnRemoval(policy: Policy, transport: string): boolean {
  switch (policy.scope) {
    case "only-stas-connections":
      return true;
    case "no-disconnect":
      return false;
    case "all-connections-matching-disconnect-trtypes":
      return (policy.trtypes as readonly string[]).includes(transport);
  }
}

export function plan(
  desired: ReadonlyMap<string, DesiredController>,
  managed: readonly ManagedView[],
  kernel: readonly KernelController[],
  policy: Policy,
  matchesDesired: (d: DesiredController, k: KernelController) => boolean,
): Plan {
  const result: Plan = { add: [], update: [], dispose: [], audit: [], vanished: [] };
  const managedKeys = new Set(managed.map((m) => m.key));
  const byDevice = new Map(kernel.map((k) => [k.device, k]));
  for (const m of managed) {
    if (!m.connected || m.device === undefined) continue;
    const k = byDevice.get(m.device);
    if (!k || !m.matches(k)) result.vanished.push(m.key);
  }

  for (const d of desired.values()) {
    (managedKeys.has(d.key) ? result.update : result.add).push(d);
  }

  // "No answer is not an empty answer": while stafd's answer is unknown,
  // whatever came from discovery stays.
  for (const m of managed) {
    if (desired.has(m.key)) continue;
    if (m.origin === "discovered" && !policy.discoveredKnown && !m.excluded) continue;
    if (m.origin === "audited" && !auditMayDisconnect(policy)) continue;
    // stacd did not make an audited connection: only the audit's own scope
    // may take it down (the scope may have changed since it was adopted).
    const auditScope = policy.scope === "all-connections-matching-disconnect-trtypes";
    const disconnect = (m.origin !== "audited" || auditScope) &&
      disconnectsOnRemoval(policy, m.transport);
    result.dispose.push({ key: m.key, disconnect });
  }

  if (policy.scope === "all-connections-matching-disconnect-trtypes") {
    const desiredList = [...desired.values()];
    // Most connections are managed ones, found by device name in O(1); only the
    // others pay for the match rules against every managed and desired controller.
    const vanished = new Set(result.vanished);
    const managedDevices = new Set(
      managed.filter((m) => !vanished.has(m.key)).map((m) => m.device),
    );
    for (const k of kernel) {
      if (!isIoController(k) || !(policy.trtypes as readonly string[]).includes(k.transport)) {
        continue;
      }
      if (/^(deleting|dead)/.test(k.state)) continue;
      if (managedDevices.has(k.device) || managed.some((m) => m.matches(k))) continue;
      if (desiredList.some((d) => matchesDesired(d, k))) continue;
      result.audit.push({ kernel: k, disconnect: auditMayDisconnect(policy) });
    }
  }
  return result;
}

/** The audit disconnects only when the whole desired set is known and nothing was booted from. */
function auditMayDisconnect(policy: Policy): boolean {
  return policy.discoveredKnown && !policy.bootConnections;
}
