/**
 * The shipped etc/stas/*.conf files document every option: uncommenting
 * each `#option = value` line gives a file stacd reads without complaint,
 * and the defaults shown are the defaults stacd uses.
 */
import assert from "node:assert/strict";
import { defaultStacdConfig, parseStacdConfig } from "../../../lib/config/stacd_conf.ts";

const root = new URL("../../../", import.meta.url).pathname;

/** `#name = value` lines (with a value) turned into live lines. */
function uncommented(text: string): string {
  return text.split("\n").map((line) => line.replace(/^#([a-z][a-z-]*\s*=\s*\S.*)$/, "$1")).join(
    "\n",
  );
}

Deno.test("the shipped stacd.conf is read without any diagnostic beyond info", async () => {
  const text = await Deno.readTextFile(`${root}etc/stas/stacd.conf`);
  const { diagnostics } = parseStacdConfig(text, "stacd.conf");
  assert.deepEqual(diagnostics.filter((d) => d.level !== "info"), []);
});

Deno.test("every option shown in the shipped stacd.conf is known and valid", async () => {
  const text = uncommented(await Deno.readTextFile(`${root}etc/stas/stacd.conf`));
  const { config, diagnostics } = parseStacdConfig(text, "stacd.conf");
  assert.deepEqual(diagnostics.filter((d) => d.level !== "info"), []);
  assert.equal(config.controllers.length, 2);
  assert.equal(config.excluded.length, 2);
});

Deno.test("the defaults shown in the shipped stacd.conf are stacd's defaults", async () => {
  const text = (await Deno.readTextFile(`${root}etc/stas/stacd.conf`))
    .split("\n").filter((l) => !/^#(controller|exclude)\s*=/.test(l)).join("\n");
  const { config } = parseStacdConfig(uncommented(text), "stacd.conf");
  assert.deepEqual(config, defaultStacdConfig());
});
