/**
 * `deno task install`: puts stacd and stafd on a systemd host, like `make
 * install`.
 *
 *   PREFIX/sbin/stacd             the compiled binary (out/stacd), or a launcher
 *   PREFIX/sbin/stafd             symbolic link to stacd (the same program)
 *   PREFIX/bin/{stacctl,stafctl}  symbolic links to ../sbin/stacd
 *   PREFIX/lib/stacd/             launcher only: the sources, production npm
 *                                 packages and (unless --deno) a copy of deno
 *   PREFIX/lib/systemd/system/{stacd,stafd}.service
 *   PREFIX/share/man/man{1,5,8}/  the man pages, built from man/*.md
 *   SYSCONFDIR/stas/{stacd,stafd,sys}.conf  mode 0600, never overwritten
 *   SYSCONFDIR/dbus-1/system.d/org.nvmexpress.{stac,staf}.conf   the bus policies
 *
 * Everything lands under DESTDIR (for packaging and tests). A compiled
 * binary is used when one exists (`deno task compile`, which needs a denort
 * runtime); otherwise the launcher: a shell script that runs the installed
 * copy of main.ts with `deno run` and the same permission flags
 * (build/permissions.ts). It finds its files relative to itself, so it also
 * runs from DESTDIR. The program acts by the name it is called by (main.ts):
 * the compiled binary sees it itself; the launcher, which runs deno, passes
 * it on as the first argument (`ctl` for stacctl, `stafd`, `stafctl`).
 *
 * Usage: deno run -A build/install.ts [--prefix=/usr/local] [--destdir=DIR]
 *          [--sysconfdir=/etc] [--binary=out/stacd | --launcher] [--deno=PATH]
 *   PREFIX, DESTDIR and SYSCONFDIR are also read from the environment.
 */
import { parseArgs } from "node:util";
import { buildManPages } from "./man.ts";
import { STACD_RUN_ENV, STACD_RUN_FLAGS } from "./permissions.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

export interface InstallOptions {
  prefix: string;
  destdir: string;
  sysconfdir: string;
  /** A compiled stacd to install; undefined installs the launcher. */
  binary?: string;
  /** The deno the launcher runs; undefined copies the running one into lib/stacd. */
  deno?: string;
}

/** One line per file: what was done. */
export type InstallReport = string[];

/** A unit (stacd's or stafd's) with ExecStart pointing at PREFIX/sbin/stacd or stafd. */
export function unitFor(unitText: string, prefix: string): string {
  return unitText.replace(
    /^ExecStart=\/usr\/sbin\/(stacd|stafd)\b/m,
    (_, name: string) => `ExecStart=${prefix}/sbin/${name}`,
  );
}

/** The programs installed as links to sbin/stacd, from PREFIX. */
export const PROGRAM_LINKS: readonly [string, string][] = [
  ["sbin/stafd", "stacd"],
  ["bin/stacctl", "../sbin/stacd"],
  ["bin/stafctl", "../sbin/stacd"],
];

/** The daemons' units, configuration files and bus policies. */
const UNITS = ["stacd.service", "stafd.service"];
const CONFIGS = ["stacd.conf", "stafd.conf", "sys.conf"];
const POLICIES = ["org.nvmexpress.stac.conf", "org.nvmexpress.staf.conf"];

/** The launcher script; `deno` is absolute, or relative to the installed lib/stacd. */
export function launcherScript(deno: string | undefined): string {
  const denoPath = deno ?? '"$lib/deno"';
  return [
    "#!/bin/sh",
    "# stacd launcher written by `deno task install`: runs the installed copy of",
    "# main.ts with the flags the compiled binary has (build/permissions.ts).",
    "# Called as stafd, stacctl or stafctl (symbolic links to it), it runs that",
    "# program: main.ts takes the name as its first argument (`ctl` is stacctl).",
    'self=$(readlink -f "$0")',
    'lib=$(dirname "$self")/../lib/stacd',
    "# Deno must not look for updates on a daemon host.",
    "export DENO_NO_UPDATE_CHECK=1",
    "# The environment stacd runs with everywhere (STACD_RUN_ENV); a caller's value wins.",
    ...Object.entries(STACD_RUN_ENV).map(([key, value]) => `export ${key}="\${${key}:-${value}}"`),
    'case $(basename "$0") in',
    '  stacctl) set -- ctl "$@" ;;',
    '  stafd | stafctl) set -- "$(basename "$0")" "$@" ;;',
    "esac",
    `exec ${deno ? shellQuote(denoPath) : denoPath} run ${STACD_RUN_FLAGS.join(" ")} ` +
    '--config "$lib/deno.json" "$lib/main.ts" "$@"',
    "",
  ].join("\n");
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The npm packages stacd ships (neither dev nor optional), as node_modules paths. */
export function productionPackages(lockText: string): string[] {
  const lock = JSON.parse(lockText) as {
    packages?: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
  };
  return Object.entries(lock.packages ?? {})
    .filter(([path, e]) =>
      /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path) && !e.dev && !e.optional && !e.devOptional
    )
    .map(([path]) => path)
    .sort();
}

async function copyTree(from: string, to: string): Promise<void> {
  const info = await Deno.lstat(from);
  await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  if (info.isSymlink) {
    await Deno.symlink(await Deno.readLink(from), to);
  } else if (info.isDirectory) {
    await Deno.mkdir(to, { recursive: true });
    for await (const e of Deno.readDir(from)) {
      await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    }
  } else {
    await Deno.copyFile(from, to);
  }
}

async function put(path: string, text: string | Uint8Array, mode: number): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.remove(path).catch(() => {});
  if (typeof text === "string") await Deno.writeTextFile(path, text, { mode });
  else await Deno.writeFile(path, text, { mode });
  await Deno.chmod(path, mode); // the mode given at creation is masked by the umask
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** Installs everything; returns what it did. */
export async function install(opts: InstallOptions): Promise<InstallReport> {
  const report: InstallReport = [];
  const p = `${opts.destdir}${opts.prefix}`;
  const etc = `${opts.destdir}${opts.sysconfdir}`;

  const sbin = `${p}/sbin/stacd`;
  if (opts.binary) {
    await put(sbin, await Deno.readFile(opts.binary), 0o755);
    report.push(`${sbin} (binary from ${opts.binary})`);
  } else {
    const lib = `${p}/lib/stacd`;
    await Deno.remove(lib, { recursive: true }).catch(() => {});
    for (
      const item of ["main.ts", "lib", "ffi", "deno.json", "package.json", "package-lock.json"]
    ) {
      await copyTree(`${root}/${item}`, `${lib}/${item}`);
    }
    if (await exists(`${root}/deno.lock`)) await copyTree(`${root}/deno.lock`, `${lib}/deno.lock`);
    const lockText = await Deno.readTextFile(`${root}/package-lock.json`);
    for (const pkg of productionPackages(lockText)) {
      if (await exists(`${root}/${pkg}`)) await copyTree(`${root}/${pkg}`, `${lib}/${pkg}`);
    }
    if (!opts.deno) await put(`${lib}/deno`, await Deno.readFile(Deno.execPath()), 0o755);
    await put(sbin, launcherScript(opts.deno), 0o755);
    report.push(`${sbin} (launcher: deno run of ${lib}/main.ts)`);
  }
  // The same program under its other names: it acts by the name it is called by.
  for (const [name, target] of PROGRAM_LINKS) {
    const link = `${p}/${name}`;
    await Deno.mkdir(link.slice(0, link.lastIndexOf("/")), { recursive: true });
    await Deno.remove(link).catch(() => {});
    await Deno.symlink(target, link);
    report.push(`${link} -> ${target}`);
  }

  // Configuration: an administrator's file is never replaced. 0600: any of
  // them may hold a DH-HMAC-CHAP key.
  for (const name of CONFIGS) {
    const path = `${etc}/stas/${name}`;
    if (await exists(path)) {
      report.push(`${path} (kept: it exists)`);
      continue;
    }
    await put(path, await Deno.readTextFile(`${root}/etc/stas/${name}`), 0o600);
    report.push(path);
  }
  for (const name of POLICIES) {
    const policy = `${etc}/dbus-1/system.d/${name}`;
    await put(policy, await Deno.readTextFile(`${root}/etc/dbus-1/system.d/${name}`), 0o644);
    report.push(policy);
  }

  for (const name of UNITS) {
    const unit = `${p}/lib/systemd/system/${name}`;
    await put(
      unit,
      unitFor(await Deno.readTextFile(`${root}/systemd/${name}`), opts.prefix),
      0o644,
    );
    report.push(unit);
  }

  const built = await Deno.makeTempDir({ prefix: "stacd-man-" });
  try {
    for (const page of await buildManPages(built)) {
      const name = page.slice(page.lastIndexOf("/") + 1);
      const path = `${p}/share/man/man${name.slice(-1)}/${name}`;
      await put(path, await Deno.readTextFile(page), 0o644);
      report.push(path);
    }
  } finally {
    await Deno.remove(built, { recursive: true });
  }
  return report;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      prefix: { type: "string", default: Deno.env.get("PREFIX") ?? "/usr/local" },
      destdir: { type: "string", default: Deno.env.get("DESTDIR") ?? "" },
      sysconfdir: { type: "string", default: Deno.env.get("SYSCONFDIR") ?? "/etc" },
      binary: { type: "string" },
      launcher: { type: "boolean", default: false },
      deno: { type: "string" },
    },
  });
  const compiled = `${root}/out/stacd`;
  const binary = values.launcher
    ? undefined
    : values.binary ?? (await exists(compiled) ? compiled : undefined);
  const strip = (dir: string) => dir.replace(/\/+$/, "");
  const report = await install({
    prefix: strip(values.prefix),
    destdir: strip(values.destdir),
    sysconfdir: strip(values.sysconfdir),
    binary,
    deno: values.deno,
  });
  for (const line of report) console.log(`install: ${line}`);
  if (!values.destdir) {
    console.log("install: now `systemctl daemon-reload && systemctl reload dbus`, then");
    console.log("install: `systemctl enable --now stafd stacd` (see docs/deploy.md)");
  }
}
