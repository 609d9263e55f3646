/**
 * A real dbus-daemon on a private socket, configured like Debian's system
 * bus plus the policy files under test (the shipped
 * org.nvmexpress.stac.conf by default). Clients reach it through
 * DBUS_SYSTEM_BUS_ADDRESS = `bus.address`. Works on the host (root) and in
 * the guest (whose /etc is read-only: everything lives in a temp dir).
 */

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);
export const STAC_POLICY = `${root}etc/dbus-1/system.d/org.nvmexpress.stac.conf`;
/** stafd's shipped policy (the discovery stand-in owns the name under it too). */
export const STAF_POLICY = `${root}etc/dbus-1/system.d/org.nvmexpress.staf.conf`;

export interface PrivateBus extends AsyncDisposable {
  /** `unix:path=...` for DBUS_SYSTEM_BUS_ADDRESS. */
  address: string;
  socketPath: string;
  dir: string;
  close(): Promise<void>;
}

export async function startPrivateBus(
  options: {
    policies?: string[];
    dir?: string;
    /** Drop what the daemon logs (a flood test makes it log every call it refuses). */
    quiet?: boolean;
  } = {},
): Promise<PrivateBus> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "stacd-bus-" });
  // makeTempDir gives 0700: open it so that tests can also be non-root clients (as nobody).
  if (!options.dir) await Deno.chmod(dir, 0o755);
  const socketPath = `${dir}/system_bus_socket`;
  const policies = options.policies ?? [STAC_POLICY, STAF_POLICY];
  const template = await Deno.readTextFile(`${root}tests/dbus/system_bus.conf`);
  const config = template
    .replace("<!--@LISTEN@-->", `<listen>unix:path=${socketPath}</listen>`)
    .replace("<!--@INCLUDES@-->", policies.map((p) => `<include>${p}</include>`).join("\n  "));
  await Deno.writeTextFile(`${dir}/bus.conf`, config);
  const child = new Deno.Command("dbus-daemon", {
    args: [`--config-file=${dir}/bus.conf`, "--nofork", "--nopidfile", "--print-address"],
    stdout: "piped",
    stderr: options.quiet ? "null" : "inherit",
  }).spawn();
  // The daemon prints its address once it listens: no polling for the socket.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  while (!printed.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`dbus-daemon exited before listening (config ${dir}/bus.conf)`);
    printed += value;
  }
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    if (!options.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    address: `unix:path=${socketPath}`,
    socketPath,
    dir,
    close,
    [Symbol.asyncDispose]: close,
  };
}
