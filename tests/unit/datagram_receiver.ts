/**
 * A real unix datagram receiver for tests of what stacd sends to
 * NOTIFY_SOCKET and /dev/log: Python's socket module (on every test
 * machine) binds the socket; Deno's own datagram sockets are unstable.
 */

export interface DatagramReceiver {
  path: string;
  /** Resolves with the first `count` datagrams, decoded as text. */
  take(count: number): Promise<string[]>;
  close(): Promise<void>;
}

export async function datagramReceiver(): Promise<DatagramReceiver> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/socket`;
  const child = new Deno.Command("python3", {
    args: [
      "-c",
      "import socket,sys,json\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n" +
      "s.bind(sys.argv[1])\nprint('bound',flush=True)\n" +
      "while True: print(json.dumps(s.recv(65536).decode()),flush=True)",
      path,
    ],
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const nextLine = async (): Promise<string> => {
    while (!buffer.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the receiver exited");
      buffer += value;
    }
    const i = buffer.indexOf("\n");
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    return line;
  };
  if (await nextLine() !== "bound") throw new Error("the receiver did not bind");
  return {
    path,
    async take(count) {
      const out: string[] = [];
      while (out.length < count) out.push(JSON.parse(await nextLine()));
      return out;
    },
    async close() {
      child.kill("SIGKILL");
      await lines.cancel().catch(() => {});
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
