/**
 * The stafd stand-in itself (tests/stafd_standin.ts): its CLI fed from a
 * JSON file and driven by SIGHUP and stdin, as the follower sees it, and its
 * interface as a client other than dbus-next (busctl) sees it.
 */
import assert from "node:assert/strict";
import { followStafd } from "../../../lib/dbus/stafd_follower.ts";
import { DISCOVERY_NQN } from "../../../lib/core/connect_request.ts";
import { STAF_POLICY, startPrivateBus } from "../../dbus/private_bus.ts";
import { memoryLogger, nvmeNqns, PagesRecorder } from "../../dbus/stafd_events.ts";
import { goodPages, HOST_NQN } from "../../dbus/stafd_garbage.ts";
import { StafdStandin } from "../../stafd_standin.ts";

const STANDIN = new URL("../../stafd_standin.ts", import.meta.url).pathname;
const nqns = (n: number) => Array.from({ length: n }, (_, i) => `nqn.2026-11.io.test:s${i + 1}`);

Deno.test("the stand-in CLI serves a JSON file, re-reads it on SIGHUP, and obeys stdin", async () => {
  await using bus = await startPrivateBus({ policies: [STAF_POLICY] });
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(file, JSON.stringify(goodPages(2)));
  const rec = new PagesRecorder();
  await using _follower = await followStafd({
    busAddress: bus.address,
    log: memoryLogger().log,
    onPages: rec.onPages,
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", STANDIN, "--bus", bus.address, "--file", file],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const say = (line: string) => stdin.write(new TextEncoder().encode(`${line}\n`));
  try {
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).values();
    const ready = await lines.next();
    assert.match(String(ready.value), /^ready :\d+\.\d+/);
    const appeared = await rec.next("appeared");
    assert.equal(appeared.reason, "appeared");
    assert.deepEqual(nvmeNqns(appeared.pages), nqns(2));

    await Deno.writeTextFile(file, JSON.stringify(goodPages(3)));
    child.kill("SIGHUP");
    assert.deepEqual(nvmeNqns((await rec.next("changed after SIGHUP")).pages), nqns(3));

    await say("garbage invalid JSON");
    await say("changed");
    assert.deepEqual(await rec.next("failed"), { pages: undefined, reason: "failed" });

    await Deno.writeTextFile(file, "[]");
    await say("reload");
    assert.deepEqual(await rec.next("empty"), { pages: [], reason: "changed" });

    await say("quit");
    assert.equal((await rec.next("vanished")).reason, "vanished");
    assert.equal((await child.status).code, 0);
  } finally {
    await stdin.close().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(file);
  }
});

async function busctl(address: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("busctl", { args: [`--address=${address}`, ...args] })
    .output();
  const text = new TextDecoder();
  assert.ok(out.success, `busctl ${args.join(" ")}: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout);
}

Deno.test("the stand-in's interface, as busctl sees it: get_all_log_pages, get_log_pages, introspection", async () => {
  await using bus = await startPrivateBus({ policies: [STAF_POLICY] });
  await using stafd = await StafdStandin.start(bus.address, goodPages(2));
  const at = ["org.nvmexpress.staf", "/org/nvmexpress/staf"];
  const all = await busctl(
    bus.address,
    "--json=short",
    "call",
    ...at,
    "org.nvmexpress.staf",
    "get_all_log_pages",
    "b",
    "true",
  );
  const { type, data } = JSON.parse(all) as { type: string; data: [string] };
  assert.equal(type, "s");
  assert.deepEqual(JSON.parse(data[0]), goodPages(2));
  assert.equal(stafd.calls, 1);

  const dc = [
    "tcp",
    "192.168.1.10",
    "8009",
    DISCOVERY_NQN,
    "",
    "",
    HOST_NQN,
  ];
  const one = await busctl(
    bus.address,
    "--json=short",
    "call",
    ...at,
    "org.nvmexpress.staf",
    "get_log_pages",
    "sssssss",
    ...dc,
  );
  const pages = JSON.parse(one) as { type: string; data: [Record<string, string>[]] };
  assert.equal(pages.type, "aa{ss}");
  assert.deepEqual(pages.data[0].map((e) => e.subnqn), nqns(2));
  assert.equal(pages.data[0][0]?.portid, "1");

  const members = await busctl(bus.address, "introspect", ...at, "org.nvmexpress.staf");
  assert.match(members, /\.get_all_log_pages\s+method\s+b\s+s\s/);
  assert.match(members, /\.get_log_pages\s+method\s+sssssss\s+aa\{ss\}\s/);
  assert.match(members, /\.log_pages_changed\s+signal\s+ssssssss\s/);
  assert.match(members, /\.dc_removed\s+signal\s/);
});
