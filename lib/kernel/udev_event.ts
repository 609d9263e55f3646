/**
 * The events a udev monitor delivers, and where they come from. An event only
 * names what to look at: the daemon re-reads sysfs for the device (or for
 * everything after an overflow) rather than trusting the event's content to
 * be complete.
 */

/** Where events come from: udevd (after its rules ran), the kernel, or whichever runs here. */
export type UdevSource = "auto" | "udev" | "kernel";

/** udevd's control socket exists while it runs; without udevd the "udev" group stays silent. */
export function udevdRunning(): boolean {
  try {
    Deno.statSync("/run/udev/control");
    return true;
  } catch {
    return false; // absent, or unreadable to us (Deno permissions): listen to the kernel
  }
}

/** Picks the netlink group for `source`: "auto" follows whether udevd runs. */
export function resolveUdevSource(source: UdevSource, udevdRunning: boolean): "udev" | "kernel" {
  if (source !== "auto") return source;
  return udevdRunning ? "udev" : "kernel";
}

/** The actions the kernel emits (lib/kobject_uevent.c, `kobject_actions[]`). */
export const UDEV_ACTIONS = [
  "add",
  "remove",
  "change",
  "move",
  "online",
  "offline",
  "bind",
  "unbind",
] as const;
/** One of {@linkcode UDEV_ACTIONS}. */
export type UdevAction = typeof UDEV_ACTIONS[number];

/** A uevent for one device. */
export interface UdevDeviceEvent {
  /** What happened; an action unknown to this code is reported as "change". */
  action: UdevAction;
  /** Kernel name, e.g. "nvme3". */
  sysname: string;
  /** Path below /sys, e.g. "/devices/virtual/nvme-fabrics/ctl/nvme3". */
  devpath: string;
  /** e.g. "nvme". */
  subsystem: string;
  /** Every uevent property: ACTION, DEVNAME, NVME_EVENT, NVME_AEN, NVME_TRTYPE, NVME_TRADDR, ... */
  properties: Record<string, string>;
}

/** The socket's receive buffer overflowed: events were lost, re-read the whole state. */
export interface UdevOverflowEvent {
  action: "overflow";
}

/** What a `UdevMonitor` yields. */
export type UdevEvent = UdevDeviceEvent | UdevOverflowEvent;

/** Maps the ACTION text to a {@linkcode UdevAction}; anything unknown (or absent) reads as "change". */
export function toUdevAction(text: string | undefined): UdevAction {
  return (UDEV_ACTIONS as readonly (string | undefined)[]).includes(text)
    ? text as UdevAction
    : "change";
}
