/**
 * `deno task test:container-root`: proves here that the image's runtime
 * contents suffice, without a container engine. It builds (once, cached
 * under .cache/container-root/) a minimal Debian bookworm root with
 * debootstrap --variant=minbase plus exactly the packages the Containerfile's
 * runtime stage installs, installs stacd into it as `deno task install` does
 * (the launcher: `deno run` with the baked permission flags, standing in for
 * the compiled binary), and runs stacd inside it with chroot. A library the
 * image lacks shows up here as a failed load.
 *
 * Slow the first time (debootstrap, about a minute); CI need not run it.
 * Usage: deno run -A build/container_root.ts [--rebuild]
 */
import { archiveUri } from "../tests/guest/debian13.ts";
import { runtimePackages } from "../container/run_options.ts";
import { install } from "./install.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const SUITE = "bookworm"; // the Containerfile's debian:bookworm-slim

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

async function run(cmd: string, args: string[]): Promise<Result> {
  const t = performance.now();
  const r = await new Deno.Command(cmd, { args, stdin: "null", env: { LC_ALL: "C" } }).output();
  const text = new TextDecoder();
  return {
    code: r.code,
    stdout: text.decode(r.stdout),
    stderr: text.decode(r.stderr),
    ms: Math.round(performance.now() - t),
  };
}

/** The cached root for `packages`, debootstrapped when missing (or on `rebuild`). */
async function debianRoot(packages: string[], rebuild: boolean): Promise<string> {
  const dir = `${root}/.cache/container-root/${SUITE}-${packages.join("+")}`;
  const done = `${dir}/.stacd-root-complete`;
  if (!rebuild && await Deno.stat(done).then(() => true, () => false)) {
    console.log(`container-root: cached ${dir}`);
    return dir;
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const uri = archiveUri();
  console.log(`container-root: debootstrap --variant=minbase ${SUITE} + ${packages.join(" ")}`);
  const r = await run("debootstrap", [
    "--variant=minbase",
    `--include=${packages.join(",")}`,
    SUITE,
    dir,
    uri,
  ]);
  if (r.code !== 0) {
    throw new Error(`debootstrap failed (exit ${r.code}): ${(r.stdout + r.stderr).slice(-2000)}`);
  }
  console.log(`container-root: debootstrap took ${(r.ms / 1000).toFixed(1)} s`);
  await Deno.writeTextFile(done, `${packages.join(" ")}\n`);
  return dir;
}

/**
 * Runs `command` chrooted into `dir`, in a private mount namespace with
 * /proc and /dev mounted (as a container runtime provides them), so no
 * mount outlives the command.
 */
function inRoot(dir: string, command: string[]): Promise<Result> {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const script = [
    "set -e",
    `mount -t proc proc ${q(`${dir}/proc`)}`,
    `mount --bind /dev ${q(`${dir}/dev`)}`,
    `exec chroot ${q(dir)} ${command.map(q).join(" ")}`,
  ].join("\n");
  return run("unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script]);
}

const TEST_NQN = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001";

interface Check {
  name: string;
  command: string[];
  expect: (r: Result) => string | undefined;
}

const CHECKS: Check[] = [
  {
    name: "stacd --version loads libnvme",
    command: ["/usr/sbin/stacd", "--version"],
    expect: (r) =>
      r.code === 0 && /^stacd \d.*\nlibnvme \d+\.\d+/.test(r.stdout) ? undefined : "no libnvme",
  },
  {
    name: "stacd --help",
    command: ["/usr/sbin/stacd", "--help"],
    expect: (r) => r.code === 0 && r.stdout.startsWith("Usage: stacd") ? undefined : "no usage",
  },
  {
    name: "stacd --dump-config reads /etc/stas and /etc/nvme",
    command: ["/usr/sbin/stacd", "--dump-config"],
    expect: (r) =>
      r.code === 0 && JSON.parse(r.stdout).host?.nqn === TEST_NQN ? undefined : "wrong config",
  },
  {
    name: "libudev loads (the uevent monitor's library)",
    command: [
      "/usr/lib/stacd/deno",
      "eval",
      'const m = await import("/usr/lib/stacd/ffi/libudev.ts"); m.openLibudev().close(); console.log("libudev ok")',
    ],
    expect: (r) => r.code === 0 && r.stdout.includes("libudev ok") ? undefined : "libudev failed",
  },
  {
    name: "stacctl (the same binary) without a bus says so",
    command: ["/usr/bin/stacctl", "status"],
    expect: (r) =>
      r.code !== 0 && r.stderr.includes("Unable to communicate with stacd") ? undefined : "no",
  },
];

/** What the root holds: package count, and the runtime packages with their direct dependencies. */
async function report(dir: string, packages: string[]): Promise<void> {
  const query = (format: string, names: string[] = []) =>
    inRoot(dir, ["dpkg-query", "-W", "-f", format, ...names]).then((r) => r.stdout.trim());
  const all = (await query("${Package}\n")).split("\n");
  const depends = (await query("${Depends}\n", packages))
    .split(/[,\n|]/).map((d) => d.trim().split(/[\s:]/)[0]!).filter(Boolean);
  const names = [...new Set([...packages, ...depends])].filter((n) => n !== "libc6");
  const sizes = (await query("${Installed-Size} ${Package}\n", names)).split("\n");
  const du = await run("du", ["-sm", "--exclude=lib/stacd", `${dir}/usr`]);
  console.log(
    `container-root: ${all.length} packages; /usr without stacd ${du.stdout.split(/\s/)[0]} MB`,
  );
  console.log(`container-root: runtime packages and their dependencies (KiB installed):`);
  for (const line of sizes) console.log(`  ${line}`);
}

async function main(): Promise<number> {
  const started = performance.now();
  const packages = runtimePackages();
  const dir = await debianRoot(packages, Deno.args.includes("--rebuild"));
  // stacd as the image holds it, but run by deno (no denort here): the launcher install.
  await install({ prefix: "/usr", destdir: dir, sysconfdir: "/etc" });
  await Deno.mkdir(`${dir}/etc/nvme`, { recursive: true });
  await Deno.writeTextFile(`${dir}/etc/nvme/hostnqn`, `${TEST_NQN}\n`);
  await Deno.writeTextFile(`${dir}/etc/nvme/hostid`, "00000000-0000-4000-8000-000000000001\n");

  let failed = 0;
  for (const check of CHECKS) {
    const r = await inRoot(dir, check.command);
    let why: string | undefined;
    try {
      why = check.expect(r);
    } catch (error) {
      why = String(error);
    }
    console.log(`container-root: ${why ? "FAIL" : "ok  "} ${check.name} (${r.ms} ms)`);
    if (why) {
      failed++;
      console.log(
        `  ${why}: exit ${r.code}\n  stdout: ${r.stdout.trim()}\n  stderr: ${r.stderr.trim()}`,
      );
    }
  }
  await report(dir, packages);
  console.log(`container-root: total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`container-root: ${CHECKS.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
