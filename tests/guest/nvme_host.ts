/**
 * The guest's NVMe host side as tests observe it: controllers read from
 * /sys/class/nvme, connects written straight to /dev/nvme-fabrics (the
 * kernel interface libnvme and nvme-cli use), and a poll-until helper.
 * Tests assert on this kernel state rather than on tools' exit codes.
 */

const SYS_NVME = "/sys/class/nvme";

/** One controller as sysfs shows it. */
export interface Controller {
  /** Device name, e.g. "nvme0". */
  name: string;
  subsysnqn: string;
  transport: string;
  /** e.g. "live", "connecting", "resetting", "deleting". */
  state: string;
  /** The address attribute split into its keys (traddr, trsvcid, ...). */
  address: Record<string, string>;
  hostnqn: string;
  /** Read with the rest, so a controller deleted meanwhile drops out whole. */
  cntlid: string;
}

/** The guest's host identity (from /etc/nvme, which prepare.sh guarantees). */
export function hostIdentity(): { hostnqn: string; hostid: string } {
  return {
    hostnqn: Deno.readTextFileSync("/etc/nvme/hostnqn").trim(),
    hostid: Deno.readTextFileSync("/etc/nvme/hostid").trim(),
  };
}

/** One attribute of controller `device` (e.g. "cntlid"), trimmed; throws if the device is gone. */
export function sysfsAttribute(device: string, attribute: string): string {
  return Deno.readTextFileSync(`${SYS_NVME}/${device}/${attribute}`).trim();
}

/** Every NVMe controller the kernel has, in name order. */
export function controllers(): Controller[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(SYS_NVME)].map((e) => e.name);
  } catch {
    return [];
  }
  return names.sort().flatMap((name) => {
    const attr = (a: string) => sysfsAttribute(name, a);
    try {
      return [{
        name,
        subsysnqn: attr("subsysnqn"),
        transport: attr("transport"),
        state: attr("state"),
        address: Object.fromEntries(
          attr("address").split(",").filter(Boolean).map((kv) =>
            kv.split("=", 2) as [string, string]
          ),
        ),
        hostnqn: attr("hostnqn"),
        cntlid: attr("cntlid"),
      }];
    } catch {
      return []; // vanished while being read
    }
  });
}

/** The controllers connected to subsystem `nqn`. */
export function controllersOf(nqn: string): Controller[] {
  return controllers().filter((c) => c.subsysnqn === nqn);
}

/**
 * Connects by writing `options` ("transport=tcp,traddr=...,nqn=...") to
 * /dev/nvme-fabrics; returns the new controller's name. Throws the kernel's
 * error when it refuses.
 */
export function connectRaw(options: string): string {
  using dev = Deno.openSync("/dev/nvme-fabrics", { read: true, write: true });
  dev.writeSync(new TextEncoder().encode(options));
  const buf = new Uint8Array(256);
  const n = dev.readSync(buf) ?? 0;
  const reply = new TextDecoder().decode(buf.subarray(0, n)); // "instance=0,cntlid=1\n"
  const instance = reply.match(/instance=(\d+)/)?.[1];
  if (instance === undefined) throw new Error(`Unexpected reply from /dev/nvme-fabrics: ${reply}`);
  return `nvme${instance}`;
}

/** Deletes controller `name` (as `nvme disconnect` does); a no-op if it is gone. */
export function deleteController(name: string): void {
  try {
    using f = Deno.openSync(`${SYS_NVME}/${name}/delete_controller`, { write: true });
    f.writeSync(new TextEncoder().encode("1"));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Deletes every controller and waits until sysfs shows none: a clean slate between tests. */
export async function deleteAllControllers(): Promise<void> {
  for (const c of controllers()) deleteController(c.name);
  await waitFor(() => controllers().length === 0 || undefined, "all controllers deleted");
}

/**
 * Polls `probe` every 50 ms until it returns something other than undefined,
 * and returns that. Throws after `timeoutMs`, saying what was awaited and
 * the controllers the kernel had then.
 */
export async function waitFor<T>(
  probe: () => T | undefined,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}; controllers: ${
          JSON.stringify(controllers())
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs nvme-cli; throws with its stderr when it fails. Returns stdout. */
export async function nvme(...args: string[]): Promise<string> {
  const out = await new Deno.Command("nvme", { args, stdin: "null" }).output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(`nvme ${args.join(" ")} failed (exit ${out.code}): ${text.decode(out.stderr)}`);
  }
  return text.decode(out.stdout);
}
