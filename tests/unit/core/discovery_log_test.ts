import assert from "node:assert/strict";
import { eflagsNcc, treqRequiresSecureChannel } from "../../../lib/core/discovery_log.ts";

Deno.test("eflagsNcc() reads bit 2 only", () => {
  assert.equal(eflagsNcc("4"), true);
  assert.equal(eflagsNcc("3"), false);
  assert.equal(eflagsNcc("junk"), false);
});

Deno.test("treqRequiresSecureChannel() reads TREQ bits 0-1 from a number or a name", () => {
  // A Linux target's TLS port: required (1) plus SQ flow control disable (4).
  for (
    const treq of [
      "5",
      "1",
      "0x05",
      "required",
      " Required ",
      "required, sq flow control disable supported",
    ]
  ) {
    assert.equal(treqRequiresSecureChannel(treq), true, treq);
  }
  for (
    const treq of [
      "0",
      "2",
      "3",
      "4",
      "6",
      "not specified",
      "not required",
      "disable sqflow",
      "not specified, sq flow control disable supported",
      "not required, sq flow control disable supported",
      "",
      "junk",
    ]
  ) {
    assert.equal(treqRequiresSecureChannel(treq), false, treq);
  }
});
