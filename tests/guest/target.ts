/**
 * A typed helper over the kernel NVMe target's configfs tree
 * (/sys/kernel/config/nvmet), for guest tests. It remembers what it made so
 * that teardown() (or `using`) removes exactly that, in an order configfs
 * accepts: ports before the subsystems linked into them, subsystems before
 * the hosts they allow. Only works as root in the guest (tests/guest/guest.ts).
 */

/** Where configfs exposes nvmet once prepare.sh has loaded it. */
export const NVMET_ROOT = "/sys/kernel/config/nvmet";

/** Options for {@linkcode NvmetTarget.createSubsystem}. */
export interface SubsystemOptions {
  /** Accept any host NQN (default); false admits only hosts given to allowHost(). */
  allowAnyHost?: boolean;
  /** Block device behind namespace 1; several subsystems may share one. */
  nsDevice?: string;
}

/** Options for {@linkcode NvmetTarget.createPort}. */
export interface PortOptions {
  trtype?: "tcp";
  adrfam: "ipv4" | "ipv6";
  traddr: string;
  /** Default 4420. */
  trsvcid?: number | string;
}

/** DH-HMAC-CHAP secrets ("DHHC-1:..." as `nvme gen-dhchap-key` prints them). */
export interface HostOptions {
  dhchapKey?: string;
  dhchapCtrlKey?: string;
}

/** The kernel target, as far as one test builds it. */
export class NvmetTarget implements Disposable {
  readonly root: string;
  readonly #ports = new Set<number>();
  readonly #subsystems = new Set<string>();
  readonly #hosts = new Set<string>();

  constructor(root: string = NVMET_ROOT) {
    if (!isDir(root)) {
      throw new Error(`${root} is missing: not in the test guest, or nvmet/configfs not loaded`);
    }
    this.root = root;
  }

  /** Makes subsystem `nqn` with namespace 1 on `nsDevice`, enabled. */
  createSubsystem(nqn: string, opts: SubsystemOptions = {}): void {
    const dir = `${this.root}/subsystems/${nqn}`;
    Deno.mkdirSync(dir);
    this.#subsystems.add(nqn);
    writeAttr(`${dir}/attr_allow_any_host`, opts.allowAnyHost === false ? "0" : "1");
    Deno.mkdirSync(`${dir}/namespaces/1`);
    writeAttr(`${dir}/namespaces/1/device_path`, opts.nsDevice ?? "/dev/nullb0");
    writeAttr(`${dir}/namespaces/1/enable`, "1");
  }

  /**
   * Removes subsystem `nqn`, first unlinking it from every port and dropping
   * its namespaces and allowed hosts. Connected hosts lose their controllers.
   */
  removeSubsystem(nqn: string): void {
    const dir = `${this.root}/subsystems/${nqn}`;
    for (const port of listDir(`${this.root}/ports`)) {
      if (isLink(`${this.root}/ports/${port}/subsystems/${nqn}`)) {
        this.unlinkSubsystem(Number(port), nqn);
      }
    }
    for (const host of listDir(`${dir}/allowed_hosts`)) {
      Deno.removeSync(`${dir}/allowed_hosts/${host}`);
    }
    for (const ns of listDir(`${dir}/namespaces`)) Deno.removeSync(`${dir}/namespaces/${ns}`);
    Deno.removeSync(dir);
    this.#subsystems.delete(nqn);
  }

  /**
   * Makes port `id`. It starts listening only once a subsystem is linked to
   * it, and also serves the discovery controller for what is linked.
   */
  createPort(id: number, opts: PortOptions): void {
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`Bad port id ${id}`);
    const dir = `${this.root}/ports/${id}`;
    Deno.mkdirSync(dir);
    this.#ports.add(id);
    writeAttr(`${dir}/addr_trtype`, opts.trtype ?? "tcp");
    writeAttr(`${dir}/addr_adrfam`, opts.adrfam);
    writeAttr(`${dir}/addr_traddr`, opts.traddr);
    writeAttr(`${dir}/addr_trsvcid`, String(opts.trsvcid ?? 4420));
  }

  /** Removes port `id` (configfs refuses while subsystems are linked, so they are unlinked first). */
  removePort(id: number): void {
    const dir = `${this.root}/ports/${id}`;
    for (const nqn of listDir(`${dir}/subsystems`)) this.unlinkSubsystem(id, nqn);
    for (const ref of listDir(`${dir}/referrals`)) Deno.removeSync(`${dir}/referrals/${ref}`);
    Deno.removeSync(dir);
    this.#ports.delete(id);
  }

  /**
   * Adds a referral named `name` to port `portId`'s discovery log page,
   * pointing at the discovery controller of `to` (nvmet's port referrals).
   */
  addReferral(portId: number, name: string, to: TargetPort): void {
    const dir = `${this.root}/ports/${portId}/referrals/${name}`;
    Deno.mkdirSync(dir);
    writeAttr(`${dir}/addr_trtype`, to.trtype ?? "tcp");
    writeAttr(`${dir}/addr_adrfam`, to.adrfam);
    writeAttr(`${dir}/addr_traddr`, to.traddr);
    writeAttr(`${dir}/addr_trsvcid`, String(to.trsvcid ?? 4420));
    writeAttr(`${dir}/enable`, "1");
  }

  /** Exposes subsystem `nqn` on port `portId`. */
  linkSubsystem(portId: number, nqn: string): void {
    Deno.symlinkSync(
      `${this.root}/subsystems/${nqn}`,
      `${this.root}/ports/${portId}/subsystems/${nqn}`,
    );
  }

  /** Withdraws `nqn` from port `portId`; the kernel drops controllers connected through it. */
  unlinkSubsystem(portId: number, nqn: string): void {
    Deno.removeSync(`${this.root}/ports/${portId}/subsystems/${nqn}`);
  }

  /**
   * Declares host `hostnqn`, optionally with DH-HMAC-CHAP secrets. Those need
   * a kernel with NVME_TARGET_AUTH (Debian 12's 6.1 lacks it).
   */
  createHost(hostnqn: string, opts: HostOptions = {}): void {
    const dir = `${this.root}/hosts/${hostnqn}`;
    Deno.mkdirSync(dir);
    this.#hosts.add(hostnqn);
    for (
      const [attr, value] of [["dhchap_key", opts.dhchapKey], [
        "dhchap_ctrl_key",
        opts.dhchapCtrlKey,
      ]]
    ) {
      if (value === undefined) continue;
      if (!isFile(`${dir}/${attr}`)) {
        throw new Error(`Cannot set ${attr} of host "${hostnqn}": kernel lacks NVMe target auth`);
      }
      writeAttr(`${dir}/${attr}`, value);
    }
  }

  /** Removes host `hostnqn`, first withdrawing it from every subsystem that allows it. */
  removeHost(hostnqn: string): void {
    for (const nqn of listDir(`${this.root}/subsystems`)) {
      const link = `${this.root}/subsystems/${nqn}/allowed_hosts/${hostnqn}`;
      if (isLink(link)) Deno.removeSync(link);
    }
    Deno.removeSync(`${this.root}/hosts/${hostnqn}`);
    this.#hosts.delete(hostnqn);
  }

  /**
   * Admits `hostnqn` (made with createHost) to subsystem `nqn`. This turns
   * allow-any-host off: the kernel refuses host lists on open subsystems.
   */
  allowHost(nqn: string, hostnqn: string): void {
    writeAttr(`${this.root}/subsystems/${nqn}/attr_allow_any_host`, "0");
    Deno.symlinkSync(
      `${this.root}/hosts/${hostnqn}`,
      `${this.root}/subsystems/${nqn}/allowed_hosts/${hostnqn}`,
    );
  }

  /**
   * Removes everything this object made, ports first. Every step is tried
   * even when one fails; failures are thrown together at the end.
   */
  teardown(): void {
    const errors: unknown[] = [];
    const attempt = (step: () => void) => {
      try {
        step();
      } catch (e) {
        errors.push(e);
      }
    };
    for (const id of [...this.#ports]) attempt(() => this.removePort(id));
    for (const nqn of [...this.#subsystems]) attempt(() => this.removeSubsystem(nqn));
    for (const host of [...this.#hosts]) attempt(() => this.removeHost(host));
    if (errors.length) throw new AggregateError(errors, "nvmet teardown incomplete");
  }

  [Symbol.dispose](): void {
    this.teardown();
  }
}

/** A port for {@linkcode createTarget}: PortOptions plus its id. */
export interface TargetPort extends PortOptions {
  id: number;
}

/** The port most tests use: NVMe/TCP on IPv4 loopback, port 4420. */
export const LOOPBACK_PORT: Readonly<TargetPort> = {
  id: 1,
  adrfam: "ipv4",
  traddr: "127.0.0.1",
  trsvcid: 4420,
};

/** A target built by {@linkcode createTarget}; disposing it tears it down. */
export interface TestTarget extends Disposable {
  target: NvmetTarget;
  /** Subsystem NQNs, `${prefix}:s1` to `${prefix}:sN`. */
  nqns: string[];
}

/**
 * Builds N subsystems (on /dev/nullb0, any host allowed), each linked to
 * every port. Meant for `using t = createTarget(...)`.
 */
export function createTarget(opts: {
  subsystems: number;
  ports: TargetPort[];
  nqnPrefix?: string;
  root?: string;
}): TestTarget {
  const target = new NvmetTarget(opts.root);
  const prefix = opts.nqnPrefix ?? "nqn.2026-11.io.test";
  const nqns = Array.from({ length: opts.subsystems }, (_, i) => `${prefix}:s${i + 1}`);
  try {
    for (const nqn of nqns) target.createSubsystem(nqn);
    for (const port of opts.ports) createLinkedPort(target, port, nqns);
  } catch (e) {
    target.teardown();
    throw e;
  }
  return { target, nqns, [Symbol.dispose]: () => target.teardown() };
}

/** Creates `port` and links the subsystems `nqns` to it (again, after a removePort()). */
export function createLinkedPort(target: NvmetTarget, port: TargetPort, nqns: string[]): void {
  target.createPort(port.id, port);
  for (const nqn of nqns) target.linkSubsystem(port.id, nqn);
}

/** Writes a configfs attribute (no O_CREAT/O_TRUNC, which configfs attributes do not take). */
function writeAttr(path: string, value: string): void {
  try {
    using file = Deno.openSync(path, { write: true });
    const bytes = new TextEncoder().encode(value);
    if (file.writeSync(bytes) !== bytes.length) throw new Error("short write");
  } catch (e) {
    throw new Error(`Cannot write "${value}" to ${path}: ${e instanceof Error ? e.message : e}`);
  }
}

function listDir(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

const lstat = (path: string) => {
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
};
const isLink = (path: string) => lstat(path)?.isSymlink ?? false;
const isDir = (path: string) => lstat(path)?.isDirectory ?? false;
const isFile = (path: string) => lstat(path)?.isFile ?? false;
