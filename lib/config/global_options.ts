/**
 * The [Global] options stacd.conf and stafd.conf share: tron, ignore-iface,
 * ip-family and the connection options (docs/design.md#global-options).
 */

import { booleanSpec, CONNECTION_OPTIONS, type ConnectionOptions } from "./conn_options.ts";
import { setConnectionOption } from "./conn_options.ts";
import { oneOf, scalar, type ScalarOption } from "./conf_file.ts";

/** What the shared [Global] options set. */
export interface GlobalConfig {
  tron: boolean;
  ignoreIface: boolean;
  /** Enabled IP families in the order given (`ipv6+ipv4` prefers IPv6). */
  ipFamily: readonly (4 | 6)[];
  /** [Global] connection options; an undefined field is the kernel default. */
  connection: ConnectionOptions;
}

const IP_FAMILIES = new Map<string, (4 | 6)[]>([
  ["ipv4", [4]],
  ["ipv6", [6]],
  ["ipv4+ipv6", [4, 6]],
  ["ipv6+ipv4", [6, 4]],
]);

/** The shared [Global] options, for a file's own section map. */
export function globalOptions<C extends GlobalConfig>(): [string, ScalarOption<C>][] {
  return [
    ["tron", scalar(booleanSpec, (c, v) => c.tron = v)],
    ["ignore-iface", scalar(booleanSpec, (c, v) => c.ignoreIface = v)],
    ["ip-family", scalar(oneOf(IP_FAMILIES), (c, v) => c.ipFamily = v)],
    ...[...CONNECTION_OPTIONS].map(([name, spec]): [string, ScalarOption<C>] => [
      name,
      scalar(spec, (c, v) => setConnectionOption(c.connection, spec, v)),
    ]),
  ];
}
