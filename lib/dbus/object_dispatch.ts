/**
 * Serves one D-Bus object from its {@linkcode ObjectSpec} and handlers,
 * replacing dbus-next's service layer, which answers a Set of a read-only
 * property twice, reads /var/lib/dbus/machine-id unguarded, and cannot show
 * argument names. Here every call is checked against the spec before a
 * handler runs, every handler runs guarded, and every call gets exactly one
 * reply: a return, or a standard D-Bus error. Nothing a caller sends can
 * throw out of the dispatcher.
 */
import type { Logger } from "../logger.ts";
import type { BusSocket } from "./bus_socket.ts";
import { Message, newErrorReply, NO_REPLY_EXPECTED, Variant } from "./message.ts";
import { encodeMethodReturn, FAST_SIGNATURES } from "./fast_reply.ts";
import {
  INTROSPECTABLE_INTERFACE,
  introspectionXml,
  type ObjectSpec,
  PEER_INTERFACE,
  PROPERTIES_INTERFACE,
  signatureOf,
} from "./introspection.ts";

/** Raised by a handler to answer with a specific D-Bus error. */
export class DBusMethodError extends Error {
  override name = "DBusMethodError";
  constructor(readonly errorName: string, message: string) {
    super(message);
  }
}

export const ERROR = {
  failed: "org.freedesktop.DBus.Error.Failed",
  invalidArgs: "org.freedesktop.DBus.Error.InvalidArgs",
  unknownMethod: "org.freedesktop.DBus.Error.UnknownMethod",
  unknownObject: "org.freedesktop.DBus.Error.UnknownObject",
  unknownInterface: "org.freedesktop.DBus.Error.UnknownInterface",
  unknownProperty: "org.freedesktop.DBus.Error.UnknownProperty",
  readOnly: "org.freedesktop.DBus.Error.PropertyReadOnly",
  accessDenied: "org.freedesktop.DBus.Error.AccessDenied",
} as const;

/** Who called: the sender's unique bus name. */
export interface Caller {
  sender: string;
}

type Result = unknown | Promise<unknown>;

/** The code behind an object: per interface, its method and property handlers. */
export type ObjectHandlers = Record<string, {
  methods?: Record<string, (args: unknown[], caller: Caller) => Result>;
  properties?: Record<string, { get(): unknown; set?(value: unknown, caller: Caller): Result }>;
}>;

/** Strings longer than this are refused: no argument of ours is legitimately near it. */
export const MAX_STRING_ARG = 4096;

/** Shortens caller-supplied text for error messages and logs. */
function shown(text: unknown): string {
  const s = String(text);
  return s.length > 64 ? `${s.slice(0, 64)}... (${s.length} chars)` : s;
}

/**
 * A handler for `bus.serveCalls`: answers every method call that reaches
 * this connection (ours, its ancestors for tree walks, Peer anywhere,
 * errors for the rest).
 */
export function objectDispatcher(
  bus: BusSocket,
  object: { path: string; spec: ObjectSpec; handlers: ObjectHandlers },
  log: Logger,
): (msg: Message) => void {
  const xml = introspectionXml(object.spec);
  const parts = object.path.split("/").filter(Boolean);

  const send = (msg: Message, reply: () => Message | Uint8Array) => {
    if (msg.flags & NO_REPLY_EXPECTED) return;
    try {
      const encoded = reply();
      if (encoded instanceof Uint8Array) bus.sendEncoded(encoded);
      else bus.send(encoded);
    } catch (error) {
      // An unencodable reply (a handler returned the wrong shape): say so rather than go silent.
      log.error(`D-Bus: cannot send the reply to ${msg.member}: ${(error as Error).message}`);
      try {
        bus.send(newErrorReply(msg, ERROR.failed, "stacd could not encode its reply"));
      } catch {
        // The connection is gone; its loss is reported elsewhere.
      }
    }
  };
  // The bulky replies (list_controllers' aa{ss}, the JSON and XML strings) skip
  // dbus-next's slow marshaller; fast_reply.ts writes the same bytes.
  const methodReturn = (msg: Message, signature: string, value: unknown) =>
    FAST_SIGNATURES.has(signature)
      ? encodeMethodReturn(msg, bus.newSerial(), signature, value)
      : Message.newMethodReturn(msg, signature, signature ? [value] : []);
  const fail = (msg: Message, name: string, text: string) =>
    send(msg, () => newErrorReply(msg, name, text));
  const answer = (msg: Message, signature: string, result: () => Result) => {
    const failWith = (error: unknown) => {
      if (error instanceof DBusMethodError) return fail(msg, error.errorName, error.message);
      log.error(
        `D-Bus: ${msg.interface}.${msg.member} failed: ${(error as Error)?.stack ?? error}`,
      );
      fail(msg, ERROR.failed, `${msg.member} failed inside stacd (details in its log)`);
    };
    try {
      Promise.resolve(result()).then(
        (value) => send(msg, () => methodReturn(msg, signature, value)),
        failWith,
      );
    } catch (error) {
      failWith(error);
    }
  };

  const properties = (msg: Message) => {
    const [ifaceName, propName] = msg.body as string[];
    const ifaceSpec = object.spec[ifaceName ?? ""];
    if (!ifaceSpec) {
      throw new DBusMethodError(ERROR.unknownInterface, `No such interface: ${shown(ifaceName)}`);
    }
    const handlers = object.handlers[ifaceName!]?.properties ?? {};
    if (msg.member === "GetAll") {
      return () => {
        const all: Record<string, unknown> = {};
        for (const [name, p] of Object.entries(ifaceSpec.properties ?? {})) {
          all[name] = new Variant(p.type, handlers[name]!.get());
        }
        return all;
      };
    }
    const propSpec = ifaceSpec.properties?.[propName ?? ""];
    const handler = handlers[propName ?? ""];
    if (!propSpec || !handler) {
      throw new DBusMethodError(ERROR.unknownProperty, `No such property: ${shown(propName)}`);
    }
    if (msg.member === "Get") return () => new Variant(propSpec.type, handler.get());
    if (propSpec.access !== "readwrite" || !handler.set) {
      throw new DBusMethodError(ERROR.readOnly, `Property ${propName} is read-only`);
    }
    const value = msg.body[2] as { signature: string; value: unknown };
    if (value.signature !== propSpec.type) {
      throw new DBusMethodError(
        ERROR.invalidArgs,
        `Property ${propName} is of type ${propSpec.type}, not ${shown(value.signature)}`,
      );
    }
    return () => handler.set!(value.value, { sender: msg.sender });
  };

  // Decides how to answer: returns the reply's signature and a thunk computing its value.
  const route = (msg: Message): [string, () => Result] => {
    const member = msg.member;
    if (
      msg.interface === PEER_INTERFACE ||
      (!msg.interface && ["Ping", "GetMachineId"].includes(member))
    ) {
      if (member === "Ping" && !msg.signature) return ["", () => undefined];
      if (member === "GetMachineId" && !msg.signature) return ["s", machineId];
      throw new DBusMethodError(
        ERROR.unknownMethod,
        `No method ${shown(member)}(${msg.signature}) in ${PEER_INTERFACE}`,
      );
    }
    if (msg.path !== object.path) {
      const here = msg.path.split("/").filter(Boolean);
      const ancestor = here.length < parts.length && here.every((p, i) => p === parts[i]);
      if (ancestor && member === "Introspect" && !msg.signature) {
        return ["s", () => introspectionXml({}, [parts[here.length]!])];
      }
      throw new DBusMethodError(ERROR.unknownObject, `No object at ${shown(msg.path)}`);
    }
    // The interface is optional in a call: then the member name alone decides.
    const ifaceName = msg.interface ??
      Object.keys(object.spec).find((i) => object.spec[i]!.methods?.[member]);
    const ifaceSpec = object.spec[ifaceName ?? ""];
    if (!ifaceSpec) {
      throw new DBusMethodError(ERROR.unknownInterface, `No such interface: ${shown(ifaceName)}`);
    }
    const method = ifaceSpec.methods?.[member];
    if (!method) {
      throw new DBusMethodError(ERROR.unknownMethod, `No method ${shown(member)} in ${ifaceName}`);
    }
    const expected = signatureOf(method.in);
    if ((msg.signature ?? "") !== expected) {
      throw new DBusMethodError(
        ERROR.invalidArgs,
        `${member} takes (${expected}), not (${shown(msg.signature)})`,
      );
    }
    const tooLong = msg.body.findIndex((a) => typeof a === "string" && a.length > MAX_STRING_ARG);
    if (tooLong >= 0) {
      throw new DBusMethodError(
        ERROR.invalidArgs,
        `${member}: argument ${tooLong + 1} is too long`,
      );
    }
    const out = signatureOf(method.out);
    if (ifaceName === INTROSPECTABLE_INTERFACE) return [out, () => xml];
    if (ifaceName === PROPERTIES_INTERFACE) return [out, properties(msg)];
    const handler = object.handlers[ifaceName!]?.methods?.[member];
    if (!handler) throw new DBusMethodError(ERROR.unknownMethod, `${member} is not implemented`);
    return [out, () => handler(msg.body, { sender: msg.sender })];
  };

  return (msg: Message) => {
    try {
      const [signature, result] = route(msg);
      answer(msg, signature, result);
    } catch (error) {
      if (error instanceof DBusMethodError) {
        log.debug(`D-Bus: refused ${shown(msg.member)} from ${msg.sender}: ${error.message}`);
        fail(msg, error.errorName, error.message);
      } else {
        log.error(
          `D-Bus: dispatching ${shown(msg.member)} failed: ${(error as Error)?.stack ?? error}`,
        );
        fail(msg, ERROR.failed, "stacd could not handle this call (details in its log)");
      }
    }
  };
}

function machineId(): string {
  for (const file of ["/etc/machine-id", "/var/lib/dbus/machine-id"]) {
    try {
      const id = Deno.readTextFileSync(file).trim();
      if (id) return id;
    } catch {
      // try the next one
    }
  }
  throw new DBusMethodError(ERROR.failed, "no machine id on this host");
}
