/**
 * What the systemd guest tests do as an operator does: run commands, ask
 * systemctl, wait for something to become true.
 */

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, ...args: string[]): Promise<Ran> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Runs `cmd`, throws with its output unless it exits 0; returns stdout. */
export async function ok(cmd: string, ...args: string[]): Promise<string> {
  const r = await run(cmd, ...args);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  }
  return r.stdout;
}

export const systemctl = (...args: string[]) => ok("systemctl", ...args);

/** `systemctl show UNIT -p ...`; a property shown on several lines is joined with "\n". */
export async function showUnit(
  unit: string,
  ...properties: string[]
): Promise<Record<string, string>> {
  const text = await systemctl("show", unit, ...properties.flatMap((p) => ["-p", p]));
  const shown: Record<string, string> = {};
  for (const line of text.split("\n").filter(Boolean)) {
    const eq = line.indexOf("=");
    const [key, value] = [line.slice(0, eq), line.slice(eq + 1)];
    shown[key] = key in shown ? `${shown[key]}\n${value}` : value;
  }
  return shown;
}

/** Polls async `probe` every 200 ms until it returns something other than undefined. */
export async function poll<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms: ${what}`);
    await delay(200);
  }
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
