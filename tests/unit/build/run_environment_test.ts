/**
 * STACD_RUN_ENV (build/permissions.ts) reaches stacd by every way it is
 * started that the project ships: the systemd unit, the launcher that
 * `deno task install` writes, and the container image.
 */
import assert from "node:assert/strict";
import { launcherScript } from "../../../build/install.ts";
import { STACD_RUN_ENV } from "../../../build/permissions.ts";
import { parseUnit, valuesOf } from "../../../build/systemd_unit.ts";
import { environment } from "../../../container/runtime_stage.ts";

const read = (path: string) => Deno.readTextFileSync(new URL(`../../../${path}`, import.meta.url));

Deno.test("STACD_RUN_ENV sets one malloc arena", () => {
  assert.deepEqual(STACD_RUN_ENV, { MALLOC_ARENA_MAX: "1" });
});

Deno.test("the systemd unit sets STACD_RUN_ENV", () => {
  const unit = parseUnit(read("systemd/stacd.service"));
  const set = Object.fromEntries(
    valuesOf(unit, "Environment", "Service").flatMap((v) => v.split(/\s+/)).map((pair) => {
      const at = pair.indexOf("=");
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  for (const [key, value] of Object.entries(STACD_RUN_ENV)) assert.equal(set[key], value, key);
});

Deno.test("the container image sets STACD_RUN_ENV", () => {
  const env = environment(read("container/Containerfile"));
  for (const [key, value] of Object.entries(STACD_RUN_ENV)) assert.equal(env[key], value, key);
});

Deno.test("the launcher exports STACD_RUN_ENV to deno, a value from its caller winning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stacd-launcher-env-" });
  try {
    // A "deno" that prints the environment it was given.
    await Deno.writeTextFile(`${dir}/deno`, "#!/bin/sh\nexec env\n", { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/stacd`, launcherScript(`${dir}/deno`), { mode: 0o755 });
    const run = async (env: Record<string, string>) => {
      const out = await new Deno.Command(`${dir}/stacd`, { env, clearEnv: true }).output();
      assert.equal(out.code, 0);
      return new TextDecoder().decode(out.stdout).split("\n");
    };
    const plain = await run({ PATH: "/usr/bin:/bin" });
    for (const [key, value] of Object.entries(STACD_RUN_ENV)) {
      assert.ok(plain.includes(`${key}=${value}`), `${key}=${value} in ${plain.join(" ")}`);
    }
    const chosen = await run({ PATH: "/usr/bin:/bin", MALLOC_ARENA_MAX: "4" });
    assert.ok(chosen.includes("MALLOC_ARENA_MAX=4"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
