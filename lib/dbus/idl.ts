/**
 * stacd's and stafd's D-Bus interfaces (docs/design.md#members): names,
 * members and signatures exactly as nvme-stas 2.4's staslib/stacd.idl and
 * stafd.idl declare them, argument names included, so that upstream's
 * stacctl, stafctl and any script written against upstream work unchanged.
 */
import {
  type ArgSpec,
  introspectionXml,
  type ObjectSpec,
  STANDARD_INTERFACES,
} from "./introspection.ts";

export const STAC_BUS_NAME = "org.nvmexpress.stac";
export const STAC_OBJECT_PATH = "/org/nvmexpress/stac";
export const STAC_INTERFACE = "org.nvmexpress.stac";
export const STAC_DEBUG_INTERFACE = "org.nvmexpress.stac.debug";

const s = (name: string): ArgSpec => ({ name, type: "s" });

/** The controller identity arguments of controller_info, in upstream's order. */
export const CONTROLLER_INFO_ARGS: readonly ArgSpec[] = [
  s("transport"),
  s("traddr"),
  s("trsvcid"),
  s("subsysnqn"),
  s("host_traddr"),
  s("host_iface"),
  s("host_nqn"),
];

/** Our interfaces only (what upstream's stacd.idl holds). */
export const STAC_INTERFACES: ObjectSpec = {
  [STAC_DEBUG_INTERFACE]: {
    properties: {
      tron: { type: "b", access: "readwrite" },
      log_level: { type: "s", access: "read" },
    },
    methods: {
      process_info: { in: [], out: [s("info_json")] },
      controller_info: { in: CONTROLLER_INFO_ARGS, out: [s("info_json")] },
    },
  },
  [STAC_INTERFACE]: {
    methods: {
      list_controllers: {
        in: [{ name: "detailed", type: "b" }],
        out: [{ name: "controller_list", type: "aa{ss}" }],
      },
    },
  },
};

/** Everything /org/nvmexpress/stac implements: the standard interfaces, then ours. */
export const STAC_OBJECT_SPEC: ObjectSpec = { ...STANDARD_INTERFACES, ...STAC_INTERFACES };

export const STAF_BUS_NAME = "org.nvmexpress.staf";
export const STAF_OBJECT_PATH = "/org/nvmexpress/staf";
export const STAF_INTERFACE = "org.nvmexpress.staf";
export const STAF_DEBUG_INTERFACE = "org.nvmexpress.staf.debug";

/** stafd's interfaces (what upstream's stafd.idl holds). */
export const STAF_INTERFACES: ObjectSpec = {
  [STAF_DEBUG_INTERFACE]: STAC_INTERFACES[STAC_DEBUG_INTERFACE]!,
  [STAF_INTERFACE]: {
    methods: {
      list_controllers: STAC_INTERFACES[STAC_INTERFACE]!.methods!.list_controllers!,
      get_log_pages: {
        in: CONTROLLER_INFO_ARGS,
        out: [{ name: "log_pages", type: "aa{ss}" }],
      },
      get_all_log_pages: {
        in: [{ name: "detailed", type: "b" }],
        out: [s("log_pages_json")],
      },
    },
    signals: {
      log_pages_changed: [...CONTROLLER_INFO_ARGS, s("device")],
      dc_removed: [],
    },
  },
};

/** Everything /org/nvmexpress/staf implements: the standard interfaces, then stafd's. */
export const STAF_OBJECT_SPEC: ObjectSpec = { ...STANDARD_INTERFACES, ...STAF_INTERFACES };

/**
 * The introspection XML of /org/nvmexpress/stac: byte for byte what its
 * Introspect method returns, which is also what `--idl=FILE` writes. It
 * includes the standard interfaces, as upstream's live Introspect does
 * (upstream's `--idl` wrote only its own two; a superset keeps every
 * consumer of that file working).
 */
export function stacIntrospectionXml(): string {
  return introspectionXml(STAC_OBJECT_SPEC);
}

/** The introspection XML of /org/nvmexpress/staf (stafd's `--idl=FILE`). */
export function stafIntrospectionXml(): string {
  return introspectionXml(STAF_OBJECT_SPEC);
}

/** `--idl=FILE`: writes the daemon's introspection XML to `file`. */
export async function writeIdl(file: string, daemon: "stacd" | "stafd" = "stacd"): Promise<void> {
  await Deno.writeTextFile(
    file,
    daemon === "stacd" ? stacIntrospectionXml() : stafIntrospectionXml(),
  );
}
