/**
 * Uevents for nvme controllers, read from a libudev netlink monitor.
 *
 * The wait is a `poll()` on the monitor socket and on a wake pipe, run as a
 * nonblocking FFI call: the process sleeps in the kernel until an event or
 * `close()` arrives, so an idle daemon never wakes up (no timer, no polling
 * interval). Events only tell the daemon where to look; when the socket
 * overflows they are lost, and the monitor says so with an `overflow` event so
 * the daemon re-reads sysfs.
 */

import {
  Errno,
  errnoText,
  lastErrno,
  type Libc,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  openPipe,
  pollInSet,
  POLLNVAL,
  pollRevents,
} from "../../ffi/libc.ts";
import { cstr, readCString } from "../../ffi/pointers.ts";
import {
  type Libudev,
  listEntries,
  openLibudev,
  type UdevDevice,
  type UdevMonitorHandle,
} from "../../ffi/libudev.ts";
import {
  resolveUdevSource,
  toUdevAction,
  type UdevDeviceEvent,
  udevdRunning,
  type UdevEvent,
  type UdevSource,
} from "./udev_event.ts";

/** Options of {@linkcode UdevMonitor.open}. */
export interface UdevMonitorOptions {
  /** Default "auto": "udev" when udevd runs (/run/udev/control exists), else "kernel". */
  source?: UdevSource;
  /**
   * Receive buffer of the socket, default 128 MiB so a burst of hundreds of
   * controllers fits. Above net.core.rmem_max it needs CAP_NET_ADMIN; without
   * it the socket gets rmem_max and `receiveBufferApplied` is false.
   */
  receiveBufferBytes?: number;
  /** Subsystem to receive, default "nvme". Tests pick another one they can trigger. */
  subsystem?: string;
  /** Closes the monitor when aborted. */
  signal?: AbortSignal;
  /**
   * The properties each event carries: default {@linkcode NVME_PROPERTIES};
   * "all" reads every one. Reading them costs FFI calls per property, which a
   * burst of hundreds of events feels: read only what the daemon uses.
   */
  properties?: readonly string[] | "all";
}

/** The uevent properties stacd uses (docs/design.md#udev-events). */
export const NVME_PROPERTIES: readonly string[] = [
  "ACTION",
  "DEVNAME",
  "NVME_AEN",
  "NVME_EVENT",
  "NVME_TRTYPE",
  "NVME_TRADDR",
  "NVME_TRSVCID",
  "NVME_HOST_TRADDR",
  "NVME_HOST_IFACE",
];

/** Default receive buffer: what `udevadm monitor` uses. */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 128 * 1024 * 1024;
/** Events taken per wake at most, so a storm cannot starve the rest of the daemon. */
const MAX_BATCH = 1024;

/**
 * A netlink uevent monitor filtered on one subsystem, iterated with
 * `for await (const event of monitor)`. One iteration at a time.
 */
export class UdevMonitor {
  /** The netlink group actually listened to. */
  readonly source: "udev" | "kernel";
  /** Whether the requested receive buffer size was granted. */
  readonly receiveBufferApplied: boolean;
  #ffi: Ffi;
  #resources: DisposableStack;
  #pollSet: Uint8Array<ArrayBuffer>;
  #polling: Promise<number> | null = null;
  #iterating = false;
  #queue: UdevEvent[] = [];
  #closed: Promise<void> | null = null;
  #signal: AbortSignal | undefined;
  #properties: readonly string[] | "all";
  #onAbort = () => void this.close();

  private constructor(ffi: Ffi, resources: DisposableStack, init: MonitorInit) {
    this.source = init.source;
    this.receiveBufferApplied = init.receiveBufferApplied;
    this.#ffi = ffi;
    this.#resources = resources;
    this.#pollSet = pollInSet([ffi.monitorFd, ffi.wakeRead]);
    this.#signal = init.signal;
    this.#properties = init.properties;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Opens and starts a monitor; events that happen from now on are queued in
   * the socket until read.
   * @throws {LibraryNotFoundError} when libudev is missing.
   * @throws {Error} when the socket cannot be created or bound.
   */
  static open(options: UdevMonitorOptions = {}): UdevMonitor {
    options.signal?.throwIfAborted();
    const source = resolveUdevSource(options.source ?? "auto", udevdRunning());
    const subsystem = options.subsystem ?? "nvme";
    using stack = new DisposableStack();
    const c = libc();
    const u = stack.adopt(openLibudev(), (lib) => lib.close()).symbols;
    const monitorName = `the udev monitor on "${source}" for "${subsystem}"`;
    const fail = (what: string, errno: number) =>
      new Error(`Cannot open ${monitorName}: ${what}: ${errnoText(c, errno)}`);
    const udev = u.udev_new();
    if (udev === null) throw fail("udev_new", lastErrno(c));
    stack.defer(() => u.udev_unref(udev));
    const monitor = u.udev_monitor_new_from_netlink(udev, cstr(source));
    if (monitor === null) throw fail("udev_monitor_new_from_netlink", lastErrno(c));
    stack.defer(() => u.udev_monitor_unref(monitor));
    let rc = u.udev_monitor_filter_add_match_subsystem_devtype(monitor, cstr(subsystem), null);
    if (rc < 0) throw fail("udev_monitor_filter_add_match_subsystem_devtype", -rc);
    // Before enabling. Without CAP_NET_ADMIN the socket gets net.core.rmem_max
    // instead: a smaller margin, still enough for ordinary rates of events.
    const size = options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES;
    const receiveBufferApplied = u.udev_monitor_set_receive_buffer_size(monitor, size) >= 0;
    rc = u.udev_monitor_enable_receiving(monitor);
    if (rc < 0) throw fail("udev_monitor_enable_receiving", -rc);
    // libudev opens the socket SOCK_NONBLOCK, so receiving never blocks the JS thread.
    const monitorFd = u.udev_monitor_get_fd(monitor);
    const [wakeRead, wakeWrite] = openPipe(c, O_NONBLOCK | O_CLOEXEC);
    stack.defer(() => c.close(wakeRead));
    stack.defer(() => c.close(wakeWrite));

    const ffi = { c, u, monitor, monitorFd, wakeRead, wakeWrite };
    const init = {
      source,
      receiveBufferApplied,
      signal: options.signal,
      properties: options.properties ?? NVME_PROPERTIES,
    };
    return new UdevMonitor(ffi, stack.move(), init);
  }

  /** Yields events as they arrive, until {@linkcode close}. Breaking out loses nothing. */
  async *[Symbol.asyncIterator](): AsyncGenerator<UdevEvent, void, undefined> {
    if (this.#iterating) throw new TypeError("UdevMonitor is already being iterated");
    this.#iterating = true;
    try {
      while (this.#closed === null) {
        // Events drained but not yet taken stay queued across iterations, so
        // breaking out of a `for await` loses nothing.
        const event = this.#queue.shift();
        if (event !== undefined) yield event;
        else if (await this.#wait()) this.#queue = this.#drain();
      }
    } finally {
      this.#iterating = false;
    }
  }

  /**
   * Stops the monitor and frees the socket, the pipe and libudev. A
   * pending wait is woken at once; the promise settles when all is freed.
   * Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed === null) {
      this.#signal?.removeEventListener("abort", this.#onAbort);
      const polling = this.#polling;
      if (polling === null) {
        this.#resources.dispose();
        this.#closed = Promise.resolve();
      } else {
        // The poll thread still uses the descriptors and the poll set: wake it
        // and free them only once it has returned.
        this.#ffi.c.write(this.#ffi.wakeWrite, new Uint8Array(1), 1n);
        this.#closed = polling.then(() => this.#resources.dispose());
      }
    }
    return this.#closed;
  }

  /** Same as {@linkcode close}, without waiting. */
  [Symbol.dispose](): void {
    void this.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Sleeps until the socket is readable (true) or the monitor is closed (false). */
  async #wait(): Promise<boolean> {
    while (this.#closed === null) {
      this.#polling = this.#ffi.c.poll(this.#pollSet, 2n, -1);
      const ready = await this.#polling;
      this.#polling = null;
      if (this.#closed !== null) return false;
      const revents = pollRevents(this.#pollSet, 0);
      if (revents & POLLNVAL) throw new Error("The udev monitor socket was closed underneath");
      // ready < 0 is EINTR (a signal landed on the poll thread): poll again.
      if (ready > 0 && revents !== 0) return true;
    }
    return false;
  }

  /** Takes what is queued in the socket, without blocking. */
  #drain(): UdevEvent[] {
    const { c, u, monitor } = this.#ffi;
    const events: UdevEvent[] = [];
    while (events.length < MAX_BATCH) {
      const device = u.udev_monitor_receive_device(monitor);
      if (device === null) {
        // Read at once: the next FFI call may overwrite errno. EAGAIN means
        // the queue is empty; ENOBUFS is reported once per overflow, and the
        // events queued after it are still there to read.
        const errno = lastErrno(c);
        if (errno !== Errno.ENOBUFS) break;
        if (events.at(-1)?.action !== "overflow") events.push({ action: "overflow" });
        continue;
      }
      try {
        events.push(this.#toEvent(device));
      } finally {
        u.udev_device_unref(device);
      }
    }
    return events;
  }

  #readProperties(device: UdevDevice): Record<string, string> {
    const { u } = this.#ffi;
    if (this.#properties === "all") {
      return Object.fromEntries(listEntries(u, u.udev_device_get_properties_list_entry(device)));
    }
    const properties: Record<string, string> = {};
    for (const name of this.#properties) {
      const value = readCString(u.udev_device_get_property_value(device, cstr(name)));
      if (value !== undefined) properties[name] = value;
    }
    return properties;
  }

  #toEvent(device: UdevDevice): UdevDeviceEvent {
    const { u } = this.#ffi;
    return {
      action: toUdevAction(readCString(u.udev_device_get_action(device))),
      sysname: readCString(u.udev_device_get_sysname(device)) ?? "",
      devpath: readCString(u.udev_device_get_devpath(device)) ?? "",
      subsystem: readCString(u.udev_device_get_subsystem(device)) ?? "",
      properties: this.#readProperties(device),
    };
  }
}

/** The C side of one monitor; the monitor's DisposableStack frees all of it. */
type Ffi = {
  c: Libc;
  u: Libudev;
  monitor: UdevMonitorHandle;
  monitorFd: number;
  wakeRead: number;
  wakeWrite: number;
};
type MonitorInit = Pick<UdevMonitor, "source" | "receiveBufferApplied"> & {
  signal: AbortSignal | undefined;
  properties: readonly string[] | "all";
};
