/**
 * What only the tests and the stafd stand-in do: a one-shot discovery
 * (connect a discovery controller, read its log page, delete it).
 */
import { decodeDiscoveryPage } from "../lib/core/discovery_page.ts";
import type { DiscoveryLogEntry } from "../lib/core/discovery_log.ts";
import { deleteController } from "../lib/kernel/fabrics_device.ts";
import type { ConnectTarget, FabricsOptions, HostIdentity } from "../lib/core/connect_request.ts";
import type { Libnvme } from "../lib/kernel/libnvme.ts";
import { readDiscoveryLog } from "../lib/kernel/discovery_log_reader.ts";

/**
 * Connects a discovery controller through stacd's binding, reads its
 * discovery log page and deletes the controller again.
 */
export async function discover(
  nvme: Libnvme,
  host: HostIdentity,
  target: ConnectTarget,
  options: FabricsOptions = {},
): Promise<DiscoveryLogEntry[]> {
  using ctrl = nvme.controller(host, target);
  const device = await ctrl.connect(options);
  try {
    return decodeDiscoveryPage(await readDiscoveryLog(device)).entries;
  } finally {
    await deleteController(device);
  }
}
