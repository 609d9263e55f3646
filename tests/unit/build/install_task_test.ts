/**
 * `deno task install` (build/install.ts) into a temporary DESTDIR: where
 * every file lands, with which mode, that an administrator's config is never
 * replaced, and that the installed launcher (and stacctl through its link)
 * runs.
 */
import assert from "node:assert/strict";
import { install, launcherScript, productionPackages, unitFor } from "../../../build/install.ts";

const root = decodeURIComponent(new URL("../../../", import.meta.url).pathname);
const mode = (path: string) => Deno.statSync(path).mode! & 0o7777;

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-install-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function output(cmd: string, args: string[]) {
  const r = await new Deno.Command(cmd, { args, stdin: "null", env: { NO_COLOR: "1" } }).output();
  return { code: r.code, stdout: new TextDecoder().decode(r.stdout) };
}

Deno.test("install places launcher, stacctl link, unit, bus policy, man pages and 0600 configs", async () => {
  await inTempDir(async (dest) => {
    await install({ prefix: "/usr", destdir: dest, sysconfdir: "/etc", deno: Deno.execPath() });
    const u = `${dest}/usr`;
    assert.equal(mode(`${u}/sbin/stacd`), 0o755);
    assert.equal(Deno.readLinkSync(`${u}/bin/stacctl`), "../sbin/stacd");
    assert.equal(mode(`${dest}/etc/stas/stacd.conf`), 0o600);
    assert.equal(mode(`${dest}/etc/stas/sys.conf`), 0o600);
    assert.equal(
      Deno.readTextFileSync(`${dest}/etc/dbus-1/system.d/org.nvmexpress.stac.conf`),
      Deno.readTextFileSync(`${root}etc/dbus-1/system.d/org.nvmexpress.stac.conf`),
    );
    assert.match(
      Deno.readTextFileSync(`${u}/lib/systemd/system/stacd.service`),
      /^ExecStart=\/usr\/sbin\/stacd --syslog$/m,
    );
    for (const page of ["man1/stacctl.1", "man5/stacd.conf.5", "man5/org.nvmexpress.stac.5"]) {
      assert.match(Deno.readTextFileSync(`${u}/share/man/${page}`), /^\.TH /, page);
    }
    for (const page of ["man8/stacd.8", "man8/stacd.service.8"]) {
      assert.ok(Deno.statSync(`${u}/share/man/${page}`).isFile, page);
    }
    // The launcher runs the installed copy (found relative to itself, so from DESTDIR too).
    const version = await output(`${u}/sbin/stacd`, ["--version"]);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^stacd \d/);
    const ctl = await output(`${u}/bin/stacctl`, ["--help"]);
    assert.match(ctl.stdout, /^Usage: stacctl/);
    assert.ok(Deno.statSync(`${u}/lib/stacd/node_modules/dbus-next`).isDirectory);
    assert.throws(() => Deno.statSync(`${u}/lib/stacd/node_modules/deno`), "no dev package");
  });
});

Deno.test("install never replaces an existing stacd.conf or sys.conf", async () => {
  await inTempDir(async (dest) => {
    await Deno.mkdir(`${dest}/etc/stas`, { recursive: true });
    await Deno.writeTextFile(`${dest}/etc/stas/stacd.conf`, "[Controllers]\n# mine\n");
    const report = await install({
      prefix: "/usr/local",
      destdir: dest,
      sysconfdir: "/etc",
      deno: Deno.execPath(),
    });
    assert.equal(Deno.readTextFileSync(`${dest}/etc/stas/stacd.conf`), "[Controllers]\n# mine\n");
    assert.ok(report.some((l) => l.endsWith("stacd.conf (kept: it exists)")), report.join("\n"));
    assert.ok(Deno.statSync(`${dest}/etc/stas/sys.conf`).isFile, "the missing one is added");
  });
});

Deno.test("install of a compiled binary copies it; the unit follows the prefix", async () => {
  await inTempDir(async (dir) => {
    const binary = `${dir}/stacd-built`;
    await Deno.writeTextFile(binary, "#!/bin/sh\necho compiled\n", { mode: 0o755 });
    const dest = `${dir}/root`;
    await install({ prefix: "/usr/local", destdir: dest, sysconfdir: "/etc", binary });
    const p = `${dest}/usr/local`;
    assert.equal(Deno.readTextFileSync(`${p}/sbin/stacd`), "#!/bin/sh\necho compiled\n");
    assert.equal(mode(`${p}/sbin/stacd`), 0o755);
    assert.throws(() => Deno.statSync(`${p}/lib/stacd`), "no launcher files");
    assert.match(
      Deno.readTextFileSync(`${p}/lib/systemd/system/stacd.service`),
      /^ExecStart=\/usr\/local\/sbin\/stacd --syslog$/m,
    );
  });
});

Deno.test("unitFor() and launcherScript() point at the installed paths", () => {
  assert.match(
    unitFor("ExecStart=/usr/sbin/stacd -s\n", "/opt/x"),
    /^ExecStart=\/opt\/x\/sbin\/stacd -s$/m,
  );
  assert.match(launcherScript(undefined), /^exec "\$lib\/deno" run --allow-all /m);
  assert.match(launcherScript("/usr/bin/deno"), /^exec '\/usr\/bin\/deno' run --allow-all /m);
  assert.ok(
    productionPackages(Deno.readTextFileSync(`${root}package-lock.json`)).includes(
      "node_modules/dbus-next",
    ),
  );
});
