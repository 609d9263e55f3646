import assert from "node:assert/strict";
import { sdNotifier } from "../../lib/sd_notify.ts";

Deno.test("sdNotifier() sends each notification as one datagram to NOTIFY_SOCKET", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/notify`;
  // A real receiver: socat is not needed, Python's socket module is on every test machine.
  const receiver = new Deno.Command("python3", {
    args: [
      "-c",
      "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\n" +
      "print('bound',flush=True)\nfor _ in range(2): print(repr(s.recv(4096).decode()),flush=True)",
      path,
    ],
    stdout: "piped",
  }).spawn();
  const reader = receiver.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("bound")) seen += (await reader.read()).value ?? "";
  const notifier = sdNotifier(path);
  notifier.notify("READY=1", "STATUS=connected 3 controllers");
  notifier.notify("STOPPING=1");
  while ((seen.match(/'/g) ?? []).length < 4) seen += (await reader.read()).value ?? "";
  reader.releaseLock();
  await receiver.status;
  await Deno.remove(dir, { recursive: true });
  assert.match(seen, /'READY=1\\nSTATUS=connected 3 controllers'\n'STOPPING=1'/);
});

Deno.test("sdNotifier() without NOTIFY_SOCKET does nothing and never throws", () => {
  sdNotifier(undefined).notify("READY=1");
  sdNotifier("/nonexistent/socket").notify("READY=1");
});
