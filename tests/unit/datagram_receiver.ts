/**
 * A real unix datagram receiver for tests of what stacd sends to
 * NOTIFY_SOCKET and /dev/log: Python's socket module (on every test
 * machine) binds the socket; Deno's own datagram sockets are unstable.
 */

export interface DatagramReceiver {
  path: string;
  /** Resolves with the first `count` datagrams, decoded as text; rejects after `ms` (5 s). */
  take(count: number, ms?: number): Promise<string[]>;
  close(): Promise<void>;
}

/** Binds a socket in a temporary directory, or with `abstract` an abstract one ("@name"). */
export async function datagramReceiver(
  options: { abstract?: boolean } = {},
): Promise<DatagramReceiver> {
  const dir = await Deno.makeTempDir();
  const path = options.abstract ? `@stacd-test-${crypto.randomUUID()}` : `${dir}/socket`;
  const child = new Deno.Command("python3", {
    args: [
      "-c",
      "import socket,sys,json\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n" +
      "p=sys.argv[1]\ns.bind('\\0'+p[1:] if p.startswith('@') else p)\n" +
      "print('bound',flush=True)\n" +
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
    async take(count, ms = 5_000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${count} datagrams not received in ${ms} ms`)),
          ms,
        );
      });
      try {
        const out: string[] = [];
        while (out.length < count) {
          const line = nextLine();
          line.catch(() => {}); // still pending when late wins; close() ends it
          out.push(JSON.parse(await Promise.race([line, late])));
        }
        return out;
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      child.kill("SIGKILL");
      await lines.cancel().catch(() => {});
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
