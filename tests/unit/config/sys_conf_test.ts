import assert from "node:assert/strict";
import { HostNqnError, loadSysConfig } from "../../../lib/config/sys_conf.ts";
import {
  CONFIG_FILE_MAX_BYTES,
  denoTextFileReader,
  FileReadError,
  type TextFileReader,
  VALUE_FILE_MAX_BYTES,
} from "../../../lib/config/text_file.ts";

const UUID = "8b5c7a2e-3f1d-4c6b-9a0e-1d2c3b4a5f60";
const NQN = `nqn.2014-08.org.nvmexpress:uuid:${UUID}`;
const KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";
const BAD_KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2m:";

/** A file system made of `files`; a value of null makes the read fail. */
function fakeFs(files: Record<string, string | null>): TextFileReader {
  return {
    readTextFile(path) {
      const text = files[path];
      if (text === null) throw new Error("Permission denied (os error 13)");
      return text;
    },
  };
}

Deno.test("loadSysConfig() reads nqn, id, key and symname from [Host]", () => {
  const fs = fakeFs({
    "/etc/stas/sys.conf":
      `[Host]\nnqn = ${NQN}\nid = ${UUID.toUpperCase()}\nkey = ${KEY}\nsymname = my host\n`,
  });
  const { config, diagnostics } = loadSysConfig(fs);
  assert.deepEqual(config, {
    hostNqn: NQN,
    hostId: UUID,
    hostKey: KEY,
    hostSymname: "my host",
    keyFiles: ["/etc/stas/sys.conf"],
  });
  assert.deepEqual(diagnostics, []);
});

Deno.test("loadSysConfig() reads the first word of a file:// value", () => {
  const fs = fakeFs({
    "/etc/stas/sys.conf": "[Host]\nnqn = file:///srv/nqn\nkey=file:///srv/key\n",
    "/srv/nqn": `  ${NQN}  trailing words\nsecond line\n`,
    "/srv/key": `${KEY}\n`,
  });
  const { config } = loadSysConfig(fs);
  assert.equal(config.hostNqn, NQN);
  assert.equal(config.hostKey, KEY);
  assert.deepEqual(config.keyFiles, ["/srv/key"]);
});

Deno.test("loadSysConfig() without sys.conf uses /etc/nvme/hostnqn, hostid and hostkey", () => {
  const fs = fakeFs({
    "/etc/nvme/hostnqn": `${NQN}\n`,
    "/etc/nvme/hostid": `${UUID}\n`,
    "/etc/nvme/hostkey": `${KEY}\n`,
  });
  const { config, diagnostics } = loadSysConfig(fs);
  assert.deepEqual(config, {
    hostNqn: NQN,
    hostId: UUID,
    hostKey: KEY,
    keyFiles: ["/etc/nvme/hostkey"],
  });
  assert.deepEqual(diagnostics, []);
});

Deno.test("loadSysConfig() uses the /etc/nvme default for an empty value", () => {
  const fs = fakeFs({ "/etc/stas/sys.conf": "[Host]\nnqn =\n", "/etc/nvme/hostnqn": NQN });
  assert.equal(loadSysConfig(fs).config.hostNqn, NQN);
});

Deno.test("loadSysConfig() throws HostNqnError when there is no host NQN", () => {
  assert.throws(() => loadSysConfig(fakeFs({})), (e: unknown) => {
    assert.ok(e instanceof HostNqnError);
    assert.match(e.message, /no host NQN.*\/etc\/nvme\/hostnqn/);
    return true;
  });
});

Deno.test("loadSysConfig() throws HostNqnError for an NQN without the nqn. prefix", () => {
  const fs = fakeFs({ "/etc/stas/sys.conf": "[Host]\nnqn = iqn.2026-01.example:h\n" });
  assert.throws(
    () => loadSysConfig(fs),
    new HostNqnError(
      'host NQN "iqn.2026-01.example:h" from /etc/stas/sys.conf does not start with "nqn."',
      [],
    ),
  );
});

Deno.test("loadSysConfig() throws HostNqnError for an NQN that would add a connect option", () => {
  for (
    const [nqn, why] of [
      ["nqn.2014-08.org.example:h,duplicate_connect", 'contains ","'],
      ["nqn.2014-08.org.example:h=1", 'contains "="'],
      ["nqn.2014-08.org.example:a b", "contains whitespace"],
      ["nqn.2014-08.org.example:h\u0007", "contains a control character"],
    ]
  ) {
    const fs = fakeFs({ "/etc/stas/sys.conf": `[Host]\nnqn = ${nqn}\n` });
    assert.throws(() => loadSysConfig(fs), (e: unknown) => {
      assert.ok(e instanceof HostNqnError, String(e));
      assert.match(e.message, new RegExp(`from /etc/stas/sys.conf ${why}$`));
      return true;
    });
  }
});

Deno.test("loadSysConfig() accepts a 223-byte NQN and throws HostNqnError at 224", () => {
  const nqn = (bytes: number) => `nqn.${"x".repeat(bytes - 4)}`;
  const fs = (n: string) => fakeFs({ "/etc/stas/sys.conf": `[Host]\nnqn=${n}\n` });
  assert.equal(loadSysConfig(fs(nqn(223))).config.hostNqn.length, 223);
  assert.throws(() => loadSysConfig(fs(nqn(224))), HostNqnError);
  // Bytes, not characters: 111 two-byte characters make 226 bytes.
  assert.throws(() => loadSysConfig(fs(`nqn.${"é".repeat(111)}`)), HostNqnError);
});

Deno.test("loadSysConfig() derives the host ID from a uuid-style NQN when none is set", () => {
  const fs = fakeFs({ "/etc/nvme/hostnqn": NQN });
  const { config, diagnostics } = loadSysConfig(fs);
  assert.equal(config.hostId, UUID);
  assert.deepEqual(diagnostics.map((d) => d.level), ["info"]);
});

Deno.test("loadSysConfig() warns about a host ID that is not a UUID", () => {
  const fs = fakeFs({ "/etc/stas/sys.conf": "[Host]\nnqn=nqn.2026-01.example:h\nid=not-a-uuid\n" });
  const { config, diagnostics } = loadSysConfig(fs);
  assert.equal(config.hostId, undefined);
  assert.deepEqual(diagnostics.map((d) => [d.level, d.option, d.message]), [
    ["warning", "id", '[Host] id: "not-a-uuid" from /etc/stas/sys.conf is not a UUID'],
    ["warning", "id", "[Host] id: no host ID; the kernel picks one (6.12 may refuse)"],
  ]);
});

Deno.test("loadSysConfig(): a malformed host key is an error naming file and option, never the key", () => {
  const fs = fakeFs({ "/etc/stas/sys.conf": `[Host]\nnqn=${NQN}\nkey=${BAD_KEY}\n` });
  const { config, diagnostics } = loadSysConfig(fs);
  assert.equal(config.hostKey, undefined);
  assert.equal(
    config.hostKeyProblem,
    "the host key read from /etc/stas/sys.conf fails its CRC-32 check (mistyped?)",
  );
  assert.deepEqual(config.keyFiles, ["/etc/stas/sys.conf"]);
  const errors = diagnostics.filter((d) => d.level === "error");
  assert.equal(errors.length, 1);
  assert.equal(errors[0]?.option, "key");
  assert.equal(
    errors[0]?.message,
    "[Host] key: the host key read from /etc/stas/sys.conf fails its CRC-32 check (mistyped?); " +
      "controllers without a dhchap-secret of their own are not connected",
  );
});

Deno.test("loadSysConfig() reports a file:// target that is missing or unreadable", () => {
  const fs = fakeFs({
    "/etc/stas/sys.conf": "[Host]\nnqn=file:///srv/nqn\nkey=file:///srv/key\n",
    "/srv/key": null,
    "/etc/nvme/hostnqn": NQN,
  });
  assert.throws(() => loadSysConfig(fs), (e: unknown) => {
    assert.ok(e instanceof HostNqnError);
    assert.deepEqual(e.diagnostics.map((d) => d.message), ["[Host] nqn: /srv/nqn does not exist"]);
    return true;
  });
  const fs2 = fakeFs({
    "/etc/stas/sys.conf": `[Host]\nnqn=${NQN}\nkey=file:///srv/key\n`,
    "/srv/key": null,
  });
  const { config, diagnostics } = loadSysConfig(fs2);
  assert.ok(
    diagnostics.some((d) =>
      d.level === "error" &&
      d.message ===
        "[Host] key: the host key is not usable: cannot read /srv/key: Permission denied " +
          "(os error 13); controllers without a dhchap-secret of their own are not connected"
    ),
    diagnostics.map((d) => d.message).join("\n"),
  );
  assert.equal(config.hostKey, undefined);
  assert.match(config.hostKeyProblem ?? "", /cannot read \/srv\/key/);
});

Deno.test("loadSysConfig(): a host key asked for but unusable fails closed; no key file is no key", () => {
  const problem = (files: Record<string, string | null>) =>
    loadSysConfig(fakeFs({ "/etc/nvme/hostnqn": NQN, ...files })).config.hostKeyProblem;
  // Given in sys.conf: missing or empty is a problem.
  assert.match(
    problem({ "/etc/stas/sys.conf": "[Host]\nkey=file:///srv/key\n" }) ?? "",
    /does not exist/,
  );
  assert.match(
    problem({ "/etc/stas/sys.conf": "[Host]\nkey=file:///srv/key\n", "/srv/key": "\n" }) ?? "",
    /is empty/,
  );
  // The default /etc/nvme/hostkey: absent or empty means this host has no key.
  assert.equal(problem({}), undefined);
  assert.equal(problem({ "/etc/nvme/hostkey": "" }), undefined);
  // ... but one that exists and cannot be read is a key that cannot be used.
  assert.match(problem({ "/etc/nvme/hostkey": null }) ?? "", /cannot read \/etc\/nvme\/hostkey/);
});

Deno.test("loadSysConfig() reports unknown sections and options as errors", () => {
  const fs = fakeFs({
    "/etc/stas/sys.conf": `[Host]\nnqn=${NQN}\nhostnqn=x\n[Global]\ntron=true\n`,
  });
  const found = loadSysConfig(fs).diagnostics.filter((d) => d.level === "error");
  assert.deepEqual(found.map((d) => [d.line, d.message]), [
    [3, "[Host] hostnqn: unknown option ignored"],
    [4, "unknown section [Global] ignored"],
  ]);
});

// /etc/nvme/hostnqn in its place could be another identity than sys.conf's.
Deno.test("loadSysConfig() throws for a sys.conf that exists but cannot be read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/sys.conf`, new Uint8Array(CONFIG_FILE_MAX_BYTES + 1));
    assert.throws(() => loadSysConfig(denoTextFileReader, `${dir}/sys.conf`), (e: unknown) => {
      assert.ok(e instanceof FileReadError);
      assert.match(e.message, /sys\.conf: larger than 1 MiB/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSysConfig() refuses file:// targets that are not small regular files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/nqn`, `${NQN}\n`);
    await Deno.writeTextFile(`${dir}/id`, `${UUID}\n${" ".repeat(VALUE_FILE_MAX_BYTES)}`);
    await Deno.writeTextFile(
      `${dir}/sys.conf`,
      `[Host]\nnqn = file://${dir}/nqn\nid = file://${dir}/id\nkey = file:///dev/zero\n`,
    );
    const { config, diagnostics } = loadSysConfig(denoTextFileReader, `${dir}/sys.conf`);
    assert.equal(config.hostNqn, NQN);
    assert.equal(config.hostKey, undefined);
    const messages = diagnostics.map((d) => d.message);
    assert.ok(
      messages.includes(
        `[Host] id: cannot read ${dir}/id: larger than 4 KiB, the limit for this file`,
      ),
      messages.join("\n"),
    );
    assert.ok(
      messages.includes(
        "[Host] key: the host key is not usable: cannot read /dev/zero: not a regular file " +
          "(a character device); controllers without a dhchap-secret of their own are not connected",
      ),
      messages.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
