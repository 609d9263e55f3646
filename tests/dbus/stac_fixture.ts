/**
 * Test helpers around stacd's D-Bus service: a private bus with the service
 * on it (over a fake or any model), and the two command-line D-Bus clients
 * that are not dbus-next, busctl (systemd) and dbus-send (dbus-bin), run
 * as root or as nobody. Usable from unit and guest tests alike.
 */
import { DBUS_DAEMON } from "../../lib/dbus/bus_socket.ts";
import { connectSystemBus, type Message } from "../../lib/dbus/bus_connection.ts";
import { STAC_BUS_NAME, STAC_INTERFACE, STAC_OBJECT_PATH } from "../../lib/dbus/idl.ts";
import type { StacModel } from "../../lib/dbus/model.ts";
import { type StacService, startStacService } from "../../lib/dbus/service.ts";
import { createLogger } from "../../lib/logger.ts";
import { MemorySink } from "../memory_sink.ts";
import { fakeStacModel } from "./fake_stac_model.ts";
import { type PrivateBus, startPrivateBus } from "./private_bus.ts";

export interface StacFixture extends AsyncDisposable {
  bus: PrivateBus;
  service: StacService;
  /** Everything the service logged (debug included). */
  sink: MemorySink;
  close(): Promise<void>;
}

/** A private bus (shipped policy by default) with the service running on `model`. */
export async function startStacFixture(
  model: StacModel = fakeStacModel(),
  options: { policies?: string[] } = {},
): Promise<StacFixture> {
  const bus = await startPrivateBus({ policies: options.policies });
  const sink = new MemorySink();
  try {
    const service = await startStacService(model, {
      log: createLogger(sink, { tron: true }),
      busAddress: bus.address,
    });
    const close = async () => {
      await service.close();
      await bus.close();
    };
    return { bus, service, sink, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await bus.close();
    throw error;
  }
}

/** What a command printed and how it exited. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Prefix that runs a command as nobody (uid/gid 65534, no supplementary groups). */
export const AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

/** Runs `command` (as nobody with `asNobody`) and collects its output. */
export async function run(
  command: string,
  args: string[],
  options: { asNobody?: boolean; env?: Record<string, string> } = {},
): Promise<Ran> {
  const [cmd, ...rest] = options.asNobody ? [...AS_NOBODY, command, ...args] : [command, ...args];
  const out = await new Deno.Command(cmd!, {
    args: rest,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/**
 * Runs `deno ARGS...` as nobody, with a throwaway DENO_DIR it may write
 * (node_modules and the checkout only need to be readable).
 */
export async function denoAsNobody(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const denoDir = await Deno.makeTempDir({ prefix: "stacd-nobody-deno-" });
  await Deno.chown(denoDir, 65534, 65534);
  try {
    return await run(Deno.execPath(), args, {
      asNobody: true,
      env: { ...env, DENO_DIR: denoDir, HOME: denoDir },
    });
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
}

/** `busctl --address=<bus> ARGS...` */
export function busctl(
  bus: { address: string },
  args: string[],
  options: { asNobody?: boolean } = {},
) {
  return run("busctl", [`--address=${bus.address}`, ...args], options);
}

/**
 * busctl arguments that call `member` of stacd's object (on `iface`, by
 * default org.nvmexpress.stac) and print the reply as JSON.
 */
export function stacCall(
  member: string,
  args: string[] = [],
  iface: string = STAC_INTERFACE,
): string[] {
  return ["--json=short", "call", STAC_BUS_NAME, STAC_OBJECT_PATH, iface, member, ...args];
}

/**
 * `dbus-send --bus=<bus> --print-reply --dest=org.nvmexpress.stac
 * /org/nvmexpress/stac ARGS...`; an error reply exits 1 with
 * `Error <name>: <text>` on stderr.
 */
export function dbusSend(
  bus: { address: string },
  args: string[],
  options: { asNobody?: boolean; path?: string; literal?: boolean } = {},
) {
  return run("dbus-send", [
    `--bus=${bus.address}`,
    options.literal ? "--print-reply=literal" : "--print-reply",
    "--dest=org.nvmexpress.stac",
    options.path ?? "/org/nvmexpress/stac",
    ...args,
  ], options);
}

/** The D-Bus error name in dbus-send's stderr, if any. */
export function errorName(ran: Ran): string | undefined {
  return /^Error ([\w.]+)/m.exec(ran.stderr)?.[1];
}

/** True if `command` is on PATH (busctl comes with systemd, which a minimal host may lack). */
export function hasCommand(command: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return Deno.statSync(`${dir}/${command}`).isFile;
    } catch {
      return false;
    }
  });
}

/** PropertiesChanged signals of /org/nvmexpress/stac, as a dbus-next client sees them. */
export interface PropertiesWatcher extends AsyncDisposable {
  /** [interface, {property: value}] per signal received so far. */
  readonly seen: [string, Record<string, unknown>][];
  /** Resolves once `count` signals have arrived (rejects after 5 s). */
  waitFor(count: number): Promise<void>;
  close(): Promise<void>;
}

/** Subscribes to stacd's PropertiesChanged on `bus` (returns once the match is in place). */
export async function watchPropertiesChanged(bus: { address: string }): Promise<PropertiesWatcher> {
  const connection = await connectSystemBus({ address: bus.address });
  const seen: [string, Record<string, unknown>][] = [];
  let wake = () => {};
  connection.bus.onSignal((msg: Message) => {
    if (msg.member !== "PropertiesChanged" || msg.path !== "/org/nvmexpress/stac") return;
    const [iface, changed] = msg.body as [string, Record<string, { value: unknown }>];
    seen.push([iface, Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, v.value]))]);
    wake();
  });
  await connection.call({
    ...DBUS_DAEMON,
    member: "AddMatch",
    signature: "s",
    body: ["type='signal',interface='org.freedesktop.DBus.Properties',path='/org/nvmexpress/stac'"],
  });
  const waitFor = async (count: number) => {
    const deadline = Date.now() + 5000;
    while (seen.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`saw ${seen.length} PropertiesChanged, wanted ${count}`);
      }
      const arrived = new Promise<void>((resolve) => wake = resolve);
      let id: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([arrived, new Promise((r) => id = setTimeout(r, 100))]);
      clearTimeout(id);
    }
  };
  const close = () => connection.close();
  return { seen, waitFor, close, [Symbol.asyncDispose]: close };
}

/**
 * The members an introspection XML declares, one line each, as
 * `iface property name type access`, `iface method name(dir type arg, ...)` or
 * `iface signal name(type arg, ...)`;
 * the standard org.freedesktop.DBus interfaces left out.
 */
export function introspectedMembers(xml: string): string[] {
  const members: string[] = [];
  for (
    const [, iface, body] of xml.matchAll(/<interface name="([^"]+)">([\s\S]*?)<\/interface>/g)
  ) {
    if (iface!.startsWith("org.freedesktop.DBus.")) continue;
    for (
      const [, name, type, access] of body!.matchAll(
        /<property name="(\w+)" type="([^"]+)" access="(\w+)"/g,
      )
    ) {
      members.push(`${iface} property ${name} ${type} ${access}`);
    }
    for (const [, name, args] of body!.matchAll(/<method name="(\w+)">([\s\S]*?)<\/method>/g)) {
      const list = [...args!.matchAll(/<arg type="([^"]+)" name="(\w+)" direction="(\w+)"/g)]
        .map(([, type, argName, dir]) => `${dir} ${type} ${argName}`);
      members.push(`${iface} method ${name}(${list.join(", ")})`);
    }
    for (
      const [, name, args] of body!.matchAll(
        /<signal name="(\w+)"\s*(?:\/>|>([\s\S]*?)<\/signal>)/g,
      )
    ) {
      const list = [...(args ?? "").matchAll(/<arg type="([^"]+)" name="(\w+)"/g)]
        .map(([, type, argName]) => `${type} ${argName}`);
      members.push(`${iface} signal ${name}(${list.join(", ")})`);
    }
  }
  return members;
}
