/**
 * `deno task install` (build/install.ts) into a temporary DESTDIR: where
 * every file lands, with which mode, that an administrator's config is never
 * replaced, and that the installed launcher runs, as stacd and through its
 * links as stafd, stacctl and stafctl.
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

Deno.test("install places launcher, links, units, bus policies, man pages and 0600 configs", async () => {
  await inTempDir(async (dest) => {
    await install({ prefix: "/usr", destdir: dest, sysconfdir: "/etc", deno: Deno.execPath() });
    const u = `${dest}/usr`;
    assert.equal(mode(`${u}/sbin/stacd`), 0o755);
    // stafd, stacctl and stafctl are the same program, called by another name.
    assert.equal(Deno.readLinkSync(`${u}/sbin/stafd`), "stacd");
    assert.equal(Deno.readLinkSync(`${u}/bin/stacctl`), "../sbin/stacd");
    assert.equal(Deno.readLinkSync(`${u}/bin/stafctl`), "../sbin/stacd");
    for (const conf of ["stacd.conf", "stafd.conf", "sys.conf"]) {
      assert.equal(mode(`${dest}/etc/stas/${conf}`), 0o600, conf);
      assert.equal(
        Deno.readTextFileSync(`${dest}/etc/stas/${conf}`),
        Deno.readTextFileSync(`${root}etc/stas/${conf}`),
      );
    }
    for (const policy of ["org.nvmexpress.stac.conf", "org.nvmexpress.staf.conf"]) {
      assert.equal(mode(`${dest}/etc/dbus-1/system.d/${policy}`), 0o644, policy);
      assert.equal(
        Deno.readTextFileSync(`${dest}/etc/dbus-1/system.d/${policy}`),
        Deno.readTextFileSync(`${root}etc/dbus-1/system.d/${policy}`),
      );
    }
    for (const daemon of ["stacd", "stafd"]) {
      const unit = `${u}/lib/systemd/system/${daemon}.service`;
      assert.equal(mode(unit), 0o644, unit);
      assert.match(
        Deno.readTextFileSync(unit),
        new RegExp(`^ExecStart=/usr/sbin/${daemon} --syslog$`, "m"),
      );
    }
    for (
      const page of [
        "man1/stacctl.1",
        "man5/stacd.conf.5",
        "man5/org.nvmexpress.stac.5",
        "man1/stafctl.1",
        "man5/stafd.conf.5",
      ]
    ) {
      assert.match(Deno.readTextFileSync(`${u}/share/man/${page}`), /^\.TH /, page);
    }
    for (
      const page of ["man8/stacd.8", "man8/stacd.service.8", "man8/stafd.8", "man8/stafd.service.8"]
    ) {
      assert.ok(Deno.statSync(`${u}/share/man/${page}`).isFile, page);
    }
    // The launcher runs the installed copy (found relative to itself, so from DESTDIR too).
    const version = await output(`${u}/sbin/stacd`, ["--version"]);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^stacd \d/);
    const ctl = await output(`${u}/bin/stacctl`, ["--help"]);
    assert.match(ctl.stdout, /^Usage: stacctl/);
    // Through the links, the launcher runs the program of the link's name.
    const stafd = await output(`${u}/sbin/stafd`, ["--help"]);
    assert.equal(stafd.code, 0);
    assert.match(stafd.stdout, /^Usage: stafd /);
    assert.match(stafd.stdout, /default: \/etc\/stas\/stafd\.conf/);
    assert.match((await output(`${u}/sbin/stafd`, ["--version"])).stdout, /^stafd \d/);
    const stafctl = await output(`${u}/bin/stafctl`, ["--help"]);
    assert.equal(stafctl.code, 0);
    assert.match(stafctl.stdout, /^Usage: stafctl/);
    assert.ok(Deno.statSync(`${u}/lib/stacd/node_modules/dbus-next`).isDirectory);
    assert.throws(() => Deno.statSync(`${u}/lib/stacd/node_modules/deno`), "no dev package");
  });
});

Deno.test("install never replaces an existing stacd.conf, stafd.conf or sys.conf", async () => {
  await inTempDir(async (dest) => {
    await Deno.mkdir(`${dest}/etc/stas`, { recursive: true });
    await Deno.writeTextFile(`${dest}/etc/stas/stacd.conf`, "[Controllers]\n# mine\n");
    await Deno.writeTextFile(`${dest}/etc/stas/stafd.conf`, "[Global]\n# mine too\n");
    const report = await install({
      prefix: "/usr/local",
      destdir: dest,
      sysconfdir: "/etc",
      deno: Deno.execPath(),
    });
    assert.equal(Deno.readTextFileSync(`${dest}/etc/stas/stacd.conf`), "[Controllers]\n# mine\n");
    assert.ok(report.some((l) => l.endsWith("stacd.conf (kept: it exists)")), report.join("\n"));
    assert.equal(Deno.readTextFileSync(`${dest}/etc/stas/stafd.conf`), "[Global]\n# mine too\n");
    assert.ok(report.some((l) => l.endsWith("stafd.conf (kept: it exists)")), report.join("\n"));
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
    // The binary tells the name it is called by itself (argv0): stafd is a link to it.
    assert.equal(Deno.readLinkSync(`${p}/sbin/stafd`), "stacd");
    assert.equal(Deno.readTextFileSync(`${p}/sbin/stafd`), "#!/bin/sh\necho compiled\n");
    assert.match(
      Deno.readTextFileSync(`${p}/lib/systemd/system/stacd.service`),
      /^ExecStart=\/usr\/local\/sbin\/stacd --syslog$/m,
    );
    assert.match(
      Deno.readTextFileSync(`${p}/lib/systemd/system/stafd.service`),
      /^ExecStart=\/usr\/local\/sbin\/stafd --syslog$/m,
    );
  });
});

Deno.test("unitFor() and launcherScript() point at the installed paths", () => {
  assert.match(
    unitFor("ExecStart=/usr/sbin/stacd -s\n", "/opt/x"),
    /^ExecStart=\/opt\/x\/sbin\/stacd -s$/m,
  );
  assert.match(
    unitFor("ExecStart=/usr/sbin/stafd -s\n", "/opt/x"),
    /^ExecStart=\/opt\/x\/sbin\/stafd -s$/m,
  );
  assert.equal(unitFor("ExecStart=/usr/sbin/stacdx\n", "/opt/x"), "ExecStart=/usr/sbin/stacdx\n");
  assert.match(launcherScript(undefined), /^exec "\$lib\/deno" run --allow-all /m);
  assert.match(launcherScript("/usr/bin/deno"), /^exec '\/usr\/bin\/deno' run --allow-all /m);
  assert.ok(
    productionPackages(Deno.readTextFileSync(`${root}package-lock.json`)).includes(
      "node_modules/dbus-next",
    ),
  );
});

Deno.test("the launcher passes the name it is called by on to main.ts", async () => {
  await inTempDir(async (dir) => {
    // A "deno" that prints its arguments after main.ts, one per line.
    await Deno.writeTextFile(
      `${dir}/deno`,
      '#!/bin/sh\nwhile [ "$#" -gt 0 ]; do case $1 in *main.ts) shift; break ;; esac; shift; done\n' +
        'for a in "$@"; do echo "$a"; done\n',
      { mode: 0o755 },
    );
    await Deno.mkdir(`${dir}/sbin`);
    await Deno.writeTextFile(`${dir}/sbin/stacd`, launcherScript(`${dir}/deno`), { mode: 0o755 });
    for (const name of ["stafd", "stacctl", "stafctl"]) {
      await Deno.symlink(`${dir}/sbin/stacd`, `${dir}/sbin/${name}`);
    }
    const args = async (name: string) =>
      (await output(`${dir}/sbin/${name}`, ["-x", "a b"])).stdout.split("\n").slice(0, -1);
    assert.deepEqual(await args("stacd"), ["-x", "a b"]);
    assert.deepEqual(await args("stafd"), ["stafd", "-x", "a b"]);
    assert.deepEqual(await args("stacctl"), ["ctl", "-x", "a b"]);
    assert.deepEqual(await args("stafctl"), ["stafctl", "-x", "a b"]);
  });
});
