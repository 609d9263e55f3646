import assert from "node:assert/strict";
import { parseCommandLine, UsageError } from "../../../lib/cli/daemon_args.ts";

Deno.test("parseCommandLine() accepts upstream's options in both spellings", () => {
  assert.deepEqual(parseCommandLine(["-f", "/x.conf", "-s", "--tron"]), {
    kind: "daemon",
    confFile: "/x.conf",
    syslog: true,
    tron: true,
  });
  assert.deepEqual(parseCommandLine(["--conf-file=/y.conf"]), {
    kind: "daemon",
    confFile: "/y.conf",
    syslog: false,
    tron: false,
  });
  assert.deepEqual(parseCommandLine(["--idl=/tmp/i.xml"]), { kind: "idl", file: "/tmp/i.xml" });
  assert.deepEqual(parseCommandLine(["-v"]), { kind: "version" });
  assert.deepEqual(parseCommandLine(["--version"]), { kind: "version" });
  assert.deepEqual(parseCommandLine(["-h"]), { kind: "help" });
});

Deno.test("parseCommandLine() defaults the configuration file to /etc/stas/stacd.conf", () => {
  assert.deepEqual(parseCommandLine(["--dump-config"]), {
    kind: "dump-config",
    confFile: "/etc/stas/stacd.conf",
  });
});

Deno.test("parseCommandLine() rejects unknown options and stray arguments with one line", () => {
  assert.throws(() => parseCommandLine(["--bogus"]), UsageError);
  assert.throws(() => parseCommandLine(["extra"]), UsageError);
  assert.throws(() => parseCommandLine(["--idl="]), /--idl needs a file name/);
});

Deno.test("stafd's command line is stacd's, with stafd.conf as the default file", () => {
  assert.deepEqual(parseCommandLine(["-s"], "stafd"), {
    kind: "daemon",
    confFile: "/etc/stas/stafd.conf",
    syslog: true,
    tron: false,
  });
  assert.deepEqual(parseCommandLine(["--dump-config"], "stafd"), {
    kind: "dump-config",
    confFile: "/etc/stas/stafd.conf",
  });
  assert.throws(() => parseCommandLine(["--finder"], "stafd"), UsageError);
});

Deno.test("stacd --finder runs the finder in process, with stafd.conf or --stafd-conf", () => {
  assert.deepEqual(parseCommandLine(["--finder"]), {
    kind: "daemon",
    confFile: "/etc/stas/stacd.conf",
    syslog: false,
    tron: false,
    finderConf: "/etc/stas/stafd.conf",
  });
  assert.equal(
    (parseCommandLine(["--finder", "--stafd-conf=/k/stafd.conf"]) as { finderConf: string })
      .finderConf,
    "/k/stafd.conf",
  );
  assert.throws(
    () => parseCommandLine(["--stafd-conf=/k/stafd.conf"]),
    /--stafd-conf is for --finder/,
  );
});
