/**
 * `deno task check:systemd`: each unit (systemd/stacd.service and
 * systemd/stafd.service) as installed must pass `systemd-analyze verify`
 * (its man pages included), and its exposure (`systemd-analyze security
 * --offline=true`) must beat the same unit carrying only the hardening of
 * upstream nvme-stas's unit of that daemon. The scores are printed; exit 1
 * if any check fails.
 *
 * verify needs ExecStart= to exist and Documentation= man pages to be found,
 * so the units are checked as `deno task install` lays them out in a
 * temporary DESTDIR (launcher, stafd link, man pages), with ExecStart=
 * pointing into it.
 */
import { install } from "./install.ts";
import { parseUnit, renderUnit } from "./systemd_unit.ts";

/** Upstream's stacd hardening (issue 5's list), the baseline stacd.service must beat. */
export const UPSTREAM_HARDENING: readonly [string, string][] = [
  ["ProtectHome", "true"],
  ["ProtectKernelModules", "true"],
  ["ProtectKernelLogs", "true"],
  ["ProtectControlGroups", "true"],
  ["ProtectProc", "invisible"],
  ["RestrictRealtime", "true"],
  ["LockPersonality", "yes"],
];

/**
 * The hardening of upstream nvme-stas 2.4.1's stafd.service (its
 * usr/lib/systemd/system/stafd.service, all of it), the baseline
 * stafd.service must beat. MemoryDenyWriteExecute= is one that ours cannot
 * have (V8's JIT).
 */
export const UPSTREAM_STAFD_HARDENING: readonly [string, string][] = [
  ...UPSTREAM_HARDENING,
  ["MemoryDenyWriteExecute", "yes"],
];

/** The units shipped in systemd/, by daemon. */
export type UnitName = "stacd" | "stafd";
export const UNIT_NAMES: readonly UnitName[] = ["stacd", "stafd"];

/** Each daemon's upstream hardening. */
export const UPSTREAM_HARDENING_OF: Readonly<Record<UnitName, readonly [string, string][]>> = {
  stacd: UPSTREAM_HARDENING,
  stafd: UPSTREAM_STAFD_HARDENING,
};

/** [Service] options that are not sandboxing: kept in the baseline unit. */
const SERVICE_BASICS = new Set([
  "Type",
  "NotifyAccess",
  "BusName",
  "ExecStart",
  "ExecReload",
  "SyslogIdentifier",
  "Restart",
  "RestartSec",
  "RuntimeDirectory",
  "RuntimeDirectoryMode",
  "RuntimeDirectoryPreserve",
]);

/** Our unit with its sandbox replaced by upstream's hardening (`upstream`) only. */
export function upstreamHardeningUnit(
  unitText: string,
  upstream: readonly [string, string][] = UPSTREAM_HARDENING,
): string {
  const entries = parseUnit(unitText).filter((e) =>
    e.section !== "Service" || SERVICE_BASICS.has(e.key)
  );
  const at = entries.findIndex((e) => e.section === "Install");
  const hardening = upstream.map(([key, value]) => ({ section: "Service", key, value }));
  return renderUnit([...entries.slice(0, at), ...hardening, ...entries.slice(at)]);
}

async function run(cmd: string, args: string[], env?: Record<string, string>) {
  const r = await new Deno.Command(cmd, { args, env, stdin: "null" }).output();
  const text = new TextDecoder();
  return { code: r.code, out: text.decode(r.stdout), err: text.decode(r.stderr) };
}

/** `systemd-analyze security --offline=true` of a unit file: the overall exposure (0-10). */
export async function exposure(unitFile: string): Promise<{ score: number; table: string }> {
  const r = await run("systemd-analyze", ["security", "--offline=true", "--no-pager", unitFile]);
  const m = r.out.match(/Overall exposure level for \S+: ([\d.]+)/);
  if (!m) throw new Error(`systemd-analyze security ${unitFile}: no score (${r.err.trim()})`);
  return { score: Number(m[1]), table: r.out };
}

/** `systemd-analyze verify`; resolves with its complaints (empty: clean). */
export async function verify(unitFile: string, manPath: string): Promise<string[]> {
  const r = await run("systemd-analyze", ["verify", "--no-pager", unitFile], {
    ...Deno.env.toObject(),
    MANPATH: manPath,
  });
  const lines = (r.out + r.err).split("\n").filter((l) => l.trim() !== "");
  return r.code === 0 ? lines : [...lines, `exit ${r.code}`];
}

/** One unit's results. */
export interface UnitCheck {
  name: UnitName;
  ours: number;
  upstream: number;
  problems: string[];
  table: string;
}

/** Installs into a temporary DESTDIR and checks `names` there; returns scores and problems. */
export async function checkUnits(names: readonly UnitName[] = UNIT_NAMES): Promise<UnitCheck[]> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-unit-check-" });
  try {
    const destdir = `${dir}/root`;
    await install({ prefix: "/usr", destdir, sysconfdir: "/etc", deno: Deno.execPath() });
    const results: UnitCheck[] = [];
    for (const name of names) {
      const unitName = `${name}.service`;
      const installed = await Deno.readTextFile(`${destdir}/usr/lib/systemd/system/${unitName}`);
      // The file name is the unit name systemd-analyze reports: keep it.
      await Deno.mkdir(`${dir}/ours`, { recursive: true });
      const ours = `${dir}/ours/${unitName}`;
      await Deno.writeTextFile(
        ours,
        installed.replace(
          new RegExp(`^ExecStart=/usr/sbin/${name}\\b`, "m"),
          `ExecStart=${destdir}/usr/sbin/${name}`,
        ),
      );
      await Deno.mkdir(`${dir}/upstream`, { recursive: true });
      const upstream = `${dir}/upstream/${unitName}`;
      await Deno.writeTextFile(
        upstream,
        upstreamHardeningUnit(await Deno.readTextFile(ours), UPSTREAM_HARDENING_OF[name]),
      );

      const problems = (await verify(ours, `${destdir}/usr/share/man`)).map((l) => `verify: ${l}`);
      const a = await exposure(ours);
      const b = await exposure(upstream);
      if (!(a.score < b.score)) {
        problems.push(`exposure ${a.score} is not below upstream-only hardening's ${b.score}`);
      }
      results.push({ name, ours: a.score, upstream: b.score, problems, table: a.table });
    }
    return results;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** checkUnits() of one unit. */
export async function checkUnit(name: UnitName = "stacd"): Promise<UnitCheck> {
  return (await checkUnits([name]))[0]!;
}

if (import.meta.main) {
  const results = await checkUnits();
  let failed = false;
  for (const r of results) {
    const unit = `systemd/${r.name}.service`;
    if (Deno.args.includes("--table")) console.log(r.table);
    console.log(
      `${unit}: systemd-analyze verify ${
        r.problems.some((p) => p.startsWith("verify")) ? "FAILED" : "clean"
      }`,
    );
    console.log(`  exposure (systemd-analyze security --offline=true, 0 best, 10 worst):`);
    console.log(`    ${unit.padEnd(34)} ${r.ours.toFixed(1)}`);
    console.log(`    ${"same unit, upstream hardening only".padEnd(34)} ${r.upstream.toFixed(1)}`);
    for (const p of r.problems) console.error(`check:systemd: ${unit}: ${p}`);
    failed ||= r.problems.length > 0;
  }
  Deno.exit(failed ? 1 : 0);
}
