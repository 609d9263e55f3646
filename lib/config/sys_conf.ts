/**
 * sys.conf (docs/design.md#host-identity), shared with stafd: who this host is. [Host] `nqn`,
 * `id`, `key` and `symname`; a value `file://PATH` means "the first word of
 * that file", and the defaults are libnvme's /etc/nvme files.
 */

import { optionValueProblem } from "../core/connect_request.ts";
import { dhchapKeyProblem } from "./dhchap_key.ts";
import { type ConfigDiagnostic, quoteValue, safeName, scrub, scrubSecrets } from "./diagnostics.ts";
import { parseIni } from "./ini.ts";
import {
  CONFIG_FILE_MAX_BYTES,
  readFailure,
  type TextFileReader,
  VALUE_FILE_MAX_BYTES,
} from "./text_file.ts";

export { keyFileModeWarning } from "./dhchap_key.ts";

/** Where stacd and stafd look for sys.conf. */
export const DEFAULT_SYS_CONF = "/etc/stas/sys.conf";

/** The host's identity. */
export interface SysConfig {
  hostNqn: string;
  /** A UUID; undefined when neither configured nor derivable from the NQN. */
  hostId?: string;
  /** The host's DH-HMAC-CHAP key; only set when well-formed. */
  hostKey?: string;
  /**
   * Why the configured host key is unusable (malformed), never quoting it;
   * controllers that would use it are not connected (fail closed).
   */
  hostKeyProblem?: string;
  hostSymname?: string;
  /** Files a key was read from, for the caller to check with keyFileModeWarning(). */
  keyFiles: string[];
}

/** No usable host NQN: stacd cannot connect anything and must exit with this message. */
export class HostNqnError extends Error {
  constructor(message: string, readonly diagnostics: ConfigDiagnostic[]) {
    super(message);
    this.name = "HostNqnError";
  }
}

/** Longest NQN the NVMe base specification allows, in bytes. */
const NQN_MAX_BYTES = 223;

/** [Host]'s options and their defaults (a Map: an option named "constructor" is just unknown). */
const DEFAULTS = new Map<string, string | undefined>([
  ["nqn", "file:///etc/nvme/hostnqn"],
  ["id", "file:///etc/nvme/hostid"],
  ["key", "file:///etc/nvme/hostkey"],
  ["symname", undefined],
]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A resolved option: its value and the file it came from. */
type Sourced = [value: string, from: string];

/**
 * Reads sys.conf (and the files it points to) through `reader`. A missing
 * sys.conf means all defaults. Throws FileReadError when sys.conf exists but
 * cannot be read (the defaults could be another host's identity), and
 * HostNqnError when no valid host NQN results; every other problem is a
 * diagnostic.
 */
export function loadSysConfig(
  reader: TextFileReader,
  file: string = DEFAULT_SYS_CONF,
): { config: SysConfig; diagnostics: ConfigDiagnostic[] } {
  const diagnostics: ConfigDiagnostic[] = [];
  const warn = (option: string, message: string, level: ConfigDiagnostic["level"] = "warning") =>
    diagnostics.push({
      level,
      file,
      section: "Host",
      option,
      message: `[Host] ${option}: ${message}`,
    });
  const configured = readHostSection(reader, file, diagnostics);

  // Why an option that was asked for (given, or a default file that exists) gave no value.
  const unusable = new Map<string, string>();
  const resolve = (option: string): Sourced | undefined => {
    const given = configured.get(option);
    const raw = given ?? DEFAULTS.get(option);
    if (raw === undefined) return undefined;
    if (!raw.startsWith("file://")) return [raw, file];
    const path = raw.slice("file://".length);
    let text: string | undefined;
    try {
      text = reader.readTextFile(path, VALUE_FILE_MAX_BYTES);
      if (text === undefined && given !== undefined) {
        unusable.set(option, `${safeName(path)} does not exist`);
      }
    } catch (error) {
      unusable.set(option, `cannot read ${safeName(path)}: ${readFailure(error)}`);
    }
    const word = text?.trim().split(/\s+/)[0];
    if (text !== undefined && !word && given !== undefined) {
      unusable.set(option, `${safeName(path)} is empty`);
    }
    const why = unusable.get(option);
    if (why !== undefined && option !== "key") warn(option, why);
    return word ? [word, path] : undefined;
  };

  const nqn = resolve("nqn");
  const problem = nqnProblem(nqn);
  if (nqn === undefined || problem !== undefined) {
    throw new HostNqnError(scrub(problem ?? "no host NQN"), scrubSecrets(diagnostics));
  }
  const config: SysConfig = { hostNqn: nqn[0], keyFiles: [] };

  const id = resolve("id");
  if (id !== undefined && UUID.test(id[0])) config.hostId = id[0].toLowerCase();
  else {
    if (id !== undefined) warn("id", `${quoteValue(id[0])} from ${safeName(id[1])} is not a UUID`);
    // nvme-cli derives the host ID from a uuid-style NQN the same way.
    const derived = /:uuid:([0-9a-f-]{36})$/i.exec(config.hostNqn)?.[1];
    if (derived !== undefined && UUID.test(derived)) {
      config.hostId = derived.toLowerCase();
      warn("id", "taken from the host NQN", "info");
    } else warn("id", "no host ID; the kernel picks one (6.12 may refuse)");
  }

  // A key asked for and not usable fails closed, like a malformed one:
  // connecting without it would silently drop authentication.
  const key = resolve("key");
  const keyUnusable = unusable.get("key");
  if (key !== undefined) {
    config.keyFiles.push(key[1]);
    const keyProblem = dhchapKeyProblem(key[0]);
    if (keyProblem === undefined) config.hostKey = key[0];
    else config.hostKeyProblem = `the host key read from ${safeName(key[1])} ${keyProblem}`;
  } else if (keyUnusable !== undefined) {
    config.hostKeyProblem = `the host key is not usable: ${keyUnusable}`;
  }
  if (config.hostKeyProblem !== undefined) {
    warn(
      "key",
      `${config.hostKeyProblem}; controllers without a dhchap-secret of their own ` +
        "are not connected",
      "error",
    );
  }
  const symname = resolve("symname");
  if (symname !== undefined) config.hostSymname = symname[0];
  return { config, diagnostics: scrubSecrets(diagnostics) };
}

/** Why `nqn` cannot be the host NQN, or undefined when it can. */
function nqnProblem(nqn: Sourced | undefined): string | undefined {
  if (nqn === undefined) {
    return "no host NQN: set [Host] nqn in sys.conf or create /etc/nvme/hostnqn (nvme gen-hostnqn)";
  }
  const [value, from] = nqn;
  if (!value.startsWith("nqn.")) {
    return `host NQN ${quoteValue(value)} from ${safeName(from)} does not start with "nqn."`;
  }
  const unsafe = optionValueProblem(value);
  if (unsafe !== undefined) {
    return `host NQN ${quoteValue(value)} from ${safeName(from)} ${unsafe}`;
  }
  if (new TextEncoder().encode(value).length > NQN_MAX_BYTES) {
    return `host NQN from ${safeName(from)} is longer than ${NQN_MAX_BYTES} bytes`;
  }
  return undefined;
}

/** [Host]'s options (last value of each); everything else in the file is reported. */
function readHostSection(
  reader: TextFileReader,
  file: string,
  diagnostics: ConfigDiagnostic[],
): Map<string, string> {
  const text = reader.readTextFile(file, CONFIG_FILE_MAX_BYTES);
  const host = new Map<string, string>();
  if (text === undefined) return host;
  const ini = parseIni(text);
  for (const { line, message } of ini.problems) {
    diagnostics.push({ level: "error", file, line, message: `${message}; line ignored` });
  }
  for (const [rawSection, options] of ini.sections) {
    const line = ini.sectionLines.get(rawSection);
    const section = safeName(rawSection);
    if (rawSection !== "Host") {
      const message = `unknown section [${section}] ignored`;
      diagnostics.push({ level: "error", file, line, section, message });
      continue;
    }
    for (const [rawOption, values] of options) {
      const last = values[values.length - 1];
      const option = safeName(rawOption);
      if (!DEFAULTS.has(rawOption)) {
        const message = `[Host] ${option}: unknown option ignored`;
        diagnostics.push({ level: "error", file, line: values[0]?.line, section, option, message });
      } else if (last !== undefined && last.value !== "") {
        // An empty value means "not set": fall back to the /etc/nvme default.
        host.set(rawOption, last.value.split("\n").pop() ?? "");
      }
    }
  }
  return host;
}
