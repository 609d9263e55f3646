import assert from "node:assert/strict";
import { sdNotifier } from "../../../lib/daemon/sd_notify.ts";
import { datagramReceiver } from "../datagram_receiver.ts";

Deno.test("sdNotifier() sends each notification as one datagram to NOTIFY_SOCKET", async () => {
  const receiver = await datagramReceiver();
  try {
    const notifier = sdNotifier(receiver.path);
    notifier.notify("READY=1", "STATUS=connected 3 controllers");
    notifier.notify("STOPPING=1");
    assert.deepEqual(await receiver.take(2), [
      "READY=1\nSTATUS=connected 3 controllers",
      "STOPPING=1",
    ]);
  } finally {
    await receiver.close();
  }
});

Deno.test("sdNotifier() without a listening NOTIFY_SOCKET does nothing and never throws", () => {
  sdNotifier(undefined).notify("READY=1");
  sdNotifier("/nonexistent/socket").notify("READY=1");
});

Deno.test("sdNotifier() reaches an abstract NOTIFY_SOCKET, written with a leading @", async () => {
  const receiver = await datagramReceiver({ abstract: true });
  try {
    assert.match(receiver.path, /^@/);
    sdNotifier(receiver.path).notify("READY=1");
    assert.deepEqual(await receiver.take(1), ["READY=1"]);
  } finally {
    await receiver.close();
  }
});
