/**
 * The single-valued options of stacd.conf, section by section: how each one
 * reads its text into a StacdConfig. The list options of [Controllers] are
 * in controller_entry.ts.
 */

import {
  booleanSpec,
  CONNECTION_OPTIONS,
  integerSpec,
  type OptionSpec,
  setConnectionOption,
} from "./conn_options.ts";
import { type ConfigDiagnostic, quoteValue } from "./diagnostics.ts";
import type { DisconnectScope, DisconnectTrtype, StacdConfig } from "./stacd_conf.ts";

/** Reports a note about the option being read; the caller adds file, section and option. */
export type Note = (level: ConfigDiagnostic["level"], message: string) => void;

/** One option of a section. */
export interface ScalarOption {
  /** What a valid value looks like, for the warning about an invalid one. */
  expected: string;
  /** Sets the option from `text`; false when `text` is invalid (the default then stays). */
  apply(config: StacdConfig, text: string, note: Note): boolean;
}

function scalar<T>(spec: OptionSpec<T>, set: (c: StacdConfig, v: T) => void): ScalarOption {
  return {
    expected: spec.expected,
    apply(config, text) {
      const value = spec.parse(text);
      if (value !== undefined) set(config, value);
      return value !== undefined;
    },
  };
}

/** A value out of a fixed set. A Map: a value "constructor" must not find Object.prototype's. */
function oneOf<T>(values: Map<string, T>): OptionSpec<T> {
  return { parse: (text) => values.get(text), expected: [...values.keys()].join(", ") };
}

const IP_FAMILIES = new Map<string, (4 | 6)[]>([
  ["ipv4", [4]],
  ["ipv6", [6]],
  ["ipv4+ipv6", [4, 6]],
  ["ipv6+ipv4", [6, 4]],
]);

const SCOPES = new Map<string, DisconnectScope>(
  ([
    "only-stas-connections",
    "all-connections-matching-disconnect-trtypes",
    "no-disconnect",
  ] as const)
    .map((s) => [s, s]),
);

/** `tcp+rdma`: unknown items are dropped one by one; none left means the default. */
const disconnectTrtypes: ScalarOption = {
  expected: "tcp, rdma or fc, joined with +",
  apply(config, text, note) {
    const kept: DisconnectTrtype[] = [];
    for (const item of text.split("+").map((t) => t.trim().toLowerCase())) {
      if (item === "tcp" || item === "rdma" || item === "fc") {
        if (!kept.includes(item)) kept.push(item);
      } else {note(
          "warning",
          `unknown transport ${quoteValue(item)} dropped (expected tcp, rdma or fc)`,
        );}
    }
    if (kept.length > 0) config.disconnectTrtypes = kept;
    return kept.length > 0;
  },
};

/** 0 or N >= 2; upstream raises 1 to 2, as a single attempt would never be retried. */
const connectAttemptsOnNcc: ScalarOption = {
  expected: "0 or an integer >= 2",
  apply(config, text, note) {
    const value = integerSpec(0).parse(text);
    if (value === 1) note("info", "1 is raised to 2 (the smallest count that retries)");
    if (value !== undefined) config.connectAttemptsOnNcc = value === 1 ? 2 : value;
    return value !== undefined;
  },
};

/** Section name -> option name -> option (Maps, for the same reason as oneOf). */
export const SCALAR_OPTIONS = new Map<string, Map<string, ScalarOption>>([
  [
    "Global",
    new Map<string, ScalarOption>([
      ["tron", scalar(booleanSpec, (c, v) => c.tron = v)],
      ["ignore-iface", scalar(booleanSpec, (c, v) => c.ignoreIface = v)],
      ["ip-family", scalar(oneOf(IP_FAMILIES), (c, v) => c.ipFamily = v)],
      ...[...CONNECTION_OPTIONS].map(([name, spec]): [string, ScalarOption] => [
        name,
        scalar(spec, (c, v) => setConnectionOption(c.connection, spec, v)),
      ]),
    ]),
  ],
  [
    "I/O controller connection management",
    new Map<string, ScalarOption>([
      ["disconnect-scope", scalar(oneOf(SCOPES), (c, v) => c.disconnectScope = v)],
      ["disconnect-trtypes", disconnectTrtypes],
      ["connect-attempts-on-ncc", connectAttemptsOnNcc],
    ]),
  ],
]);
