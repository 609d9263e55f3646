import assert from "node:assert/strict";
import { createLogger, syslogSink } from "../../lib/logger.ts";
import { MemorySink } from "../memory_sink.ts";
import { datagramReceiver } from "./datagram_receiver.ts";

Deno.test("the logger writes INFO and above by default, DEBUG only with tron", () => {
  const sink = new MemorySink();
  const log = createLogger(sink);
  log.debug("hidden");
  log.info("shown");
  log.tron = true;
  log.debug("now shown");
  assert.deepEqual(sink.lines, [
    { priority: 6, line: "INFO: shown" },
    { priority: 7, line: "DEBUG: now shown" },
  ]);
});

Deno.test("one event is one line: a multi-line message is folded", () => {
  const sink = new MemorySink();
  createLogger(sink).error("first\n  second\nthird");
  assert.deepEqual(sink.lines, [{ priority: 3, line: "ERROR: first second third" }]);
});

Deno.test("-s sends syslog's wire form to /dev/log: facility daemon, priority, ident and PID", async () => {
  const receiver = await datagramReceiver();
  try {
    const log = createLogger(syslogSink("stacd", receiver.path));
    log.warning("a warning");
    log.info("an info");
    assert.deepEqual(await receiver.take(2), [
      `<28>stacd[${Deno.pid}]: WARNING: a warning`,
      `<30>stacd[${Deno.pid}]: INFO: an info`,
    ]);
  } finally {
    await receiver.close();
  }
});

Deno.test("-s without a reachable /dev/log falls back to stdout instead of losing the line", () => {
  const sent: string[] = [];
  const sink = syslogSink("stacd", "/nonexistent/log", (_path, payload) => {
    sent.push(new TextDecoder().decode(payload));
    return false;
  });
  sink.write(6, "INFO: still told");
  assert.equal(sent.length, 1, "it tried /dev/log first");
});
