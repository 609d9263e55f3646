/**
 * Fakes for the unit tests of the controller and the reconciler: a kernel
 * that keeps its connections in memory and does what the test scripts, a
 * last-known store in memory, and builders for configs and log pages.
 * Nothing here touches the real kernel, the clock or the file system.
 */
import {
  DEFAULT_STACD_CONF,
  parseStacdConfig,
  type StacdConfig,
} from "../../lib/config/stacd_conf.ts";
import type { SysConfig } from "../../lib/config/sys_conf.ts";
import { ConnectError, type Kernel } from "../../lib/core/kernel_api.ts";
import type { DiscoveredPage } from "../../lib/core/desired_set.ts";
import type { DiscoveryLogEntry } from "../../lib/core/discovery_log.ts";
import { type ConnectRequest, DISCOVERY_NQN } from "../../lib/core/connect_request.ts";
import type { DiscoveryKernel } from "../../lib/finder/finder.ts";
import { encodeDiscoveryPage } from "../discovery_page_bytes.ts";
import type { KernelController } from "../../lib/core/kernel_controller.ts";
import type { LastKnownStore } from "../../lib/daemon/last_known_store.ts";

export const HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
export const HOSTID = "11111111-2222-3333-4444-555555555555";
export const SUBNQN = "nqn.2026-11.io.test:s1";

/** sys.conf of a host without a key. */
export function sysConfig(over: Partial<SysConfig> = {}): SysConfig {
  return { hostNqn: HOSTNQN, hostId: HOSTID, keyFiles: [], ...over };
}

/** stacd.conf from its text, as the daemon reads it; throws on any diagnostic of level error. */
export function stacdConfig(text: string): StacdConfig {
  const { config, diagnostics } = parseStacdConfig(text, DEFAULT_STACD_CONF);
  const errors = diagnostics.filter((d) => d.level === "error");
  if (errors.length > 0) throw new Error(`bad test config: ${errors[0]!.message}`);
  return config;
}

/** A `controller =` line for a tcp I/O controller on `traddr`:4420. */
export function controllerLine(traddr: string, extra = ""): string {
  return `controller = transport=tcp;traddr=${traddr};trsvcid=4420;nqn=${SUBNQN}${extra}`;
}

/** A stacd.conf with `[Controllers]` lines and optional other sections before them. */
export function configText(lines: readonly string[], head = ""): string {
  return `${head}\n[Controllers]\n${lines.join("\n")}\n`;
}

/** A live tcp I/O controller as sysfs shows it. */
export function kernelController(over: Partial<KernelController> = {}): KernelController {
  return {
    device: "nvme0",
    transport: "tcp",
    traddr: "192.168.1.10",
    trsvcid: "4420",
    subsysnqn: SUBNQN,
    hostnqn: HOSTNQN,
    hostid: HOSTID,
    cntrltype: "io",
    dctype: "none",
    state: "live",
    model: "Linux",
    serial: "0123",
    ...over,
  };
}

/** An NVMe subsystem entry of a discovery log page, as stafd sends it. */
export function logEntry(over: Partial<DiscoveryLogEntry> = {}): DiscoveryLogEntry {
  return {
    trtype: "tcp",
    adrfam: "ipv4",
    subtype: "nvme",
    treq: "not specified",
    portid: "1",
    cntlid: "65535",
    asqsz: "32",
    eflags: "0",
    trsvcid: "4420",
    subnqn: SUBNQN,
    traddr: "192.168.1.20",
    ...over,
  };
}

/** One discovery controller's page, read without host-traddr/host-iface. */
export function page(entries: DiscoveryLogEntry[], over: Partial<DiscoveredPage> = {}) {
  return { hostTraddr: "", hostIface: "", hostNqn: HOSTNQN, entries, ...over };
}

/** A promise with its settle functions, for a kernel call the test finishes by hand. */
export class Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;
  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/** How a connect that succeeds ends: "gone" returns a name the kernel has already taken away again. */
export type ConnectOutcome = "ok" | "gone";

/**
 * What a connect does: succeed (see ConnectOutcome), fail with this error,
 * or wait for the test to release it with an outcome (see `hold`).
 */
export type ConnectStep = ConnectOutcome | Error | Deferred<ConnectOutcome | void>;

/** Every kernel call in order, for tests that check what was (not) done. */
export type KernelCall =
  | { op: "list" }
  | { op: "connect"; traddr: string; request: ConnectRequest }
  | { op: "controller"; device: string }
  | { op: "disconnect"; device: string };

/**
 * A kernel with connections in memory. A connect succeeds unless a step was
 * scripted for its traddr (see `script`) or its host NQN / host ID pair
 * differs from a connection's in one of the two (EINVAL, as kernel 6.12
 * refuses it, see `refusesSharedHostId`); a success adds a live I/O
 * controller named after the next free instance, as the kernel does.
 */
export class FakeKernel implements Kernel {
  controllers: KernelController[] = [];
  readonly calls: KernelCall[] = [];
  /** Called when a connect is issued, before it completes. */
  onConnect?: (request: ConnectRequest) => void;
  /** Errors for the next disconnects, in order. */
  readonly disconnectErrors: Error[] = [];
  /** As kernel 6.5+: a pair that differs from a connection's in one of the two is refused. */
  refusesSharedHostId = true;
  readonly #steps = new Map<string, ConnectStep[]>();
  #instance = 0;

  constructor(controllers: KernelController[] = []) {
    this.controllers = controllers;
    for (const k of controllers) this.#instance = Math.max(this.#instance, instanceOf(k) + 1);
  }

  /** Queues what the next connects to `traddr` do; once used up, connects succeed. */
  script(traddr: string, ...steps: ConnectStep[]): void {
    this.#steps.set(traddr, [...(this.#steps.get(traddr) ?? []), ...steps]);
  }

  /**
   * Makes the next connect to `traddr` wait; resolve the returned deferred
   * to let it succeed (with "gone": by a controller the kernel already removed).
   */
  hold(traddr: string): Deferred<ConnectOutcome | void> {
    const gate = new Deferred<ConnectOutcome | void>();
    this.script(traddr, gate);
    return gate;
  }

  get listCalls(): number {
    return this.calls.filter((c) => c.op === "list").length;
  }
  get connects(): string[] {
    return this.calls.flatMap((c) => c.op === "connect" ? [c.traddr] : []);
  }
  get disconnects(): string[] {
    return this.calls.flatMap((c) => c.op === "disconnect" ? [c.device] : []);
  }
  get devices(): string[] {
    return this.controllers.map((k) => k.device);
  }

  /** A connection appears (made by someone else); returns its device name. */
  add(over: Partial<KernelController> = {}): string {
    const device = over.device ?? `nvme${this.#instance}`;
    this.#instance = Math.max(this.#instance, instanceOf({ device }) + 1);
    this.controllers.push(kernelController({ ...over, device }));
    return device;
  }

  /** A connection disappears without a udev event reaching anybody. */
  vanish(device: string): void {
    this.controllers = this.controllers.filter((k) => k.device !== device);
  }

  list(): Promise<KernelController[]> {
    this.calls.push({ op: "list" });
    return Promise.resolve(this.controllers.map((k) => ({ ...k })));
  }

  async connect(request: ConnectRequest): Promise<string> {
    const { target, host } = request;
    this.calls.push({ op: "connect", traddr: target.traddr, request });
    this.onConnect?.(request);
    const step = this.#steps.get(target.traddr)?.shift() ?? "ok";
    if (step instanceof Error) throw step;
    const clash = this.controllers.find((k) =>
      (k.hostnqn === host.hostnqn) !== (k.hostid === host.hostid)
    );
    if (clash && this.refusesSharedHostId) {
      throw new ConnectError("Failed to write to /dev/nvme-fabrics: Invalid argument", {
        errno: 22,
      });
    }
    const outcome = step instanceof Deferred ? await step.promise : step;
    const device = this.add({
      transport: target.transport,
      traddr: target.traddr,
      trsvcid: target.trsvcid,
      subsysnqn: target.subsysnqn,
      hostTraddr: target.hostTraddr,
      hostIface: target.hostIface,
      hostnqn: host.hostnqn,
      hostid: host.hostid,
    });
    if (outcome === "gone") this.vanish(device);
    return device;
  }

  controller(device: string): Promise<KernelController | undefined> {
    this.calls.push({ op: "controller", device });
    return Promise.resolve(this.controllers.find((k) => k.device === device));
  }

  disconnect(device: string): Promise<void> {
    this.calls.push({ op: "disconnect", device });
    const error = this.disconnectErrors.shift();
    if (error) return Promise.reject(error);
    this.vanish(device);
    return Promise.resolve();
  }
}

function instanceOf(k: { device: string }): number {
  const n = Number(k.device.replace(/^nvme/, ""));
  return Number.isInteger(n) ? n : -1;
}

/** A last-known store in memory that keeps every text saved. */
export class MemoryStore implements LastKnownStore {
  readonly path = "/run/stacd/last-known-config";
  text: string | undefined;
  readonly saves: string[] = [];
  /** Whether a save takes a macrotask turn, as a real write does (microtasks run first). */
  slow = false;
  constructor(text?: string) {
    this.text = text;
  }
  load(): Promise<string | undefined> {
    return Promise.resolve(this.text);
  }
  async save(text: string): Promise<void> {
    if (this.slow) await new Promise((resolve) => setTimeout(resolve, 0));
    this.text = text;
    this.saves.push(text);
  }
}

/**
 * Lets every promise chain started so far run to its end: the fakes settle
 * in microtasks, and a macrotask turn comes only after all of them.
 */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A fake kernel that also has discovery controllers: a connect to the
 * discovery NQN makes one, and its log page is what `pages` holds for its
 * traddr (entries, or an error the read rejects with).
 */
export class FakeDiscoveryKernel extends FakeKernel implements DiscoveryKernel {
  readonly pages = new Map<string, DiscoveryLogEntry[] | Error | Deferred<DiscoveryLogEntry[]>>();
  /** Devices whose page was read, in order. */
  readonly reads: string[] = [];

  override async connect(request: ConnectRequest): Promise<string> {
    const device = await super.connect(request);
    const k = this.controllers.find((c) => c.device === device);
    const discovery = request.target.subsysnqn === DISCOVERY_NQN || request.options?.discovery;
    if (k && discovery) k.cntrltype = "discovery";
    return device;
  }

  async discoveryLog(device: string): Promise<Uint8Array> {
    this.reads.push(device);
    const k = this.controllers.find((c) => c.device === device);
    if (!k) throw new ConnectError(`${device}: no such device`);
    const page = this.pages.get(k.traddr) ?? [];
    if (page instanceof Error) throw page;
    const entries = page instanceof Deferred ? await page.promise : page;
    return encodeDiscoveryPage(entries);
  }
}
