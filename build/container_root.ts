/**
 * The container image's runtime root, built from Debian packages, and
 * `deno task test:container-root`, which proves without a container engine
 * that the image's contents suffice.
 *
 * {@linkcode runtimeRoot} builds (once, cached under .cache/container-root/)
 * what the Containerfile's runtime stage holds before stacd is copied in:
 * the release its RUNTIME_BASE names (debian:bookworm-slim: bookworm)
 * debootstrapped with --variant=minbase, exactly the packages of its
 * RUNTIME_PACKAGES, thinned as the slim image is, and without apt's package
 * lists, which that stage removes; and a tarball of it, which the guest's
 * container test imports into podman as the runtime stage's base
 * (tests/guest/container_image.ts).
 *
 * The task installs stacd as `deno task install` does (the launcher: `deno
 * run` with the baked permission flags, standing in for the compiled binary)
 * into a layer of its own, and runs stacd chrooted into the layers stacked
 * read-only with overlayfs, as a container engine stacks an image. A library
 * the image lacks shows up here as a failed load.
 *
 * Slow the first time (debootstrap: 30 to 70 s); CI need not run it.
 * Usage: deno run -A build/container_root.ts [--rebuild]
 */
import { archiveUri } from "../tests/guest/debian13.ts";
import { readContainerfile, runtimeBase, runtimePackages } from "../container/run_options.ts";
import { install } from "./install.ts";

const checkout = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const CACHE = `${checkout}/.cache/container-root`;

/**
 * What debian:*-slim leaves out, as the dpkg configuration that image ships
 * (/etc/dpkg/dpkg.cfg.d/docker, debuerreotype's "slimify"): documentation,
 * manuals and translations, but the copyright files.
 */
export const SLIM_DPKG_CONFIG =
  `# The "slim" variant of the Debian base image (debuerreotype's slimify):
# files unneeded in containers are left out, and stay out on later installs.
path-exclude /usr/share/doc/*
# the copyright files are kept, for legal reasons
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
`;

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

/** Where the runtime root is built and what it holds. */
export interface RuntimeRoot {
  /** Host folder of the root. */
  dir: string;
  /** The Debian release, from the Containerfile's RUNTIME_BASE. */
  suite: string;
  /** The Containerfile's RUNTIME_PACKAGES. */
  packages: string[];
  /** The root as a tarball (numeric owners), which `podman import` takes. */
  tarball: string;
}

/** Where {@linkcode runtimeRoot} keeps the root for `containerfile` (built or not). */
export function runtimeRootPlace(containerfile = readContainerfile()): RuntimeRoot & {
  /** Written when the root is complete: the suite and packages it was built for. */
  stamp: string;
} {
  const { suite } = runtimeBase(containerfile);
  const packages = runtimePackages(containerfile);
  const dir = `${CACHE}/${suite}-slim-${packages.join("+")}`;
  return { dir, suite, packages, tarball: `${dir}.tar`, stamp: `${dir}.json` };
}

function stampText(root: RuntimeRoot): string {
  return JSON.stringify({ suite: root.suite, packages: root.packages, tarball: true });
}

/** Whether the root for the current Containerfile is built (the guest test asks before using it). */
export async function runtimeRootReady(): Promise<RuntimeRoot | undefined> {
  const { stamp, ...place } = runtimeRootPlace();
  return await Deno.readTextFile(stamp).catch(() => "") === stampText(place) ? place : undefined;
}

/**
 * The runtime root for the current Containerfile, debootstrapped when
 * missing (or on `rebuild`). Built beside its final place and renamed, so an
 * interrupted build is never taken for a root.
 */
export async function runtimeRoot(
  opts: { rebuild?: boolean; log?: (line: string) => void } = {},
): Promise<RuntimeRoot> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const ready = opts.rebuild ? undefined : await runtimeRootReady();
  if (ready) {
    log(`container-root: cached ${ready.dir}`);
    return ready;
  }
  const { stamp, ...place } = runtimeRootPlace();
  const building = `${place.dir}.new`;
  await Deno.remove(stamp).catch(() => {});
  await Deno.remove(building, { recursive: true }).catch(() => {});
  await Deno.mkdir(building, { recursive: true });
  log(`container-root: debootstrap --variant=minbase ${place.suite} + ${place.packages.join(" ")}`);
  const r = await run("debootstrap", [
    "--variant=minbase",
    `--include=${place.packages.join(",")}`,
    place.suite,
    building,
    archiveUri(),
  ]);
  if (r.code !== 0) {
    throw new Error(`debootstrap failed (exit ${r.code}): ${(r.stdout + r.stderr).slice(-2000)}`);
  }
  log(`container-root: debootstrap took ${(r.ms / 1000).toFixed(1)} s`);
  await slim(building);
  // Made here, where it takes a second: the guest reads one file over 9p
  // faster than it walks the tree (measured 30 s for tar of the tree there).
  const tar = await run("tar", ["--numeric-owner", "-C", building, "-cf", place.tarball, "."]);
  if (tar.code !== 0) throw new Error(`tar of ${building} failed: ${tar.stderr.trim()}`);
  await Deno.remove(place.dir, { recursive: true }).catch(() => {});
  await Deno.rename(building, place.dir);
  await Deno.writeTextFile(stamp, stampText(place));
  return place;
}

/**
 * Makes a debootstrapped root hold what the runtime stage's base and its
 * RUN leave: the slim image's exclusions applied (and configured, as that
 * image does), no downloaded packages (Debian's images clean them), and no
 * package lists (the stage's `rm -rf /var/lib/apt/lists/*`).
 */
async function slim(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/etc/dpkg/dpkg.cfg.d/docker`, SLIM_DPKG_CONFIG);
  const emptyOut = async (path: string, keep: (child: string) => boolean = () => false) => {
    const entries = await Array.fromAsync(Deno.readDir(path)).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    });
    for (const e of entries) {
      const child = `${path}/${e.name}`;
      if (!keep(child)) await Deno.remove(child, { recursive: true });
    }
  };
  for (const share of ["groff", "info", "linda", "lintian/overrides", "locale", "man"]) {
    await emptyOut(`${dir}/usr/share/${share}`);
  }
  for await (const e of Deno.readDir(`${dir}/usr/share/doc`)) {
    const path = `${dir}/usr/share/doc/${e.name}`;
    if (e.isDirectory) await emptyOut(path, (child) => child.endsWith("/copyright"));
    else await Deno.remove(path);
  }
  await emptyOut(`${dir}/var/cache/apt/archives`, (child) => !child.endsWith(".deb"));
  await emptyOut(`${dir}/var/lib/apt/lists`);
}

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `command` chrooted into `layers` (top first, two at least) stacked
 * read-only with overlayfs, in a private mount namespace with /proc, /dev and a /tmp
 * tmpfs mounted (as a container runtime provides them), so no mount outlives
 * the command.
 */
function inLayers(layers: string[], command: string[]): Promise<Result> {
  for (const layer of layers) {
    if (/[:,]/.test(layer)) throw new RangeError(`overlayfs cannot stack "${layer}" (":" or ",")`);
  }
  const merged = `${CACHE}/merged`;
  const script = [
    "set -e",
    `mkdir -p ${q(merged)}`,
    `mount -t overlay overlay -o ${q(`lowerdir=${layers.join(":")}`)} ${q(merged)}`,
    `mount -t proc proc ${q(`${merged}/proc`)}`,
    `mount --bind /dev ${q(`${merged}/dev`)}`,
    `mount -t tmpfs tmpfs ${q(`${merged}/tmp`)}`,
    `exec chroot ${q(merged)} ${command.map(q).join(" ")}`,
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
async function report(base: RuntimeRoot, layers: string[]): Promise<void> {
  const query = (format: string, names: string[] = []) =>
    inLayers(layers, ["dpkg-query", "-W", "-f", format, ...names]).then((r) => r.stdout.trim());
  const all = (await query("${Package}\n")).split("\n");
  const depends = (await query("${Depends}\n", base.packages))
    .split(/[,\n|]/).map((d) => d.trim().split(/[\s:]/)[0]!).filter(Boolean);
  const names = [...new Set([...base.packages, ...depends])].filter((n) => n !== "libc6");
  const sizes = (await query("${Installed-Size} ${Package}\n", names)).split("\n");
  const du = await run("du", ["-sm", base.dir]);
  console.log(
    `container-root: ${all.length} packages; the root without stacd ${du.stdout.split(/\s/)[0]} MB`,
  );
  console.log(`container-root: runtime packages and their dependencies (KiB installed):`);
  for (const line of sizes) console.log(`  ${line}`);
}

async function main(): Promise<number> {
  const started = performance.now();
  const base = await runtimeRoot({ rebuild: Deno.args.includes("--rebuild") });
  // stacd as the image holds it, but run by deno (no denort here): the launcher install.
  const stacdLayer = `${CACHE}/stacd-layer`;
  await Deno.remove(stacdLayer, { recursive: true }).catch(() => {});
  await install({ prefix: "/usr", destdir: stacdLayer, sysconfdir: "/etc" });
  // The node's identity, which the container gets from the host's /etc/nvme.
  const nodeLayer = `${CACHE}/node-layer`;
  await Deno.mkdir(`${nodeLayer}/etc/nvme`, { recursive: true });
  await Deno.writeTextFile(`${nodeLayer}/etc/nvme/hostnqn`, `${TEST_NQN}\n`);
  await Deno.writeTextFile(
    `${nodeLayer}/etc/nvme/hostid`,
    "00000000-0000-4000-8000-000000000001\n",
  );
  const layers = [nodeLayer, stacdLayer, base.dir];

  let failed = 0;
  for (const check of CHECKS) {
    const r = await inLayers(layers, check.command);
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
  await report(base, layers);
  console.log(`container-root: total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`container-root: ${CHECKS.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
