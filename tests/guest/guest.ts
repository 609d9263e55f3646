/**
 * Runs a shell script as root inside a throwaway QEMU guest (TCG) whose root
 * is shared read-only over 9p from the host (the host's own root, or the
 * Debian 13 tree: see platform.ts), with the NVMe/TCP host and target
 * drivers loaded. Tests that need a real kernel go through here.
 *
 * With `init: "systemd"` (debian13 only) the guest boots real systemd as
 * PID 1 on a writable overlay of that root instead, and runs the script as
 * a service once the system is up (see init.sh).
 *
 * Usage: deno run -A tests/guest/guest.ts [--platform debian12|debian13] [--init chroot|systemd] [--timeout SECONDS] FILE.sh
 *   (the platform defaults to $GUEST_PLATFORM, else debian12)
 */
import { cacheDir, checkoutDir } from "./host.ts";
import { buildInitramfs } from "./initramfs.ts";
import { bootImage } from "./kernel.ts";
import { platformFromEnv, type PlatformName, platformName, preparePlatform } from "./platform.ts";

/** What {@linkcode runInGuest} runs and with what resources. */
export interface GuestOptions {
  /** Shell script text, run by /bin/sh as root with the checkout as cwd. */
  script: string;
  /** Which root and kernel to boot; default `$GUEST_PLATFORM`, else debian12. */
  platform?: PlatformName;
  /**
   * "chroot" (default): the initramfs's init stays PID 1 and runs the script
   * in a chroot of the read-only root. "systemd": systemd is PID 1 on a
   * writable (throwaway) overlay of the root and runs the script as a
   * service, with dbus and udevd running as services; debian13 only.
   */
  init?: GuestInit;
  /** QEMU is killed after this long; default 5 minutes. */
  timeoutMs?: number;
  memoryMiB?: number;
  cpus?: number;
  /** Extra environment for the script. */
  env?: Record<string, string>;
  /** Receives the script's output as it arrives. */
  onOutput?: (text: string) => void;
  /** Aborting kills QEMU. */
  signal?: AbortSignal;
}

export type GuestInit = "chroot" | "systemd";

/**
 * Units the debian13 root enables that must not start when it boots
 * systemd: nvme-stas's own stacd and stafd (a test installs and starts its
 * stacd), nvme-cli's boot-time connects, podman's network helper, and
 * timers. Disabled in the guest's overlay only; each can still be started.
 */
const SYSTEMD_DISABLED_UNITS = [
  "stacd.service",
  "stafd.service",
  "nvmf-autoconnect.service",
  "nvmefc-boot-connections.service",
  "netavark-dhcp-proxy.service",
  "netavark-dhcp-proxy.socket",
  "uuidd.socket",
  "getty@tty1.service",
  "apt-daily.timer",
  "apt-daily-upgrade.timer",
  "dpkg-db-backup.timer",
  "fstrim.timer",
];

/** How a guest run ended. */
export interface GuestResult {
  /** The script's exit code; null if the guest died, timed out or was aborted first. */
  exitCode: number | null;
  timedOut: boolean;
  /** The script's stdout and stderr, interleaved. */
  output: string;
  /** The serial console (kernel messages, init's complaints) and QEMU's stderr. */
  console: string;
  /** Host folder holding what the script wrote to $GUEST_OUT. */
  outDir: string;
  platform: PlatformName;
  /** The guest kernel's version. */
  kernel: string;
  /** QEMU start to the script's start (kernel boot, mounts, module loads); null if never reached. */
  bootMs: number | null;
  totalMs: number;
}

/**
 * Kernel command line added for systemd as PID 1: its status lines on the
 * console (kept in console.log, where a boot that never reached the test
 * shows why), and masks for what a throwaway test guest does not need, to
 * spare TCG's two CPUs at boot (ldconfig and friends alone took 5-10 s):
 * login prompts and sessions, caches rebuilt after package updates, seed
 * and pstore saving, binfmt and debugging file systems.
 */
const SYSTEMD_CMDLINE = [
  "systemd.show_status=1",
  ...[
    "serial-getty@ttyS0.service",
    "systemd-logind.service",
    "systemd-user-sessions.service",
    "ldconfig.service",
    "systemd-update-done.service",
    "systemd-journal-catalog-update.service",
    "systemd-random-seed.service",
    "systemd-pstore.service",
    "modprobe@drm.service",
    "modprobe@efi_pstore.service",
    "modprobe@fuse.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "sys-fs-fuse-connections.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "dev-hugepages.mount",
  ].map((unit) => `systemd.mask=${unit}`),
].map((arg) => ` ${arg}`).join("");

/** Printed by guest.sh on its stdout right before the script; not part of the output. */
const START_MARK = "@@guest-script-start@@\n";
const PREPARE = `${checkoutDir}/tests/guest/prepare.sh`;

/** Boots a guest, runs `opts.script` in it and collects what it did. */
export async function runInGuest(opts: GuestOptions): Promise<GuestResult> {
  const started = performance.now();
  const platform = await preparePlatform(opts.platform ?? platformFromEnv());
  const init = opts.init ?? "chroot";
  if (init === "systemd" && platform.name !== "debian13") {
    throw new RangeError(
      `init "systemd" needs a root with systemd, dbus and udev: platform debian13, not ${platform.name}`,
    );
  }
  const { path: initrd, kernel } = await buildInitramfs(platform.kernel);
  const image = await bootImage(kernel);
  await Deno.mkdir(`${cacheDir}/runs`, { recursive: true });
  await pruneRuns(`${cacheDir}/runs`);
  // One folder per run, so guests can run side by side; shared as "run".
  const runDir = await Deno.makeTempDir({ dir: `${cacheDir}/runs`, prefix: "run-" });
  const outDir = `${runDir}/out`;
  await Deno.mkdir(outDir);
  await Deno.writeTextFile(`${runDir}/.run-dir`, runDir);
  await Deno.writeTextFile(`${runDir}/.guest-root`, platform.root);
  await Deno.writeTextFile(
    `${runDir}/.guest-binds`,
    guestBinds(platform.binds).map(([from, to]) => `${from} ${to}\n`).join(""),
  );
  if (init === "systemd") {
    await Deno.writeTextFile(`${runDir}/.guest-init`, "systemd\n");
    await Deno.writeTextFile(`${runDir}/.guest-disable`, SYSTEMD_DISABLED_UNITS.join("\n") + "\n");
  }
  await Deno.writeTextFile(`${runDir}/script.sh`, opts.script);
  await Deno.writeTextFile(
    `${runDir}/guest.sh`,
    wrapper(runDir, outDir, { GUEST_PLATFORM: platform.name, ...opts.env }),
  );

  const share = (path: string) => path.replaceAll(",", ",,"); // QEMU's option escaping
  const spawned = performance.now();
  const qemu = new Deno.Command("qemu-system-x86_64", {
    args: [
      ...["-accel", "tcg,thread=multi", "-cpu", "max", "-machine", "pc"],
      ...["-m", String(opts.memoryMiB ?? 2048), "-smp", String(opts.cpus ?? 2)],
      ...["-nodefaults", "-display", "none", "-no-reboot", "-nic", "none"],
      // ttyS0: kernel console, kept in a file; ttyS1: the script's output, streamed.
      ...["-serial", `file:${share(`${runDir}/console.log`)}`, "-serial", "stdio"],
      ...["-kernel", image, "-initrd", initrd],
      // systemd's status lines go to the console log: where a boot that
      // never reached the test unit shows why.
      ...["-append", `console=ttyS0 quiet panic=-1${init === "systemd" ? SYSTEMD_CMDLINE : ""}`],
      "-virtfs",
      "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
      "-virtfs",
      `local,path=${share(runDir)},mount_tag=run,security_model=none,multidevs=remap`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let timedOut = false;
  const kill = () => {
    try {
      qemu.kill("SIGKILL");
    } catch { /* already exited */ }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, opts.timeoutMs ?? 300_000);
  opts.signal?.addEventListener("abort", kill, { once: true });
  if (opts.signal?.aborted) kill();

  let bootMs: number | null = null;
  let pending = ""; // output before the start mark: guest.sh's own messages
  let output = "";
  const stderr = new Response(qemu.stderr).text();
  for await (const text of qemu.stdout.pipeThrough(new TextDecoderStream())) {
    let chunk = text;
    if (bootMs === null) {
      pending += text;
      const at = pending.indexOf(START_MARK);
      if (at < 0) continue;
      bootMs = performance.now() - spawned;
      chunk = pending.slice(0, at) + pending.slice(at + START_MARK.length);
    }
    output += chunk;
    opts.onOutput?.(chunk);
  }
  if (bootMs === null && pending) {
    output = pending;
    opts.onOutput?.(pending);
  }
  await qemu.status;
  clearTimeout(timer);
  opts.signal?.removeEventListener("abort", kill);

  await Deno.writeTextFile(`${runDir}/output.log`, output); // kept for post-mortems
  const consoleText = (await readOr(`${runDir}/console.log`)) + (await stderr);
  const code = (await readOr(`${runDir}/exit-code`)).trim();
  return {
    exitCode: code === "" || timedOut ? null : Number(code),
    timedOut,
    output,
    console: consoleText,
    outDir,
    platform: platform.name,
    kernel: kernel.version,
    bootMs: bootMs === null ? null : Math.round(bootMs),
    totalMs: Math.round(performance.now() - started),
  };
}

/**
 * The line that says the guest's kernel crashed (panic, double fault, oops),
 * without its timestamp; undefined if the console shows none. Under TCG the
 * emulated kernel very rarely crashes on its own (CI saw a double fault in
 * the slab allocator during podman's clone3); the suite runner tells that
 * apart from a test failure with this.
 */
export function kernelCrash(consoleText: string): string | undefined {
  const line = consoleText.split("\n").find((l) =>
    /\b(Kernel panic - not syncing|traps: PANIC|Oops: |BUG: |general protection fault)/.test(l)
  );
  return line?.replace(/^\[\s*\d+\.\d+\]\s*/, "").trim();
}

/**
 * runInGuest, run once more when the guest's kernel crashed (see
 * kernelCrash()): such a run says nothing about the script. The crash is
 * printed with the crashed run's console and, given `junitFile`, noted in
 * `<junitFile>.retried`, which the test summary prints. A second crash stands.
 */
export async function runInGuestUnlessCrashed(
  opts: GuestOptions,
  rerun: { what: string; junitFile?: string },
): Promise<GuestResult> {
  const r = await runInGuest(opts);
  const crash = r.exitCode === null && !r.timedOut ? kernelCrash(r.console) : undefined;
  if (crash === undefined || opts.signal?.aborted) return r;
  console.error(
    `\n---- guest console ----\n${r.console}---- guest kernel crashed (${crash}), ` +
      `out ${r.outDir}: running the ${rerun.what} once more ----`,
  );
  if (rerun.junitFile) {
    await Deno.writeTextFile(
      `${rerun.junitFile}.retried`,
      `guest kernel crashed (${crash}); the ${rerun.what} ran again\n`,
    );
  }
  return await runInGuest(opts);
}

/** The run's guest.sh: environment, guest preparation, then the script. */
function wrapper(runDir: string, outDir: string, env: Record<string, string>): string {
  const vars: Record<string, string> = {
    PATH:
      `${checkoutDir}/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: "/root",
    // The checkout is read-only in the guest; Deno's cache goes to the tmpfs.
    DENO_DIR: "/tmp/deno",
    DENO_NO_UPDATE_CHECK: "1",
    NO_COLOR: "1",
    GUEST_OUT: outDir,
    ...env,
  };
  for (const name of Object.keys(vars)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TypeError(`Bad variable name "${name}"`);
  }
  return [
    "# Generated by tests/guest/guest.ts.",
    "set -e",
    ...Object.entries(vars).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    `. ${shellQuote(PREPARE)}`,
    `cd ${shellQuote(checkoutDir)}`,
    "set +e",
    `printf '%s' ${shellQuote(START_MARK.replace("\n", ""))}; echo`,
    `exec /bin/sh ${shellQuote(`${runDir}/script.sh`)}`,
    "",
  ].join("\n");
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The guest mounts tmpfs on /tmp, /run and /root, hiding whatever the host
 * keeps there; a checkout there would be invisible to the guest.
 */
/**
 * The platform's binds, plus the checkout itself where the guest's own
 * tmpfs mounts (/tmp, /run, /root) would hide it: CI may clone anywhere.
 */
function guestBinds(binds: readonly (readonly [string, string])[]): (readonly [string, string])[] {
  const hidden = ["/tmp", "/run", "/root"].some((d) => checkoutDir.startsWith(`${d}/`));
  const bound = binds.some(([, to]) => to === checkoutDir);
  return hidden && !bound ? [...binds, [checkoutDir, checkoutDir]] : [...binds];
}

/** Drops run folders older than a day: they are kept only for post-mortems. */
async function pruneRuns(dir: string): Promise<void> {
  const dayAgo = Date.now() - 86_400_000;
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    try {
      const { mtime } = await Deno.stat(path);
      if (mtime && mtime.getTime() < dayAgo) await Deno.remove(path, { recursive: true });
    } catch { /* removed meanwhile by a parallel run's prune */ }
  }
}

async function readOr(path: string, fallback = ""): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  let timeoutMs: number | undefined;
  const t = args.indexOf("--timeout");
  if (t >= 0) timeoutMs = Number(args.splice(t, 2)[1]) * 1000;
  const p = args.indexOf("--platform");
  const platform = platformName(p >= 0 ? args.splice(p, 2)[1] : Deno.env.get("GUEST_PLATFORM"));
  const i = args.indexOf("--init");
  const init = i >= 0 ? args.splice(i, 2)[1] : "chroot";
  const [file] = args;
  if (
    !file || args.length !== 1 || Number.isNaN(timeoutMs) ||
    (init !== "chroot" && init !== "systemd")
  ) {
    console.error(
      "Usage: guest.ts [--platform debian12|debian13] [--init chroot|systemd] " +
        "[--timeout SECONDS] FILE.sh",
    );
    Deno.exit(2);
  }
  const abort = new AbortController();
  Deno.addSignalListener("SIGINT", () => abort.abort());
  const out = new TextEncoder();
  const r = await runInGuest({
    script: await Deno.readTextFile(file),
    platform,
    init,
    timeoutMs,
    signal: abort.signal,
    onOutput: (text) => Deno.stdout.writeSync(out.encode(text)),
  });
  if (r.output && !r.output.endsWith("\n")) console.log();
  if (r.exitCode !== 0) console.error(`---- guest console ----\n${r.console}`);
  const why = r.timedOut ? "timed out" : r.exitCode === null ? "guest died" : `exit ${r.exitCode}`;
  console.error(
    `guest ${r.platform} (${r.kernel}): ${why}, boot ${r.bootMs ?? "-"} ms, ` +
      `total ${r.totalMs} ms, out ${r.outDir}`,
  );
  Deno.exit(r.exitCode ?? (r.timedOut ? 124 : 125));
}
