/**
 * systemd/stacd.service's sandbox, rebuilt for the test guest without systemd
 * (the guest's PID 1 is a busybox init): its capability bounding set and "no
 * new privileges" through setpriv(1), its read-only /sys except the fabrics
 * controllers (ProtectKernelTunables= + ReadWritePaths=) through a private
 * mount namespace, and its system call filter and address families checked
 * by tracing stacd's calls with strace(1). The root file system is already
 * read-only in the guest (ProtectSystem=strict), /run and /tmp are not.
 */
import { parseUnit, valuesOf } from "../../build/systemd_unit.ts";

const root = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");

/** What the guest applies or checks of the unit. */
export interface UnitSandbox {
  /** setpriv --bounding-set argument, e.g. "-all,+net_admin". */
  boundingSet: string;
  /** Paths of ReadWritePaths= (under /sys: kept writable in a read-only /sys). */
  readWritePaths: string[];
  /** Address families of RestrictAddressFamilies=, e.g. "AF_UNIX". */
  addressFamilies: Set<string>;
  /** x86_64 system calls the SystemCallFilter= lines allow. */
  allowedSyscalls: Set<string>;
}

/** Reads systemd/stacd.service and resolves its filter groups with `systemd-analyze`. */
export async function unitSandbox(
  unitPath = `${root}/systemd/stacd.service`,
): Promise<UnitSandbox> {
  const entries = parseUnit(await Deno.readTextFile(unitPath));
  const caps = valuesOf(entries, "CapabilityBoundingSet").join(" ").split(/\s+/).filter(Boolean);
  const groups = parseSyscallGroups(await analyzeSyscallFilter());
  return {
    boundingSet: ["-all", ...caps.map((c) => `+${c.replace(/^CAP_/, "").toLowerCase()}`)].join(","),
    readWritePaths: valuesOf(entries, "ReadWritePaths").flatMap((v) => v.split(/\s+/)),
    addressFamilies: new Set(valuesOf(entries, "RestrictAddressFamilies").join(" ").split(/\s+/)),
    allowedSyscalls: allowedSyscalls(valuesOf(entries, "SystemCallFilter"), groups),
  };
}

async function analyzeSyscallFilter(): Promise<string> {
  const r = await new Deno.Command("systemd-analyze", { args: ["syscall-filter"] }).output();
  if (r.code !== 0) throw new Error(`systemd-analyze syscall-filter: exit ${r.code}`);
  return new TextDecoder().decode(r.stdout);
}

/** `systemd-analyze syscall-filter` output: group name -> members (calls and @groups). */
export function parseSyscallGroups(text: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (raw.startsWith("@")) groups.set(line, current = []);
    else if (line && !line.startsWith("#") && current) current.push(line);
  }
  return groups;
}

function expand(name: string, groups: Map<string, string[]>, seen = new Set<string>()): string[] {
  if (!name.startsWith("@")) return [name];
  if (seen.has(name)) return [];
  seen.add(name);
  const members = groups.get(name);
  if (!members) throw new Error(`Unknown system call group ${name}`);
  return members.flatMap((m) => expand(m, groups, seen));
}

/**
 * systemd's rule: the first SystemCallFilter= line is an allow list (no "~")
 * or a deny list; later lines of the same kind add to it, "~" lines then
 * remove. Only the allow-list form is handled: it is what the unit uses.
 */
export function allowedSyscalls(lines: string[], groups: Map<string, string[]>): Set<string> {
  if (lines.length === 0 || lines[0]!.startsWith("~")) {
    throw new Error("SystemCallFilter= must start with an allow list");
  }
  const allowed = new Set<string>();
  for (const line of lines) {
    const deny = line.startsWith("~");
    for (const item of line.replace(/^~/, "").split(/\s+/).filter(Boolean)) {
      for (const call of expand(item, groups)) deny ? allowed.delete(call) : allowed.add(call);
    }
  }
  return allowed;
}

/** The x86_64 system call names, from the kernel headers (linux-libc-dev). */
export function x86_64Syscalls(
  header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
): string[] {
  return [...Deno.readTextFileSync(header).matchAll(/^#define __NR_(\w+)\s+\d+/gm)].map((m) =>
    m[1]!
  );
}

/**
 * strace arguments that stop only on what the unit would refuse (any call
 * outside `allowed`) plus `socket` and `openat`, whose arguments tell the
 * address families and the paths: with --seccomp-bpf everything else runs
 * untraced, at full speed.
 */
export function straceArgs(sandbox: UnitSandbox, outFile: string): string[] {
  const watched = x86_64Syscalls().filter((c) =>
    !sandbox.allowedSyscalls.has(c) || c === "socket" || c === "openat"
  );
  // -ff: one file per thread (outFile.PID), so no call is split into
  // "unfinished" and "resumed" halves and each line ends with its result.
  return [
    "-ff",
    "--seccomp-bpf",
    "-qq",
    "-s",
    "256",
    "-o",
    outFile,
    `--trace=${watched.map((c) => `?${c}`).join(",")}`,
  ];
}

/** What a trace shows: calls the filter refuses, families asked for, paths opened for writing. */
export interface TraceFindings {
  refused: Set<string>;
  families: Set<string>;
  writtenPaths: Set<string>;
  devicesOpened: Set<string>;
}

/** Reads the per-thread files that {@linkcode straceArgs} made with `outFile`. */
export function readTraceFiles(outFile: string, sandbox: UnitSandbox): TraceFindings {
  const dir = outFile.slice(0, outFile.lastIndexOf("/"));
  const base = outFile.slice(outFile.lastIndexOf("/") + 1);
  const text = [...Deno.readDirSync(dir)]
    .filter((e) => e.name.startsWith(`${base}.`))
    .map((e) => Deno.readTextFileSync(`${dir}/${e.name}`))
    .join("\n");
  return readTrace(text, sandbox);
}

export function readTrace(text: string, sandbox: UnitSandbox): TraceFindings {
  const f: TraceFindings = {
    refused: new Set(),
    families: new Set(),
    writtenPaths: new Set(),
    devicesOpened: new Set(),
  };
  for (const line of text.split("\n")) {
    const call = line.match(/^(\w+)\(/)?.[1];
    if (!call) continue;
    if (call === "socket") f.families.add(line.match(/socket\((\w+)/)?.[1] ?? "?");
    if (call === "openat") {
      const path = line.match(/openat\([^,]+, "([^"]*)"/)?.[1];
      // Only opens that succeeded: a refused one (EROFS) is the sandbox working.
      const opened = /\) = \d+/.test(line);
      if (path && opened && /O_WRONLY|O_RDWR|O_CREAT/.test(line)) f.writtenPaths.add(path);
      if (path?.startsWith("/dev/")) f.devicesOpened.add(path);
    }
    if (!sandbox.allowedSyscalls.has(call)) f.refused.add(call);
  }
  return f;
}

/**
 * The shell command that starts `command` as the unit would: a private mount
 * namespace with /sys and /proc/sys read-only except the unit's
 * ReadWritePaths, then setpriv with the bounding set and no new privileges.
 */
export function confinedCommand(sandbox: UnitSandbox, command: string[]): string[] {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const rw = sandbox.readWritePaths.filter((p) => p.startsWith("/sys/"));
  const script = [
    "set -e",
    ...rw.map((p) => `mount --bind ${q(p)} ${q(p)}`),
    "mount --bind /proc/sys /proc/sys",
    "mount -o remount,bind,ro /proc/sys",
    "mount -o remount,bind,ro /sys",
    `exec setpriv --bounding-set=${sandbox.boundingSet} --inh-caps=-all --ambient-caps=-all ` +
    `--no-new-privs -- ${command.map(q).join(" ")}`,
  ].join("\n");
  return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script];
}
