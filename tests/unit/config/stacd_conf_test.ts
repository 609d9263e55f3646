import assert from "node:assert/strict";
import { denoTextFileReader, FileReadError } from "../../../lib/config/text_file.ts";
import {
  DEFAULT_STACD_CONF,
  defaultStacdConfig,
  holdsSecrets,
  loadStacdConfig,
  parseStacdConfig,
  redactedConfig,
  type StacdConfig,
} from "../../../lib/config/stacd_conf.ts";

const FILE = DEFAULT_STACD_CONF;
const KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";
const CTRL_KEY =
  "DHHC-1:02:Umd2iCLuYk1I/OFexcp5y9YCy39MIVelFlVpkfIu+Me173sY0f9BxZNw77CFhlHUMfrrXw==:";
const BAD_KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2m:";

const parse = (text: string) => parseStacdConfig(text, FILE);
/** Diagnostics as [level, line, message] rows, the form the tables below use. */
const rows = (text: string) => parse(text).diagnostics.map((d) => [d.level, d.line, d.message]);

interface FileCase {
  name: string;
  text: string;
  /** Fields of the effective config that must equal these; the rest must be defaults. */
  config: Partial<StacdConfig>;
  diagnostics: [string, number | undefined, string][];
}

/** Real-world shapes of stacd.conf with the configuration they must give. */
const FILES: FileCase[] = [
  {
    name: "a commented-out template gives the defaults and no diagnostics",
    text: [
      "# Configuration file for stacd(8)",
      "[Global]",
      "#tron=false",
      "   ; kato=30",
      "",
      "[I/O controller connection management]",
      "#disconnect-scope=only-stas-connections",
      "[Controllers]",
      "# controller = transport=tcp;traddr=100.100.100.100;nqn=nqn.1988-11.com.dell:SFSS:1",
      "controller =",
    ].join("\n"),
    config: {},
    diagnostics: [],
  },
  {
    name: "repeated controller= keys accumulate in order and keep the ; inside",
    text: `[Controllers]
controller = transport=tcp;traddr=192.168.1.10;trsvcid=4420;nqn=nqn.2026-11.io.test:s1
controller=  Transport = TCP ; traddr = 192.168.1.11 ; trsvcid = 4420 ; nqn = nqn.2026-11.io.test:s2 ;
controller = transport=rdma;traddr=fd00::10;nqn=nqn.2026-11.io.test:s3;host-traddr=fd00::2;kato=5
`,
    config: {
      controllers: [
        {
          line: 2,
          fields: {
            transport: "tcp",
            traddr: "192.168.1.10",
            trsvcid: "4420",
            subsysnqn: "nqn.2026-11.io.test:s1",
          },
          options: {},
        },
        {
          line: 3,
          fields: {
            transport: "tcp",
            traddr: "192.168.1.11",
            trsvcid: "4420",
            subsysnqn: "nqn.2026-11.io.test:s2",
          },
          options: {},
        },
        {
          line: 4,
          fields: {
            transport: "rdma",
            traddr: "fd00::10",
            subsysnqn: "nqn.2026-11.io.test:s3",
            hostTraddr: "fd00::2",
          },
          options: { kato: 5 },
        },
      ],
    },
    diagnostics: [],
  },
  {
    name: "option names and booleans are case-insensitive",
    text: "[Global]\nTRON = True\nHdr-Digest = FALSE\nData-Digest=tRuE\nIgnore-Iface = TRUE\n",
    config: {
      tron: true,
      ignoreIface: true,
      connection: { hdrDigest: false, dataDigest: true },
    },
    diagnostics: [],
  },
  {
    name: "invalid values warn naming file, section, option and value, and keep the default",
    text:
      "[Global]\ntron = yes\nkato = -1\nqueue-size = 2048\nip-family = ipv5\nreconnect-delay =\n",
    config: {},
    diagnostics: [
      [
        "warning",
        2,
        '[Global] tron: invalid value "yes" (expected true or false); the default is used',
      ],
      [
        "warning",
        3,
        '[Global] kato: invalid value "-1" (expected an integer >= 0); the default is used',
      ],
      [
        "warning",
        4,
        '[Global] queue-size: invalid value "2048" (expected an integer from 16 to 1024); ' +
        "the default is used",
      ],
      [
        "warning",
        5,
        '[Global] ip-family: invalid value "ipv5" (expected ipv4, ipv6, ipv4+ipv6, ipv6+ipv4); ' +
        "the default is used",
      ],
      [
        "warning",
        6,
        '[Global] reconnect-delay: invalid value "" (expected an integer >= 1); the default is used',
      ],
    ],
  },
  {
    name: "every [Global] connection option is read at the edges of its range",
    text: `[Global]
kato = 0
nr-io-queues = 1
nr-write-queues = +2
nr-poll-queues = 3
queue-size = 16
reconnect-delay = 1
ctrl-loss-tmo = -1
disable-sqflow = true
ip-family = ipv6
`,
    config: {
      ipFamily: [6],
      connection: {
        hdrDigest: false,
        dataDigest: false,
        kato: 0,
        nrIoQueues: 1,
        nrWriteQueues: 2,
        nrPollQueues: 3,
        queueSize: 16,
        reconnectDelay: 1,
        ctrlLossTmo: -1,
        disableSqflow: true,
      },
    },
    diagnostics: [],
  },
  {
    name: "unknown sections and options are errors and are ignored",
    text:
      "[global]\ntron=true\n[Global]\nsticky-connections=true\n[Service Discovery]\nzeroconf=enabled\n",
    config: {},
    diagnostics: [
      ["error", 1, "unknown section [global] ignored (did you mean [Global]?)"],
      ["error", 4, "[Global] sticky-connections: unknown option ignored"],
      ["error", 5, "unknown section [Service Discovery] ignored"],
    ],
  },
  {
    name: "[I/O controller connection management] is read, connect-attempts-on-ncc 1 becomes 2",
    text: `[I/O controller connection management]
disconnect-scope = all-connections-matching-disconnect-trtypes
disconnect-trtypes = tcp+RDMA+loop+tcp
connect-attempts-on-ncc = 1
`,
    config: {
      disconnectScope: "all-connections-matching-disconnect-trtypes",
      disconnectTrtypes: ["tcp", "rdma"],
      connectAttemptsOnNcc: 2,
    },
    diagnostics: [
      [
        "warning",
        3,
        '[I/O controller connection management] disconnect-trtypes: unknown transport "loop" ' +
        "dropped (expected tcp, rdma or fc)",
      ],
      [
        "info",
        4,
        "[I/O controller connection management] connect-attempts-on-ncc: 1 is raised to 2 " +
        "(the smallest count that retries)",
      ],
    ],
  },
  {
    name: "a repeated scalar option uses its last value and says so",
    text: "[Global]\nkato = 10\nkato = 20\n[Global]\nkato = 30\n",
    config: { connection: { hdrDigest: false, dataDigest: false, kato: 30 } },
    diagnostics: [["warning", 5, "[Global] kato: given 3 times; the last one (line 5) is used"]],
  },
  {
    name: "a continuation line of controller= is one more entry, as upstream reads it",
    text: `[Controllers]
controller = transport=tcp;traddr=10.0.0.1;trsvcid=4420;nqn=nqn.a
    transport=tcp;traddr=10.0.0.2;trsvcid=4420;nqn=nqn.b
`,
    config: {
      controllers: [
        {
          line: 2,
          fields: { transport: "tcp", traddr: "10.0.0.1", trsvcid: "4420", subsysnqn: "nqn.a" },
          options: {},
        },
        {
          line: 2,
          fields: { transport: "tcp", traddr: "10.0.0.2", trsvcid: "4420", subsysnqn: "nqn.b" },
          options: {},
        },
      ],
    },
    diagnostics: [],
  },
  {
    name: "exclude= and blacklist= are read alike, blacklist with one warning",
    text: `[Controllers]
exclude = host-iface=enp0s8
blacklist = transport=tcp;nqn=nqn.x;host-traddr=10.0.0.1
blacklist = traddr=10.0.0.9
exclude = foo=bar
exclude =
`,
    config: {
      excluded: [
        { line: 2, match: { hostIface: "enp0s8" } },
        { line: 3, match: { transport: "tcp", subsysnqn: "nqn.x" } },
        { line: 4, match: { traddr: "10.0.0.9" } },
        { line: 5, match: {}, invalid: 'unknown key "foo"' },
        { line: 6, match: {}, invalid: "names no field" },
      ],
    },
    diagnostics: [
      ["warning", 3, "[Controllers] blacklist: deprecated; read as exclude (rename it exclude)"],
      [
        "warning",
        3,
        '[Controllers] blacklist "transport=tcp;nqn=nqn.x;host-traddr=10.0.0.1": host-traddr ' +
        "is ignored in exclusions (as upstream does)",
      ],
      [
        "warning",
        5,
        '[Controllers] exclude "foo=bar": unknown key "foo"; this entry excludes nothing',
      ],
      ["warning", 6, '[Controllers] exclude "": names no field; this entry excludes nothing'],
    ],
  },
  {
    name: "bad lines are errors with their line number and the rest is read",
    text: "kato = 5\n[Global]\nthis line has no equals sign\ntron = true\n",
    config: { tron: true },
    diagnostics: [
      ["error", 1, 'option line before any [section]: "kato = 5"; line ignored'],
      ["error", 3, 'line without "=": "this line has no equals sign"; line ignored'],
    ],
  },
];

for (const c of FILES) {
  Deno.test(`parseStacdConfig(): ${c.name}`, () => {
    const { config } = parse(c.text);
    assert.deepEqual(config, { ...defaultStacdConfig(), ...c.config });
    assert.deepEqual(rows(c.text), c.diagnostics);
  });
}

Deno.test("defaultStacdConfig() holds the defaults docs/design.md lists", () => {
  assert.deepEqual(defaultStacdConfig(), {
    tron: false,
    ignoreIface: false,
    ipFamily: [4, 6],
    connection: { hdrDigest: false, dataDigest: false },
    disconnectScope: "only-stas-connections",
    disconnectTrtypes: ["tcp"],
    connectAttemptsOnNcc: 0,
    controllers: [],
    excluded: [],
  });
});

Deno.test("parseStacdConfig() of a missing file gives the defaults and an info", () => {
  const { config, diagnostics } = parseStacdConfig(undefined, FILE);
  assert.deepEqual(config, defaultStacdConfig());
  assert.deepEqual(diagnostics, [{
    level: "info",
    file: FILE,
    message: `${FILE} not found; defaults are used`,
  }]);
});

// Defaults in its place would disconnect every configured controller.
Deno.test("loadStacdConfig() throws for a file that exists but cannot be read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // We run as root, so no chmod 000: a directory where the file should be.
    await Deno.mkdir(`${dir}/stacd.conf`);
    assert.throws(() => loadStacdConfig(denoTextFileReader, `${dir}/stacd.conf`), (e: unknown) => {
      assert.ok(e instanceof FileReadError);
      assert.equal(e.message, `cannot read ${dir}/stacd.conf: not a regular file (a directory)`);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseStacdConfig() reads a CRLF file exactly like its LF twin", () => {
  const lf = "[Global]\ntron=true\n[Controllers]\ncontroller=transport=tcp;traddr=::1;nqn=n\n";
  const crlf = `\uFEFF${lf.replaceAll("\n", "\r\n")}`;
  assert.deepEqual(parse(crlf), parse(lf));
  assert.equal(parse(crlf).config.controllers[0]?.fields.subsysnqn, "n");
});

Deno.test("parseStacdConfig() names the file in every diagnostic", () => {
  const { diagnostics } = parseStacdConfig("[X]\n[Global]\nkato=x\n", "/tmp/other.conf");
  assert.deepEqual(diagnostics.map((d) => d.file), ["/tmp/other.conf", "/tmp/other.conf"]);
  assert.deepEqual(diagnostics.map((d) => [d.section, d.option]), [["X", undefined], [
    "Global",
    "kato",
  ]]);
});

Deno.test("a controller override is validated like [Global] and an invalid one is left out", () => {
  const { config, diagnostics } = parse(
    "[Controllers]\ncontroller=transport=tcp;traddr=1.1.1.1;trsvcid=4420;nqn=n;kato=x;queue-size=64;hdr-digest=TRUE\n",
  );
  assert.deepEqual(config.controllers[0]?.options, { queueSize: 64, hdrDigest: true });
  assert.equal(config.controllers[0]?.invalid, undefined);
  assert.deepEqual(diagnostics.map((d) => [d.option, d.message]), [[
    "controller",
    '[Controllers] controller (tcp, 1.1.1.1, 4420, n): kato - invalid value "x" ' +
    "(expected an integer >= 0); [Global]'s value is used",
  ]]);
});

Deno.test("unknown keys and malformed tokens of a controller are warned about and skipped", () => {
  const { config, diagnostics } = parse(
    "[Controllers]\ncontroller=transport=tcp;traddr=1.1.1.1;trsvcid=4420;nqn=n;colour=blue;junk;=x\n",
  );
  assert.equal(config.controllers[0]?.invalid, undefined);
  assert.deepEqual(diagnostics.map((d) => d.message.replace(/^.*\): /, "")), [
    'token "junk" is not key=value; skipped',
    'token "=x" is not key=value; skipped',
    'unknown key "colour" ignored',
  ]);
});

Deno.test("a controller without transport, traddr or nqn is kept but marked invalid", () => {
  const { config, diagnostics } = parse("[Controllers]\ncontroller = traddr=1.1.1.1\n");
  assert.equal(config.controllers[0]?.invalid, "transport is missing; nqn is missing");
  assert.deepEqual(diagnostics.map((d) => d.message), [
    "[Controllers] controller (, 1.1.1.1, 8009): transport is missing; this controller is not connected",
    "[Controllers] controller (, 1.1.1.1, 8009): nqn is missing; this controller is not connected",
  ]);
});

Deno.test("a controller with an unsupported transport or a bad trsvcid is invalid", () => {
  const pcie = parse("[Controllers]\ncontroller=transport=pcie;traddr=x;nqn=n\n").config;
  assert.equal(pcie.controllers[0]?.invalid, 'transport "pcie" is not tcp, rdma, fc or loop');
  const port =
    parse("[Controllers]\ncontroller=transport=tcp;traddr=x;nqn=n;trsvcid=70000\n").config;
  assert.equal(port.controllers[0]?.invalid, 'trsvcid "70000" is not a port number');
});

Deno.test("a controller field that would add a connect option invalidates it, naming file and line", () => {
  const text = [
    "[Controllers]",
    "controller=transport=tcp;traddr=10.0.0.1;trsvcid=4420;nqn=nqn.x,duplicate_connect",
    "controller=transport=tcp;traddr=10.0.0.1;trsvcid=4420;nqn=n;host-iface=eth0,hostnqn=evil",
    "controller=transport=tcp;traddr=10.0.0.1;trsvcid=4420;nqn=n;host-nqn=nqn.h=1",
    "controller=transport=fc;traddr=nn-1:pn-2 x;nqn=n;host-traddr=nn-3\tpn-4",
    "controller=transport=loop;traddr=a;nqn=n;trsvcid=1,2",
    "controller=transport=tcp;traddr=10.0.0.2;trsvcid=4420;nqn=n",
  ].join("\n");
  const { config, diagnostics } = parse(text);
  assert.deepEqual(config.controllers.map((c) => c.invalid), [
    'nqn "nqn.x,duplicate_connect" contains ","',
    'host-iface "eth0,hostnqn=evil" contains ","',
    'host-nqn "nqn.h=1" contains "="',
    'traddr "nn-1:pn-2 x" contains whitespace; host-traddr "nn-3\\tpn-4" contains whitespace',
    'trsvcid "1,2" contains ","',
    undefined,
  ]);
  const lines = diagnostics.filter((d) => /not connected/.test(d.message)).map((d) => d.line);
  assert.deepEqual(lines, [2, 3, 4, 5, 5, 6]);
  assert.ok(diagnostics.every((d) => d.file === FILE));
});

Deno.test("a tcp controller without trsvcid warns that 8009 is used", () => {
  const { diagnostics } = parse("[Controllers]\ncontroller=transport=tcp;traddr=10.0.0.1;nqn=n\n");
  assert.deepEqual(diagnostics.map((d) => [d.level, d.message]), [[
    "warning",
    "[Controllers] controller (tcp, 10.0.0.1, 8009, n): trsvcid is missing; 8009 (the discovery port) is used",
  ]]);
});

Deno.test("subsysnqn= in a controller entry is read as nqn=, as upstream lets it", () => {
  const { config } = parse("[Controllers]\ncontroller=transport=fc;traddr=nn-1:pn-2;subsysnqn=n\n");
  assert.equal(config.controllers[0]?.fields.subsysnqn, "n");
});

Deno.test("well-formed DH-HMAC-CHAP keys of a controller are kept", () => {
  const { config, diagnostics } = parse(
    `[Controllers]\ncontroller=transport=tcp;traddr=1.1.1.1;trsvcid=4420;nqn=n;dhchap-secret=${KEY};dhchap-ctrl-secret=${CTRL_KEY}\n`,
  );
  assert.equal(config.controllers[0]?.dhchapSecret, KEY);
  assert.equal(config.controllers[0]?.dhchapCtrlSecret, CTRL_KEY);
  assert.equal(config.controllers[0]?.invalid, undefined);
  assert.deepEqual(diagnostics, []);
});

Deno.test("a malformed key names the controller and the option, never the key, and invalidates it", () => {
  const { config, diagnostics } = parse(
    `[Controllers]\ncontroller=transport=tcp;traddr=1.1.1.1;trsvcid=4420;nqn=n;dhchap-ctrl-secret=${BAD_KEY}\n`,
  );
  assert.equal(
    config.controllers[0]?.invalid,
    "dhchap-ctrl-secret fails its CRC-32 check (mistyped?)",
  );
  assert.deepEqual(diagnostics.map((d) => d.message), [
    "[Controllers] controller (tcp, 1.1.1.1, 4420, n): dhchap-ctrl-secret fails its CRC-32 check " +
    "(mistyped?); this controller is not connected",
  ]);
});

Deno.test("a key pasted where it does not belong is never quoted", () => {
  const secret = KEY.split(":")[2] ?? "";
  const text = `[Global]\nkato=${KEY}\n[Controllers]\ncontroller=transport=tcp;${KEY};x${KEY}=1\n` +
    `exclude=${KEY}\n[${KEY}]\n`;
  const { diagnostics } = parse(text);
  assert.ok(diagnostics.length >= 4);
  for (const d of diagnostics) assert.ok(!d.message.includes(secret), d.message);
});

Deno.test("redactedConfig() shows every key as <redacted> and kernel defaults as null", () => {
  const { config } = parse(
    `[Global]\nkato=30\n[Controllers]\ncontroller=transport=tcp;traddr=1.1.1.1;trsvcid=4420;nqn=n;` +
      `host-iface=eth0;dhchap-secret=${KEY};dhchap-ctrl-secret=${BAD_KEY};hdr-digest=true\n`,
  );
  const dump = redactedConfig(config);
  const json = JSON.stringify(dump);
  assert.ok(!json.includes("ia6zGod"), json);
  assert.deepEqual(dump.Controllers, {
    controller: [{
      line: 4,
      transport: "tcp",
      traddr: "1.1.1.1",
      trsvcid: "4420",
      nqn: "n",
      "host-iface": "eth0",
      "dhchap-secret": "<redacted>",
      "dhchap-ctrl-secret": "<redacted>",
      "hdr-digest": true,
      invalid: "dhchap-ctrl-secret fails its CRC-32 check (mistyped?)",
    }],
    exclude: [],
  });
  assert.deepEqual(dump.Global, {
    tron: false,
    "ignore-iface": false,
    "ip-family": "ipv4+ipv6",
    "hdr-digest": false,
    "data-digest": false,
    kato: 30,
    "nr-io-queues": null,
    "nr-write-queues": null,
    "nr-poll-queues": null,
    "queue-size": null,
    "reconnect-delay": null,
    "ctrl-loss-tmo": null,
    "disable-sqflow": null,
  });
});

Deno.test("holdsSecrets() is true only when a controller carries a key", () => {
  assert.ok(
    !holdsSecrets(parse("[Controllers]\ncontroller=transport=tcp;traddr=1.1.1.1;nqn=n\n").config),
  );
  assert.ok(
    holdsSecrets(parse(`[Controllers]\ncontroller=transport=tcp;dhchap-secret=${KEY}\n`).config),
  );
});

Deno.test("names like constructor and __proto__ are unknown sections, options and values", () => {
  const text = "[constructor]\nx=1\n[Global]\n__proto__ = 1\nip-family = constructor\n" +
    "[Controllers]\ncontroller = transport=tcp;constructor=1;traddr=1.1.1.1;trsvcid=4420;nqn=n\n" +
    "exclude = toString=x\n";
  const { config, diagnostics } = parse(text);
  assert.deepEqual(config.ipFamily, [4, 6]);
  assert.deepEqual(config.controllers[0]?.fields, {
    transport: "tcp",
    traddr: "1.1.1.1",
    trsvcid: "4420",
    subsysnqn: "n",
  });
  assert.equal(config.excluded[0]?.invalid, 'unknown key "tostring"');
  assert.deepEqual(diagnostics.map((d) => d.level), [
    "error",
    "error",
    "warning",
    "warning",
    "warning",
  ]);
});

Deno.test("disconnect-trtypes with no known transport keeps the default tcp", () => {
  const text = "[I/O controller connection management]\ndisconnect-trtypes = loop+iwarp\n";
  assert.deepEqual(parse(text).config.disconnectTrtypes, ["tcp"]);
  assert.deepEqual(rows(text).map((r) => r[2]), [
    '[I/O controller connection management] disconnect-trtypes: unknown transport "loop" dropped (expected tcp, rdma or fc)',
    '[I/O controller connection management] disconnect-trtypes: unknown transport "iwarp" dropped (expected tcp, rdma or fc)',
    '[I/O controller connection management] disconnect-trtypes: invalid value "loop+iwarp" (expected tcp, rdma or fc, joined with +); the default is used',
  ]);
});
