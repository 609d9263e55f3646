/**
 * D-Bus messages: dbus-next's message layer (its Message, Variant and
 * DBusError classes and its marshaller), without its MessageBus. That layer
 * pulls in node:net, node:crypto, node:fs, node:child_process and xml2js,
 * which cost stacd ~4 MB of resident memory for features it does not use
 * (TCP and cookie authentication, autolaunch, proxy objects); the
 * connection itself is lib/dbus/bus_socket.ts.
 *
 * The classes are the very ones dbus-next's MessageBus uses, so messages
 * made here and there are interchangeable (the tests talk to stacd through
 * dbus-next's MessageBus).
 */
import { Buffer } from "node:buffer";
import type dbus from "dbus-next";
import { Message as MessageClass } from "dbus-next/lib/message-type.js";
import { Variant as VariantClass } from "dbus-next/lib/variant.js";
import { DBusError as DBusErrorClass } from "dbus-next/lib/errors.js";
import { marshallMessage, messageToJsFmt } from "dbus-next/lib/marshall-compat.js";
import DBusBuffer from "dbus-next/lib/dbus-buffer.js";
import { headerTypeName } from "dbus-next/lib/constants.js";

export type Message = dbus.Message;
export type MessageLike = dbus.MessageLike;
export type Variant = dbus.Variant;
export type DBusError = dbus.DBusError;
// Typed as dbus-next declares them (deno infers looser types from the JavaScript).
export const Message = MessageClass as unknown as typeof dbus.Message;
export const Variant = VariantClass as unknown as typeof dbus.Variant;
export const DBusError = DBusErrorClass as unknown as typeof dbus.DBusError;

/** An error reply to `call` (the typings declare the wrong parameter type). */
export const newErrorReply = Message.newError as unknown as (
  call: Message,
  errorName: string,
  text: string,
) => Message;

/** Message types at run time (dbus-next's typings number their enum from 0). */
export const MESSAGE_TYPE = { methodCall: 1, methodReturn: 2, error: 3, signal: 4 } as const;

/** Header flag: the caller does not want a reply (the typings' enum values are wrong). */
export const NO_REPLY_EXPECTED = 1;

/** The wire bytes of `msg`, which must carry its serial. */
export function encodeMessage(msg: Message): Uint8Array {
  // marshallMessage replaces the body it is given by its own format; serial is an accessor.
  const [bytes] = marshallMessage({ ...msg, serial: msg.serial }) as [Uint8Array, unknown[]];
  return bytes;
}

/** The message in `bytes` (one whole message, either byte order); throws if it is malformed. */
export function decodeMessage(bytes: Uint8Array): Message {
  // dbus-next's own unmarshall() fails on a message without a body; this is
  // the same reading, as its stream parser does it.
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const reader = new DBusBuffer(buffer, 0, buffer[0], null);
  const [, type, flags, , bodyLength, serial, fields] = reader.read("yyyyuua(yv)") as [
    number,
    number,
    number,
    number,
    number,
    number,
    [number, [unknown, [unknown]]][],
  ];
  const raw: Record<string, unknown> = { type, flags, serial };
  for (const [code, [, [value]]] of fields) {
    const name = headerTypeName[code];
    if (name) raw[name] = value;
  }
  if (bodyLength > 0 && raw.signature) {
    reader.align(3);
    raw.body = reader.read(raw.signature);
  }
  return new Message(messageToJsFmt(raw));
}
