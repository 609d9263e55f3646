import assert from "node:assert/strict";
import { ifaceOfAddress } from "../../../lib/kernel/net_iface.ts";

Deno.test("ifaceOfAddress() names the interface holding a local address, in any spelling", () => {
  const lo = Deno.networkInterfaces().find((i) => i.address === "127.0.0.1");
  assert.ok(lo, "this host has 127.0.0.1");
  assert.equal(ifaceOfAddress("127.0.0.1"), lo.name);
  assert.equal(ifaceOfAddress("192.0.2.77"), undefined, "TEST-NET-1 is nobody's");
});
