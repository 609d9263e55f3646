/**
 * Random and mutated configuration files. The seed is printed; replay a
 * failure with STACD_FUZZ_SEED=<seed> (needs --allow-env).
 */
import assert from "node:assert/strict";
import { CONNECTION_OPTIONS } from "../../../lib/config/conn_options.ts";
import type { ConfigDiagnostic } from "../../../lib/config/diagnostics.ts";
import { parseIni } from "../../../lib/config/ini.ts";
import {
  DEFAULT_STACD_CONF,
  parseStacdConfig,
  redactedConfig,
} from "../../../lib/config/stacd_conf.ts";
import { HostNqnError, loadSysConfig } from "../../../lib/config/sys_conf.ts";
import { DISCOVERY_NQN } from "../../../lib/core/connect_request.ts";
import { seededDraws, seedFrom } from "../../seeded_random.ts";

const FILE = DEFAULT_STACD_CONF;
const KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:";
const KEY_B64 = KEY.split(":")[2] ?? "";
const STACD_FILES = 3000;
const RANDOM_STRINGS = 500;
const SYS_FILES = 1000;

const SEED = seedFrom("STACD_FUZZ_SEED");
console.log(`config fuzz seed: ${SEED} (replay: STACD_FUZZ_SEED=${SEED})`);

const { random, int, pick } = seededDraws(SEED);

const SECTIONS = [
  "[Global]",
  "[Controllers]",
  "[I/O controller connection management]",
  "[global]",
  "[Host]",
  "[constructor]",
  "[__proto__]",
  "[]",
  "[ Global ]",
  `[${KEY}]`,
];
const OPTIONS = [
  ...CONNECTION_OPTIONS.keys(),
  "tron",
  "ignore-iface",
  "ip-family",
  "disconnect-scope",
  "disconnect-trtypes",
  "connect-attempts-on-ncc",
  "controller",
  "exclude",
  "blacklist",
  "TRON",
  "Kato",
  "constructor",
  "__proto__",
  "toString",
  "foo",
  KEY,
];
const VALUES = [
  ...["true", "FALSE", "yes", "", "0", "1", "-1", "2", "+3", "16", "1024", "1025", "abc"],
  ...["99999999999999", "ipv4", "ipv6+ipv4", "ipv5", "tcp+rdma", "tcp+loop", "no-disconnect"],
  ...["constructor", "__proto__", KEY],
];
const ENTRY_KEYS = [
  ...["transport", "traddr", "trsvcid", "nqn", "subsysnqn", "host-traddr", "host-iface"],
  ...["host-nqn", "dhchap-secret", "dhchap-ctrl-secret", "kato", "queue-size", "hdr-digest"],
  ...["constructor", "bogus", ""],
];
const ENTRY_VALUES = [
  ...["tcp", "rdma", "fc", "loop", "pcie", "TCP", "192.168.1.10", "::1", "::ffff:127.0.0.1"],
  ...["nn-0x1:pn-0x2", "4420", "8009", "0", "70000", "nqn.2026-11.io.test:s1", "eth0", ""],
  ...[DISCOVERY_NQN, KEY, "DHHC-1:00:AAAA:", "true", "abc"],
];
const NOISE = ["=", ";", "[", "]", "#", " ", "\t", "\n", "\r", "\0", "\uFEFF", "é", "\ud800"];

function entry(): string {
  const tokens = Array.from(
    { length: int(9) },
    () =>
      random() < 0.1
        ? pick(ENTRY_VALUES)
        : `${pick(ENTRY_KEYS)}${pick(["=", " = "])}${pick(ENTRY_VALUES)}`,
  );
  return tokens.join(pick([";", " ; ", ";;"]));
}

function line(): string {
  switch (int(9)) {
    case 0:
      return pick(SECTIONS);
    case 1:
    case 2:
      return `${pick(OPTIONS)} = ${pick(VALUES)}`;
    case 3:
    case 4:
      return `${pick(["controller", "exclude", "blacklist"])} =${entry()}`;
    case 5:
      return `${pick(["#", ";", "  #"])} ${pick(OPTIONS)} = ${pick(VALUES)}`;
    case 6:
      return "";
    case 7:
      return `${" ".repeat(1 + int(6))}${random() < 0.5 ? entry() : pick(VALUES)}`;
    default:
      return Array.from({ length: int(20) }, () => String.fromCharCode(int(0x3000))).join("");
  }
}

function mutate(text: string): string {
  const at = int(text.length + 1);
  switch (int(4)) {
    case 0:
      return text.slice(0, at) + pick(NOISE) + text.slice(at);
    case 1:
      return text.slice(0, at) + text.slice(at + 1 + int(10));
    case 2:
      return text.slice(0, at) + text.slice(int(text.length), int(text.length)) + text.slice(at);
    default:
      return text.slice(0, at) + text.slice(at, at + 8).toUpperCase() + text.slice(at + 8);
  }
}

function stacdFile(): string {
  const lines = Array.from({ length: 1 + int(30) }, line);
  let text = lines.join(random() < 0.2 ? "\r\n" : "\n");
  for (let n = int(6); n > 0; n--) text = mutate(text);
  return text;
}

const corpus = [
  ...Array.from({ length: STACD_FILES }, stacdFile),
  ...Array.from(
    { length: RANDOM_STRINGS },
    () => Array.from({ length: int(400) }, () => String.fromCharCode(int(0x10000))).join(""),
  ),
];

/** Whether `text` holds 44 consecutive characters of the planted key: enough to be a leak. */
function leaksKey(text: string): boolean {
  for (let i = 0; i + 44 <= KEY_B64.length; i += 4) {
    if (text.includes(KEY_B64.slice(i, i + 44))) return true;
  }
  return false;
}

function parseOrFail(text: string, index: number) {
  try {
    return parseStacdConfig(text, FILE);
  } catch (error) {
    assert.fail(`seed ${SEED}, file ${index} ${JSON.stringify(text)}: ${error}`);
  }
}

Deno.test("no exception escapes parseIni() or parseStacdConfig() on random and mutated files", () => {
  corpus.forEach((text, index) => {
    parseIni(text);
    const { config } = parseOrFail(text, index);
    redactedConfig(config);
  });
});

Deno.test("every diagnostic about an option names it, and its file and line (fuzz)", () => {
  corpus.forEach((text, index) => {
    const lines = text.split(/\r\n|\r|\n/).length;
    for (const d of parseOrFail(text, index).diagnostics) {
      const context = `seed ${SEED}, file ${index}: ${JSON.stringify(d)}`;
      assert.equal(d.file, FILE, context);
      if (d.option !== undefined) assert.ok(d.message.includes(d.option), context);
      if (d.line !== undefined) assert.ok(d.line >= 1 && d.line <= lines, context);
    }
  });
});

Deno.test("whatever the file, the effective config stays within its ranges (fuzz)", () => {
  corpus.forEach((text, index) => {
    const { config } = parseOrFail(text, index);
    const context = `seed ${SEED}, file ${index}`;
    const queueSize = config.connection.queueSize ?? 16;
    assert.ok(queueSize >= 16 && queueSize <= 1024, context);
    assert.ok((config.connection.ctrlLossTmo ?? 0) >= -1, context);
    assert.notEqual(config.connectAttemptsOnNcc, 1, context);
    assert.ok(config.disconnectTrtypes.length > 0, context);
    assert.ok(config.ipFamily.length > 0 && config.ipFamily.every((f) => f === 4 || f === 6));
    assert.equal(typeof config.tron, "boolean", context);
  });
});

Deno.test("no diagnostic or config dump quotes a DH-HMAC-CHAP key (fuzz)", () => {
  corpus.forEach((text, index) => {
    const { config, diagnostics } = parseOrFail(text, index);
    for (const d of diagnostics) {
      assert.ok(!leaksKey(JSON.stringify(d)), `seed ${SEED}, file ${index}: ${d.message}`);
    }
    assert.ok(!leaksKey(JSON.stringify(redactedConfig(config))), `seed ${SEED}, file ${index}`);
  });
});

Deno.test("loadSysConfig() gives a config or a HostNqnError on random files, never a key (fuzz)", () => {
  const nqns = ["nqn.2014-08.org.nvmexpress:uuid:8b5c7a2e-3f1d-4c6b-9a0e-1d2c3b4a5f60", "", KEY];
  for (let index = 0; index < SYS_FILES; index++) {
    const lines = Array.from(
      { length: int(8) },
      () =>
        random() < 0.3
          ? pick(["[Host]", "[Global]", "[host]"])
          : `${pick(["nqn", "id", "key", "symname", "NQN", "x"])} = ${
            pick([...nqns, "file:///etc/nvme/hostnqn", "file:///nope", "file://", KEY, "iqn.x"])
          }`,
    );
    let text = lines.join("\n");
    for (let n = int(4); n > 0; n--) text = mutate(text);
    const files: Record<string, string> = {
      "/etc/stas/sys.conf": text,
      "/etc/nvme/hostnqn": pick(nqns),
    };
    let diagnostics: ConfigDiagnostic[];
    try {
      diagnostics = loadSysConfig({ readTextFile: (path) => files[path] }).diagnostics;
    } catch (error) {
      const context = `seed ${SEED}, sys.conf ${index} ${JSON.stringify(text)}: ${error}`;
      assert.ok(error instanceof HostNqnError, context);
      assert.ok(!leaksKey(error.message), context);
      diagnostics = error.diagnostics;
    }
    for (const d of diagnostics) {
      assert.ok(!leaksKey(JSON.stringify(d)), `seed ${SEED}: ${d.message}`);
    }
  }
});
