import assert from "node:assert/strict";
import { sendDatagram } from "../../lib/unix_datagram.ts";
import { datagramReceiver } from "./datagram_receiver.ts";

Deno.test("sendDatagram() delivers one datagram per call, as sent", async () => {
  const receiver = await datagramReceiver();
  try {
    const encode = (text: string) => new TextEncoder().encode(text);
    assert.equal(sendDatagram(receiver.path, encode("first\nline")), true);
    assert.equal(sendDatagram(receiver.path, encode("second")), true);
    assert.deepEqual(await receiver.take(2), ["first\nline", "second"]);
  } finally {
    await receiver.close();
  }
});

Deno.test("sendDatagram() reports false, without throwing, when nobody listens", () => {
  const payload = new TextEncoder().encode("lost");
  assert.equal(sendDatagram("/nonexistent/socket", payload), false);
  assert.equal(sendDatagram("@stacd-test-nobody-listens", payload), false);
  assert.equal(sendDatagram("/" + "a".repeat(200), payload), false, "too long for sun_path");
});
