/**
 * Which network interface holds a local address: what tcp's host-iface
 * rule needs when the kernel says where a connection's socket is
 * (src_addr) but not on which interface (see transport_id.ts).
 */
import { sameAddress } from "../core/transport_id.ts";

/** The interface holding `address`, from getifaddrs(3); undefined when none does. */
export function ifaceOfAddress(address: string): string | undefined {
  // Asked only for tcp controllers that name a host-iface: no cache to go stale.
  return Deno.networkInterfaces().find((i) => sameAddress(i.address, address, "tcp"))?.name;
}
