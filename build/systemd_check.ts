/**
 * `deno task check:systemd`: the unit as installed must pass
 * `systemd-analyze verify` (its man pages included), and its exposure
 * (`systemd-analyze security --offline=true`) must beat a unit that carries
 * only the hardening of upstream nvme-stas's stacd.service. Both scores are
 * printed; exit 1 if either check fails.
 *
 * verify needs ExecStart= to exist and Documentation= man pages to be found,
 * so the unit is checked as `deno task install` lays it out in a temporary
 * DESTDIR (launcher, man pages), with ExecStart= pointing into it.
 */
import { install } from "./install.ts";
import { parseUnit, renderUnit } from "./systemd_unit.ts";

/** Upstream's hardening (issue 5's list), the baseline ours must beat. */
export const UPSTREAM_HARDENING: readonly [string, string][] = [
  ["ProtectHome", "true"],
  ["ProtectKernelModules", "true"],
  ["ProtectKernelLogs", "true"],
  ["ProtectControlGroups", "true"],
  ["ProtectProc", "invisible"],
  ["RestrictRealtime", "true"],
  ["LockPersonality", "yes"],
];

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

/** Our unit with its sandbox replaced by upstream's hardening only. */
export function upstreamHardeningUnit(unitText: string): string {
  const entries = parseUnit(unitText).filter((e) =>
    e.section !== "Service" || SERVICE_BASICS.has(e.key)
  );
  const at = entries.findIndex((e) => e.section === "Install");
  const hardening = UPSTREAM_HARDENING.map(([key, value]) => ({ section: "Service", key, value }));
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

/** Installs into a temporary DESTDIR and checks there; returns both scores and problems. */
export async function checkUnit(): Promise<
  { ours: number; upstream: number; problems: string[]; table: string }
> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-unit-check-" });
  try {
    const destdir = `${dir}/root`;
    await install({ prefix: "/usr", destdir, sysconfdir: "/etc", deno: Deno.execPath() });
    const installed = await Deno.readTextFile(`${destdir}/usr/lib/systemd/system/stacd.service`);
    // The file name is the unit name systemd-analyze reports: keep stacd.service.
    const ours = `${dir}/stacd.service`;
    await Deno.writeTextFile(
      ours,
      installed.replace(/^ExecStart=\/usr\/sbin\/stacd/m, `ExecStart=${destdir}/usr/sbin/stacd`),
    );
    await Deno.mkdir(`${dir}/upstream`);
    const upstream = `${dir}/upstream/stacd.service`;
    await Deno.writeTextFile(upstream, upstreamHardeningUnit(await Deno.readTextFile(ours)));

    const problems = (await verify(ours, `${destdir}/usr/share/man`)).map((l) => `verify: ${l}`);
    const a = await exposure(ours);
    const b = await exposure(upstream);
    if (!(a.score < b.score)) {
      problems.push(`exposure ${a.score} is not below upstream-only hardening's ${b.score}`);
    }
    return { ours: a.score, upstream: b.score, problems, table: a.table };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const r = await checkUnit();
  if (Deno.args.includes("--table")) console.log(r.table);
  console.log(
    `systemd/stacd.service: systemd-analyze verify ${
      r.problems.some((p) => p.startsWith("verify")) ? "FAILED" : "clean"
    }`,
  );
  console.log(`exposure (systemd-analyze security --offline=true, 0 best, 10 worst):`);
  console.log(`  systemd/stacd.service              ${r.ours.toFixed(1)}`);
  console.log(`  same unit, upstream hardening only ${r.upstream.toFixed(1)}`);
  for (const p of r.problems) console.error(`check:systemd: ${p}`);
  Deno.exit(r.problems.length > 0 ? 1 : 0);
}
