/**
 * Boots the test guest and runs bench/connect_ffi_guest.ts in it: 32
 * connects through the libnvme binding vs 32 raw /dev/nvme-fabrics writes,
 * timed in the same run (TCG makes absolute times meaningless).
 *
 * Usage: deno task bench:connect
 */
import { runInGuest } from "../tests/guest/guest.ts";
import { checkoutDir } from "../tests/guest/host.ts";
import { ensureHostPackages } from "../tests/guest/setup.ts";

await ensureHostPackages();
const deno = `${checkoutDir}/node_modules/.bin/deno`;
const r = await runInGuest({
  script: `exec '${deno}' run --allow-all --frozen bench/connect_ffi_guest.ts\n`,
  timeoutMs: 600_000,
  onOutput: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
});
if (r.exitCode !== 0) {
  console.error(r.console);
  Deno.exit(r.exitCode ?? 1);
}
const json = await Deno.readTextFile(`${r.outDir}/connect_ffi.json`).catch(() => undefined);
if (json) {
  await Deno.mkdir(`${checkoutDir}/out`, { recursive: true });
  await Deno.writeTextFile(`${checkoutDir}/out/bench-connect-ffi.json`, json);
}
