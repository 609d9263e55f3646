/**
 * The single-valued options of stacd.conf, section by section: how each one
 * reads its text into a StacdConfig. [Global]'s are shared with stafd.conf
 * (global_options.ts); the list options of [Controllers] are in
 * controller_entry.ts.
 */

import { integerSpec } from "./conn_options.ts";
import { oneOf, scalar, type ScalarOption, type ScalarOptions } from "./conf_file.ts";
import { quoteValue } from "./diagnostics.ts";
import { globalOptions } from "./global_options.ts";
import type { DisconnectScope, DisconnectTrtype, StacdConfig } from "./stacd_conf.ts";

type Option = ScalarOption<StacdConfig>;

const SCOPES = new Map<string, DisconnectScope>(
  ([
    "only-stas-connections",
    "all-connections-matching-disconnect-trtypes",
    "no-disconnect",
  ] as const)
    .map((s) => [s, s]),
);

/** `tcp+rdma`: unknown items are dropped one by one; none left means the default. */
const disconnectTrtypes: Option = {
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
const connectAttemptsOnNcc: Option = {
  expected: "0 or an integer >= 2",
  apply(config, text, note) {
    const value = integerSpec(0).parse(text);
    if (value === 1) note("info", "1 is raised to 2 (the smallest count that retries)");
    if (value !== undefined) config.connectAttemptsOnNcc = value === 1 ? 2 : value;
    return value !== undefined;
  },
};

/** stacd.conf's sections and their single-valued options. */
export const STACD_OPTIONS: ScalarOptions<StacdConfig> = new Map([
  ["Global", new Map(globalOptions<StacdConfig>())],
  [
    "I/O controller connection management",
    new Map<string, Option>([
      ["disconnect-scope", scalar(oneOf(SCOPES), (c, v) => c.disconnectScope = v)],
      ["disconnect-trtypes", disconnectTrtypes],
      ["connect-attempts-on-ncc", connectAttemptsOnNcc],
    ]),
  ],
]);
