/**
 * What the D-Bus service shows of stacd, behind an interface: the service
 * (lib/dbus/service.ts) only formats and validates; the daemon implements
 * this from its state. Tests implement it with plain objects.
 */

/** The identity arguments of controller_info(), as D-Bus passes them. */
export interface ControllerQuery {
  transport: string;
  traddr: string;
  trsvcid: string;
  subsysnqn: string;
  hostTraddr: string;
  hostIface: string;
  hostNqn: string;
}

/** Everything org.nvmexpress.stac and org.nvmexpress.stac.debug expose. */
export interface StacModel {
  /** Debug logging on/off (property tron; setting it is root-only by bus policy). */
  tron: boolean;
  /**
   * process_info(): flat keys with dots (`kernel support.TP8013`), values
   * as upstream formats them; the host key never appears (redacted).
   */
  processInfo(): Record<string, string | boolean | null>;
  /**
   * list_controllers(detailed): one string dict per controller, with the
   * keys of docs/design.md#controller-dicts; never a DH-HMAC-CHAP key.
   */
  listControllers(detailed: boolean): Record<string, string>[];
  /** controller_info(...): the detailed dict of that controller, or undefined if unknown. */
  controllerInfo(query: ControllerQuery): Record<string, string> | undefined;
}

/** The seven identity arguments of controller_info() and get_log_pages(), as D-Bus passes them. */
export function controllerQuery(args: readonly unknown[]): ControllerQuery {
  const [transport, traddr, trsvcid, subsysnqn, hostTraddr, hostIface, hostNqn] = args.map(
    String,
  );
  return {
    transport: transport!,
    traddr: traddr!,
    trsvcid: trsvcid!,
    subsysnqn: subsysnqn!,
    hostTraddr: hostTraddr!,
    hostIface: hostIface!,
    hostNqn: hostNqn!,
  };
}
