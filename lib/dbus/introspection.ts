/**
 * D-Bus object descriptions as data, and their introspection XML. One
 * description serves three readers: the Introspect reply, the dispatcher
 * that checks every incoming call's signature against it, and `--idl`. So
 * what a client is told and what the service accepts cannot drift apart.
 */

/** One argument: its D-Bus type and the name shown in introspection. */
export interface ArgSpec {
  name: string;
  type: string;
}

/** A method's arguments in call order. */
export interface MethodSpec {
  in: readonly ArgSpec[];
  out: readonly ArgSpec[];
}

/** A property; both of ours emit PropertiesChanged, the introspection default. */
export interface PropertySpec {
  type: string;
  access: "read" | "readwrite";
}

/** An interface's members, in the order the XML lists them. */
export interface InterfaceSpec {
  properties?: Readonly<Record<string, PropertySpec>>;
  methods?: Readonly<Record<string, MethodSpec>>;
  signals?: Readonly<Record<string, readonly ArgSpec[]>>;
}

/** Interface name -> members, in XML order. */
export type ObjectSpec = Readonly<Record<string, InterfaceSpec>>;

export const PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties";
export const INTROSPECTABLE_INTERFACE = "org.freedesktop.DBus.Introspectable";
export const PEER_INTERFACE = "org.freedesktop.DBus.Peer";

const s = (name: string): ArgSpec => ({ name, type: "s" });

/**
 * The standard interfaces every object of ours implements, with GDBus's
 * argument names: upstream's stacd (GLib) shows these, and busctl lists them.
 */
export const STANDARD_INTERFACES: ObjectSpec = {
  [PROPERTIES_INTERFACE]: {
    methods: {
      Get: { in: [s("interface_name"), s("property_name")], out: [{ name: "value", type: "v" }] },
      GetAll: { in: [s("interface_name")], out: [{ name: "properties", type: "a{sv}" }] },
      Set: {
        in: [s("interface_name"), s("property_name"), { name: "value", type: "v" }],
        out: [],
      },
    },
    signals: {
      PropertiesChanged: [
        s("interface_name"),
        { name: "changed_properties", type: "a{sv}" },
        { name: "invalidated_properties", type: "as" },
      ],
    },
  },
  [INTROSPECTABLE_INTERFACE]: { methods: { Introspect: { in: [], out: [s("xml_data")] } } },
  [PEER_INTERFACE]: {
    methods: {
      Ping: { in: [], out: [] },
      GetMachineId: { in: [], out: [s("machine_uuid")] },
    },
  },
};

/** The concatenated types of `args`: a method's in-signature as messages carry it. */
export function signatureOf(args: readonly ArgSpec[]): string {
  return args.map((a) => a.type).join("");
}

const DOCTYPE = '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n' +
  ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">';

function argXml(arg: ArgSpec, direction?: "in" | "out"): string {
  const dir = direction ? ` direction="${direction}"` : "";
  return `<arg type="${arg.type}" name="${arg.name}"${dir}/>`;
}

function interfaceXml(name: string, spec: InterfaceSpec): string[] {
  const lines = [`  <interface name="${name}">`];
  for (const [pname, p] of Object.entries(spec.properties ?? {})) {
    lines.push(`    <property name="${pname}" type="${p.type}" access="${p.access}"/>`);
  }
  for (const [mname, m] of Object.entries(spec.methods ?? {})) {
    const args = [...m.in.map((a) => argXml(a, "in")), ...m.out.map((a) => argXml(a, "out"))];
    if (args.length === 0) {
      lines.push(`    <method name="${mname}"/>`);
      continue;
    }
    lines.push(`    <method name="${mname}">`, ...args.map((a) => `      ${a}`), "    </method>");
  }
  for (const [sname, args] of Object.entries(spec.signals ?? {})) {
    lines.push(
      `    <signal name="${sname}">`,
      ...args.map((a) => `      ${argXml(a)}`),
      "    </signal>",
    );
  }
  lines.push("  </interface>");
  return lines;
}

/**
 * The introspection document of an object with `spec`'s interfaces and the
 * given child nodes (names are ours, never caller input: no escaping needed).
 */
export function introspectionXml(spec: ObjectSpec, children: readonly string[] = []): string {
  const lines = [DOCTYPE, "<node>"];
  for (const [name, iface] of Object.entries(spec)) lines.push(...interfaceXml(name, iface));
  for (const child of children) lines.push(`  <node name="${child}"/>`);
  lines.push("</node>");
  return `${lines.join("\n")}\n`;
}
