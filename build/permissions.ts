/**
 * The Deno flags stacd runs with (permissions and V8's), in one place:
 * build/compile.ts bakes them into the binary, build/install.ts writes them
 * into the launcher, the container-root test, the guest tests and the
 * benchmarks run main.ts with them. What is tested and measured is then what
 * ships.
 *
 * Why `--allow-all` and nothing narrower (measured with Deno 2.9.6): on
 * Linux, Deno answers every path under /dev, /proc and /sys (except
 * /dev/null, /dev/zero, /dev/[u]random and pipe fds) with "Requires all
 * access ... run again with the --allow-all flag" unless that literal flag was
 * given. `--allow-read=/sys`, an unscoped `--allow-read`, even every
 * `--allow-*` flag together do not satisfy it, and adding any `--deny-*` flag
 * to `--allow-all` withdraws it again. stacd reads /sys/class/nvme and
 * /proc/self/maps and writes /dev/nvme-fabrics and
 * /sys/class/nvme/nvmeX/delete_controller with Deno's file API, so
 * `--allow-all` is its narrowest working set. The confinement therefore comes
 * from outside: the systemd unit (systemd/stacd.service) or the container.
 *
 * {@linkcode SCOPED_PERMISSION_FLAGS} is what stacd would get if Deno scoped
 * those paths like any other; tests/unit/build/compile_task_test.ts checks that Deno
 * still refuses it, so the day a Deno release accepts it, that test fails and
 * this list gets narrowed.
 */

/** Flags given to `deno compile` / `deno run` for stacd (and stacctl, the same program). */
export const PERMISSION_FLAGS: readonly string[] = ["--allow-all"];

/** The environment variables stacd reads (docs/design.md#environment). */
export const STACD_ENV = [
  "RUNTIME_DIRECTORY",
  "NOTIFY_SOCKET",
  "JOURNAL_STREAM",
  "DBUS_SYSTEM_BUS_ADDRESS",
  "STACD_TEST_TIMER_SCALE",
] as const;

/**
 * What stacd touches, as scoped flags: the configs, sysfs and procfs reads,
 * the fabrics device, the controllers' delete_controller files, the runtime
 * directory and the system bus socket under /run, libnvme/libudev/libc over
 * FFI, `Deno.uid()` for the root check, `Deno.osRelease()` (what the
 * kernel takes), and the resolver (node:dns asks for
 * net permission on every host name stacd.conf may hold).
 */
export const SCOPED_PERMISSION_FLAGS: readonly string[] = [
  "--allow-read=/etc/stas,/etc/nvme,/sys,/proc/self,/dev/nvme-fabrics,/run",
  "--allow-write=/dev/nvme-fabrics,/sys/class/nvme,/run",
  "--allow-ffi",
  `--allow-env=${STACD_ENV.join(",")}`,
  "--allow-sys=uid,osRelease",
  "--allow-net",
];

/**
 * V8 flags stacd runs with. `--max-semi-space-size=1` keeps V8's young
 * generation at 1 MB semi-spaces: a burst of allocation (a first pass over
 * 1,000 controllers, a 10,000-entry log page) otherwise grows them towards
 * V8's maximum, and most of those pages stay resident afterwards (measured:
 * 6 MB of private memory of an idle stacd with 1,000 controllers; bench/).
 * A daemon whose live heap is a few MB loses nothing by scavenging sooner.
 */
export const V8_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/**
 * Deno runtime flags. `--no-code-cache`: Deno keeps its V8 code cache in an
 * SQLite file that it maps into memory and keeps mapped, ~2.5 MB of the
 * resident set of an idle stacd (bench/host/memory.ts) for a start-up
 * that is ~10 ms shorter on the host; a daemon starts once.
 */
export const RUNTIME_FLAGS: readonly string[] = ["--no-code-cache"];

/** Every flag `deno compile` / `deno run` gets for stacd: permissions, Deno's and V8's. */
export const STACD_RUN_FLAGS: readonly string[] = [
  ...PERMISSION_FLAGS,
  ...RUNTIME_FLAGS,
  `--v8-flags=${V8_FLAGS.join(",")}`,
];

/**
 * The environment stacd runs with, set by every way of starting it (the
 * systemd unit, the launcher, the container image, the tests and benches).
 * MALLOC_ARENA_MAX=1: glibc gives each thread that allocates its own malloc
 * arena (up to 8 per CPU), and Deno's helper threads (file operations,
 * nonblocking FFI calls) each keep theirs resident; one shared arena saves
 * ~2 MB of an idle stacd with 1,000 controllers (bench/host/memory.ts,
 * median of 6) at no cost a daemon with one busy thread can notice. It
 * must be in the environment at exec: arenas exist before any code of
 * stacd runs (mallopt() from main.ts was measured to change nothing).
 */
export const STACD_RUN_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "1" };

/** `deno run` arguments that start `entry` (main.ts) the way the binary runs. */
export function denoRunArgs(entry: string, args: readonly string[] = []): string[] {
  return ["run", ...STACD_RUN_FLAGS, entry, ...args];
}
