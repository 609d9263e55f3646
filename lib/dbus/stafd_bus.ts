/**
 * stafd as seen on the bus (docs/design.md#what-stacd-reads-from-stafd): its names, and what a
 * follower of stafd subscribes to. The connection is lib/dbus/bus_connection.ts.
 */

/** stafd's well-known name, object and interface. */
export const STAF = {
  name: "org.nvmexpress.staf",
  path: "/org/nvmexpress/staf",
  iface: "org.nvmexpress.staf",
} as const;

/** What a follower of stafd subscribes to: changes of the name's owner, and stafd's signals. */
export const STAF_MATCH_RULES = [
  `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',` +
  `member='NameOwnerChanged',arg0='${STAF.name}'`,
  `type='signal',sender='${STAF.name}',path='${STAF.path}',interface='${STAF.iface}'`,
] as const;
