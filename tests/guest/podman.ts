/**
 * podman in the test guest (the Debian 13 root ships it, with crun): images
 * and containers live on the guest's tmpfs and vanish with it. Only works
 * as root in the guest.
 *
 * Why podman runs in a mount namespace of its own: the guest's init
 * (tests/guest/init.sh) chroots into the root instead of switching to it,
 * so the root of the guest's mount namespace is still the initramfs. A
 * container starts fine there, but setns(2) into a mount namespace puts the
 * caller at that namespace's root, so `podman exec` (and with it `podman
 * healthcheck run`) landed in the initramfs (measured: "executable file
 * `/usr/sbin/stacd` not found"; `sh` was busybox). A holder process does in
 * a new namespace what switch_root does at boot: it moves the guest's root
 * onto the initramfs's "/"; every podman command enters that namespace.
 * Where PID 1 already has the guest's root (systemd booted by switch_root),
 * podman runs as is.
 */

import { type CommandResult, run, runOk } from "./host.ts";

export type { CommandResult };

const STORE = "/tmp/stacd-podman";

/** Storage on the tmpfs; overlayfs, not vfs: every layer and container would be a full copy. */
const GLOBAL_FLAGS = [
  ...["--root", `${STORE}/root`, "--runroot", `${STORE}/run`],
  ...["--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "none"],
];

function sameFile(a: string, b: string): boolean {
  const x = Deno.statSync(a);
  const y = Deno.statSync(b);
  return x.dev === y.dev && x.ino === y.ino;
}

/** podman with the guest's storage, in a mount namespace where `podman exec` works. */
export class Podman {
  /** PID of the namespace holder; undefined when podman runs in the guest's own namespace. */
  readonly holder: number | undefined;

  private constructor(holder: number | undefined) {
    this.holder = holder;
  }

  /** Whether the podman binary is installed (the Debian 13 root has it; Debian 12's does not). */
  static installed(): boolean {
    try {
      return Deno.statSync("/usr/bin/podman").isFile;
    } catch {
      return false;
    }
  }

  /**
   * Gets the guest ready for podman: overlayfs loaded, cgroup2 mounted,
   * storage folders, and the namespace holder where it is needed.
   */
  static async start(): Promise<Podman> {
    await runOk("modprobe", ["overlay"]);
    let cgroup2 = false;
    try {
      cgroup2 = Deno.statSync("/sys/fs/cgroup/cgroup.controllers").isFile;
    } catch { /* not mounted */ }
    if (!cgroup2) await runOk("mount", ["-t", "cgroup2", "none", "/sys/fs/cgroup"]);
    // podman stages image copies in $TMPDIR, default /var/tmp: read-only here.
    await Deno.mkdir(`${STORE}/tmp`, { recursive: true });
    if (sameFile("/proc/1/root", "/")) return new Podman(undefined);
    // The holder: PID 1's view (the initramfs, with its static busybox), a
    // new mount namespace, the guest root moved onto "/" and entered. Run in
    // the background by a shell that exits, so no test owns the process.
    const script = "cd /newroot && mount --move . / && exec chroot . /bin/sleep infinity";
    const pid = (await runOk("/bin/sh", [
      "-c",
      "nsenter -t 1 -m -r /bin/busybox unshare -m --propagation private " +
      `/bin/busybox sh -c '${script}' </dev/null >/dev/null 2>&1 & echo $!`,
    ])).trim();
    const holder = Number(pid);
    const comm = () => Deno.readTextFile(`/proc/${holder}/comm`).then((c) => c.trim(), () => "");
    for (let i = 0; i < 100 && await comm() !== "sleep"; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (await comm() !== "sleep") {
      throw new Error(`podman's mount namespace holder (pid ${pid}) did not start`);
    }
    // It lives as long as the guest: containers of a failed test may still use it.
    return new Podman(holder);
  }

  /** The command line running `podman GLOBAL_FLAGS args...` in podman's namespace. */
  command(args: string[]): [string, string[]] {
    const podman = ["podman", ...GLOBAL_FLAGS, ...args];
    if (this.holder === undefined) return ["podman", podman.slice(1)];
    return ["nsenter", ["-t", String(this.holder), "-m", "--", ...podman]];
  }

  /** The environment podman needs. */
  get env(): Record<string, string> {
    return { TMPDIR: `${STORE}/tmp` };
  }

  /** Runs podman to completion. */
  run(args: string[]): Promise<CommandResult> {
    const [cmd, argv] = this.command(args);
    return run(cmd, argv, this.env);
  }

  /** Runs podman; throws with its stderr unless it exits 0. Returns stdout. */
  async ok(args: string[]): Promise<string> {
    const r = await this.run(args);
    if (r.code !== 0) {
      throw new Error(`podman ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    return r.stdout;
  }

  /** Starts podman with its output piped (e.g. an attached `podman run`). */
  spawn(args: string[]): Deno.ChildProcess {
    const [cmd, argv] = this.command(args);
    return new Deno.Command(cmd, {
      args: argv,
      env: this.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  /**
   * A path as podman's namespace sees it, for paths under mounts made there
   * (`podman image mount`): through the holder's root.
   */
  path(path: string): string {
    return this.holder === undefined ? path : `/proc/${this.holder}/root${path}`;
  }
}
