/**
 * Keys of upstream nvme-stas 2.4.1's stacd replies, as its own stacctl
 * prints them (docs/design.md#controller-dicts and #process-info): what tools written for
 * upstream parse.
 */

/** process_info()'s keys (`stacctl status` shows them, plus `controllers`). */
export const UPSTREAM_PROCESS_INFO_KEYS: readonly string[] = [
  "config soak timer",
  "hostid",
  "hostkey",
  "hostnqn",
  "kernel support.TP8013",
  "kernel support.host_iface",
  "last known config file",
  "log-level",
  "symname",
  "terminator.audit timer",
  "tron",
];
