/**
 * stacd's D-Bus interface (docs/design.md#members): names, members and signatures
 * exactly as nvme-stas 2.4's staslib/stacd.idl declares them, argument
 * names included, so that upstream's stacctl and any script written
 * against upstream work unchanged.
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

/** `--idl=FILE`: writes {@linkcode stacIntrospectionXml} to `file`. */
export async function writeIdl(file: string): Promise<void> {
  await Deno.writeTextFile(file, stacIntrospectionXml());
}
