/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * A worker that makes the N sequential raw writes of {@linkcode observedRawWrites}
 * synchronously, at the kernel's speed, while the main thread's uevent
 * listener runs beside it (as it runs beside a stacd process).
 */
import { rawWrites } from "./common.ts";

self.onmessage = (event: MessageEvent<string[]>) => {
  self.postMessage(rawWrites(event.data));
};
