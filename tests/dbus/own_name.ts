/**
 * Tries to start stacd's D-Bus service on DBUS_SYSTEM_BUS_ADDRESS with an
 * empty model and prints `owned` or the error: lets a test show, as a
 * non-root user, that the bus policy keeps org.nvmexpress.stac for root.
 */
import { startStacService } from "../../lib/dbus/service.ts";
import { createLogger } from "../../lib/logger.ts";
import { MemorySink } from "../memory_sink.ts";

const model = {
  tron: false,
  processInfo: () => ({}),
  listControllers: () => [],
  controllerInfo: () => undefined,
};
try {
  const service = await startStacService(model, { log: createLogger(new MemorySink()) });
  console.log("owned");
  await service.close();
} catch (error) {
  console.log((error as Error).message);
  Deno.exit(1);
}
