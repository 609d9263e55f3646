/**
 * A client of stacd's D-Bus API (docs/design.md#d-bus-api), for stacctl and for tests:
 * typed calls with timeouts, and replies checked before use (a reply of
 * the wrong shape is an error, not a crash).
 */
import { type BusConnection, connectSystemBus, type Message, Variant } from "./bus_connection.ts";
import {
  CONTROLLER_INFO_ARGS,
  STAC_BUS_NAME,
  STAC_DEBUG_INTERFACE,
  STAC_INTERFACE,
  STAC_OBJECT_PATH,
  STAF_BUS_NAME,
  STAF_DEBUG_INTERFACE,
  STAF_INTERFACE,
  STAF_OBJECT_PATH,
} from "./idl.ts";

/** Where each daemon is on the bus. */
const DAEMONS = {
  stacd: {
    name: STAC_BUS_NAME,
    path: STAC_OBJECT_PATH,
    iface: STAC_INTERFACE,
    debug: STAC_DEBUG_INTERFACE,
  },
  stafd: {
    name: STAF_BUS_NAME,
    path: STAF_OBJECT_PATH,
    iface: STAF_INTERFACE,
    debug: STAF_DEBUG_INTERFACE,
  },
} as const;
import { PROPERTIES_INTERFACE } from "./introspection.ts";

/** A controller as list_controllers describes it: string keys and values. */
export type ControllerDict = Record<string, string>;

/** The dict keys of list_controllers that identify a controller, in controller_info's order. */
export const CONTROLLER_ID_KEYS = [
  "transport",
  "traddr",
  "trsvcid",
  "subsysnqn",
  "host-traddr",
  "host-iface",
  "host-nqn",
] as const;

export class StacClient {
  #connection: BusConnection;
  readonly #at: typeof DAEMONS[keyof typeof DAEMONS];

  private constructor(connection: BusConnection, daemon: keyof typeof DAEMONS) {
    this.#connection = connection;
    this.#at = DAEMONS[daemon];
  }

  /** Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS when set); each call then waits at most `timeoutMs`. */
  static async connect(
    options: { address?: string; timeoutMs?: number; daemon?: "stacd" | "stafd" } = {},
  ): Promise<StacClient> {
    return new StacClient(await connectSystemBus(options), options.daemon ?? "stacd");
  }

  async #call(
    iface: string,
    member: string,
    signature: string,
    body: unknown[],
    out: string,
  ): Promise<unknown> {
    const reply = await this.#connection.call({
      destination: this.#at.name,
      path: this.#at.path,
      interface: iface,
      member,
      signature,
      body,
    });
    return expect(reply, member, out);
  }

  /** list_controllers(detailed). */
  async listControllers(detailed: boolean): Promise<ControllerDict[]> {
    return await this.#call(
      this.#at.iface,
      "list_controllers",
      "b",
      [detailed],
      "aa{ss}",
    ) as ControllerDict[];
  }

  /** process_info(), parsed. */
  async processInfo(): Promise<Record<string, unknown>> {
    return jsonObject(
      await this.#call(this.#at.debug, "process_info", "", [], "s") as string,
    );
  }

  /** controller_info() of the controller `c` identifies; `{}` if stacd does not know it. */
  async controllerInfo(c: Readonly<ControllerDict>): Promise<Record<string, unknown>> {
    const args = CONTROLLER_ID_KEYS.map((k) => c[k] ?? "");
    const sig = "s".repeat(CONTROLLER_INFO_ARGS.length);
    return jsonObject(
      await this.#call(this.#at.debug, "controller_info", sig, args, "s") as string,
    );
  }

  /** stafd's get_log_pages() of the discovery controller `c` identifies ([] if unknown). */
  async logPages(c: Readonly<ControllerDict>): Promise<ControllerDict[]> {
    const args = CONTROLLER_ID_KEYS.map((k) => c[k] ?? "");
    return await this.#call(
      this.#at.iface,
      "get_log_pages",
      "sssssss",
      args,
      "aa{ss}",
    ) as ControllerDict[];
  }

  /** stafd's get_all_log_pages(detailed), parsed. */
  async allLogPages(detailed: boolean): Promise<unknown> {
    const text = await this.#call(this.#at.iface, "get_all_log_pages", "b", [detailed], "s");
    return JSON.parse(text as string);
  }

  /** The tron property. */
  async getTron(): Promise<boolean> {
    const v = await this.#call(
      PROPERTIES_INTERFACE,
      "Get",
      "ss",
      [this.#at.debug, "tron"],
      "v",
    );
    const variant = v as { signature: string; value: unknown };
    if (variant.signature !== "b") {
      throw new Error(`tron is of type ${variant.signature}, not b`);
    }
    return variant.value as boolean;
  }

  /** Sets tron (root only). */
  async setTron(on: boolean): Promise<void> {
    await this.#call(PROPERTIES_INTERFACE, "Set", "ssv", [
      this.#at.debug,
      "tron",
      new Variant("b", on),
    ], "");
  }

  /** Disconnects; idempotent. */
  async close(): Promise<void> {
    await this.#connection.close();
  }
}

function expect(reply: Message, member: string, signature: string): unknown {
  if ((reply.signature ?? "") !== signature) {
    throw new Error(`stacd answered ${member} with (${reply.signature}) instead of (${signature})`);
  }
  return reply.body[0];
}

function jsonObject(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("stacd's reply is not a JSON object");
  }
  return value as Record<string, unknown>;
}
