/**
 * Serves one D-Bus object from its {@linkcode ObjectSpec} and handlers,
 * replacing dbus-next's service layer, which answers a Set of a read-only
 * property twice, reads /var/lib/dbus/machine-id unguarded, and cannot show
 * argument names. Here every call is checked against the spec before a
 * handler runs, every handler runs guarded, and every call that wants a
 * reply gets exactly one: a return, or a standard D-Bus error (a call
 * flagged NO_REPLY_EXPECTED gets none, and is not run at all if it only
 * reads). Nothing a caller sends can throw out of the dispatcher.
 */
import type { Logger } from "../logger.ts";
import type { BusSocket } from "./bus_socket.ts";
import { encodeMessage, Message, newErrorReply, NO_REPLY_EXPECTED, Variant } from "./message.ts";
import { encodeBody, FAST_SIGNATURES, methodReturnWithBody } from "./fast_reply.ts";
import { type Admitted, LIMITS_EXCEEDED, MAX_OUTBOX_BYTES, SenderBudget } from "./sender_budget.ts";
import { TurnCache } from "./turn_cache.ts";
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
  limitsExceeded: LIMITS_EXCEEDED,
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
 * Whether a call of `member` only reads: all of ours but a property Set.
 * Such a call that wants no reply is not worth running (BusSocket's `dropOneWay`).
 */
export function onlyReads(member: string | undefined): boolean {
  return member !== undefined && member !== "Set";
}

/**
 * A handler for `bus.serveCalls`: answers every method call that reaches
 * this connection (ours, its ancestors for tree walks, Peer anywhere,
 * errors for the rest). A read nobody wants the reply to is not run at all;
 * a caller past its {@linkcode SenderBudget} gets LimitsExceeded, as does
 * everyone while our outbox is over MAX_OUTBOX_BYTES (the bus is not
 * reading us); equal reads in one dispatch run share one reply body.
 */
export function objectDispatcher(
  bus: BusSocket,
  object: { path: string; spec: ObjectSpec; handlers: ObjectHandlers },
  log: Logger,
): (msg: Message) => void {
  const xml = introspectionXml(object.spec);
  const parts = object.path.split("/").filter(Boolean);

  const budget = new SenderBudget();
  const bodies = new TurnCache<Uint8Array>();

  /** Queues the reply, counted against the caller until written (`admitted` absent: not counted). */
  const send = (msg: Message, reply: () => Message | Uint8Array, admitted?: Admitted) => {
    if (msg.flags & NO_REPLY_EXPECTED) return admitted?.done();
    const queue = (made: Message | Uint8Array) => {
      if (!(made instanceof Uint8Array)) made.serial ??= bus.newSerial();
      const bytes = made instanceof Uint8Array ? made : encodeMessage(made);
      bus.sendEncoded(bytes, admitted?.queued(bytes.length));
    };
    try {
      try {
        queue(reply());
      } catch (error) {
        if (bus.ended) throw error;
        // An unencodable reply (a handler returned the wrong shape): say so rather than go silent.
        log.error(`D-Bus: cannot send the reply to ${msg.member}: ${(error as Error).message}`);
        queue(newErrorReply(msg, ERROR.failed, "stacd could not encode its reply"));
      }
    } catch {
      // The connection is gone; its loss is reported elsewhere.
      admitted?.done();
    }
  };
  // The bulky replies (list_controllers' aa{ss}, the JSON and XML strings) skip
  // dbus-next's slow marshaller; fast_reply.ts writes the same bytes. A read's
  // body is kept for equal reads later in the same dispatch run (`key`).
  const methodReturn = (msg: Message, signature: string, value: unknown, key?: string) => {
    if (!FAST_SIGNATURES.has(signature)) {
      return Message.newMethodReturn(msg, signature, signature ? [value] : []);
    }
    const body = encodeBody(signature, value);
    if (key !== undefined) bodies.set(key, body);
    return methodReturnWithBody(msg, bus.newSerial(), signature, body);
  };
  const fail = (msg: Message, name: string, text: string, admitted?: Admitted) =>
    send(msg, () => newErrorReply(msg, name, text), admitted);
  const answer = (
    msg: Message,
    [signature, result]: [string, () => Result],
    admitted: Admitted,
  ) => {
    const failWith = (error: unknown) => {
      if (error instanceof DBusMethodError) {
        return fail(msg, error.errorName, error.message, admitted);
      }
      log.error(
        `D-Bus: ${msg.interface}.${msg.member} failed: ${(error as Error)?.stack ?? error}`,
      );
      fail(msg, ERROR.failed, `${msg.member} failed inside stacd (details in its log)`, admitted);
    };
    const key = onlyReads(msg.member) ? readKey(msg) : undefined;
    const cached = key === undefined ? undefined : bodies.get(key);
    if (cached) {
      return send(
        msg,
        () => methodReturnWithBody(msg, bus.newSerial(), signature, cached),
        admitted,
      );
    }
    let value: unknown;
    try {
      value = result();
    } catch (error) {
      return failWith(error);
    }
    // Only a value computed now describes the state of this dispatch run.
    if (!(value instanceof Promise)) {
      return send(msg, () => methodReturn(msg, signature, value, key), admitted);
    }
    value.then((v) => send(msg, () => methodReturn(msg, signature, v), admitted), failWith);
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
    // A read whose reply nobody waits for changes nothing and is not worth a cycle.
    if (msg.flags & NO_REPLY_EXPECTED && onlyReads(msg.member)) return;
    const admitted = bus.queuedBytes >= MAX_OUTBOX_BYTES
      ? `${bus.queuedBytes} bytes of replies are not yet taken by the bus`
      : budget.admit(msg.sender);
    // Not logged: a flood of refusals would flood the log too.
    if (typeof admitted === "string") {
      return fail(msg, ERROR.limitsExceeded, `stacd is busy (${admitted}); try again later`);
    }
    try {
      answer(msg, route(msg), admitted);
    } catch (error) {
      if (error instanceof DBusMethodError) {
        log.debug(`D-Bus: refused ${shown(msg.member)} from ${msg.sender}: ${error.message}`);
        fail(msg, error.errorName, error.message, admitted);
      } else {
        log.error(
          `D-Bus: dispatching ${shown(msg.member)} failed: ${(error as Error)?.stack ?? error}`,
        );
        fail(msg, ERROR.failed, "stacd could not handle this call (details in its log)", admitted);
      }
    }
  };
}

/** What makes two reads equal: where, what and with which arguments (strings and booleans). */
function readKey(msg: Message): string {
  return JSON.stringify([msg.path, msg.interface ?? "", msg.member, msg.signature ?? "", msg.body]);
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
