/**
 * A D-Bus caller in a Worker, for tests that need calls to reach stacd
 * together while stacd (in the test's own thread) holds its event loop: a
 * timed pause would race the machine's load. The test and the workers
 * share flags (see {@linkcode BurstFlags}); a worker connects, waits for
 * its turn, writes `count` list_controllers(true) calls at once, makes sure
 * the bus has routed them (a round trip to the bus after them: the bus
 * handles one connection's messages in order), raises its flag, and posts
 * what the calls got back.
 */
/// <reference lib="deno.worker" />
import { BusSocket, DBUS_DAEMON } from "../../lib/dbus/bus_socket.ts";
import { DBusError, Message } from "../../lib/dbus/message.ts";
import { listControllersCall } from "./flood_client.ts";

/** Indexes in the shared Int32Array: each is 0 until its event. */
export const BurstFlags = { held: 0, first: 1, second: 2 } as const;

export interface BurstRequest {
  address: string;
  count: number;
  flags: Int32Array;
  /** The flag to wait for before sending, and the one to raise once routed. */
  after: number;
  raise: number;
}

/** What the calls got: replies as JSON bodies, errors by name. */
export interface BurstOutcome {
  bodies: string[];
  errors: string[];
}

self.onmessage = async (event: MessageEvent<BurstRequest>) => {
  const { address, count, flags, after, raise } = event.data;
  const bus = BusSocket.open(address);
  await bus.ready;
  Atomics.wait(flags, after, 0);
  const calls = Array.from({ length: count }, () => bus.call(listControllersCall()));
  await bus.call(new Message({ ...DBUS_DAEMON, member: "GetId" }));
  Atomics.store(flags, raise, 1);
  Atomics.notify(flags, raise);
  const outcome: BurstOutcome = { bodies: [], errors: [] };
  for (const result of await Promise.allSettled(calls)) {
    if (result.status === "fulfilled") outcome.bodies.push(JSON.stringify(result.value.body));
    else {
      const error = result.reason as Error;
      outcome.errors.push(error instanceof DBusError ? error.type : String(error));
    }
  }
  await bus.close();
  self.postMessage(outcome);
  self.close();
};
