/**
 * stacd's symbol tables list only what stacd calls: every symbol must
 * resolve when a library is opened, so one that is declared and never
 * called can only make stacd fail to start on a library that lacks it.
 * What only the tests call lives in tests/ffi/.
 */
import assert from "node:assert/strict";
import { LIBC_SYMBOLS } from "../../../ffi/libc.ts";
import { LIBNVME_SYMBOLS } from "../../../ffi/libnvme.ts";
import { LIBUDEV_SYMBOLS } from "../../../ffi/libudev.ts";

const root = new URL("../../../", import.meta.url).pathname;

/** The text of main.ts and of every .ts file under lib/ and ffi/. */
function productSource(): string {
  const texts = [Deno.readTextFileSync(`${root}main.ts`)];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (entry.name.endsWith(".ts")) texts.push(Deno.readTextFileSync(path));
    }
  };
  walk(`${root}lib`);
  walk(`${root}ffi`);
  return texts.join("\n");
}

for (
  const [library, table] of [
    ["libc", LIBC_SYMBOLS],
    ["libnvme", LIBNVME_SYMBOLS],
    ["libudev", LIBUDEV_SYMBOLS],
  ] as const
) {
  Deno.test(`every ${library} symbol in stacd's table is called by stacd`, () => {
    const source = productSource();
    // A call reads `x.name(`; the table itself spells `name: {`.
    const uncalled = Object.keys(table).filter((name) => !source.includes(`.${name}(`));
    assert.deepEqual(uncalled, []);
  });
}
