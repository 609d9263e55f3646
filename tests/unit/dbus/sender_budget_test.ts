import assert from "node:assert/strict";
import {
  type Admitted,
  MAX_CALLS_IN_FLIGHT,
  MAX_QUEUED_BYTES,
  SenderBudget,
} from "../../../lib/dbus/sender_budget.ts";

const admitted = (a: Admitted | string): Admitted => {
  assert.equal(typeof a, "object", `refused: ${a}`);
  return a as Admitted;
};

Deno.test("SenderBudget refuses a caller past its calls in flight, not the others", () => {
  const budget = new SenderBudget();
  const calls = Array.from({ length: MAX_CALLS_IN_FLIGHT }, () => admitted(budget.admit(":1.7")));
  assert.match(budget.admit(":1.7") as string, /64 calls of :1.7 are already in progress/);
  admitted(budget.admit(":1.8")).done();
  calls[0]!.done();
  admitted(budget.admit(":1.7")).done();
});

Deno.test("SenderBudget refuses a caller whose replies are not yet written, until they are", () => {
  const budget = new SenderBudget();
  const written = admitted(budget.admit(":1.7")).queued(MAX_QUEUED_BYTES);
  assert.match(budget.admit(":1.7") as string, /bytes of replies to :1.7 are not yet taken/);
  written();
  written(); // settling twice counts once
  admitted(budget.admit(":1.7")).done();
});

Deno.test("SenderBudget forgets a caller once nothing of it is in flight", () => {
  const budget = new SenderBudget();
  const pending = Array.from({ length: 1000 }, (_, i) => admitted(budget.admit(`:1.${i}`)));
  assert.equal(budget.callers, 1000);
  pending.forEach((a, i) => i % 2 ? a.done() : a.queued(100)());
  assert.equal(budget.callers, 0);
});

Deno.test("SenderBudget releases queued bytes when a call ends without its reply written", () => {
  const budget = new SenderBudget();
  // Two calls held in flight, so the caller's entry (and its byte count) stays.
  const keep = admitted(budget.admit(":1.7"));
  const failed = admitted(budget.admit(":1.7"));
  failed.queued(MAX_QUEUED_BYTES); // counted, then the send threw: the bus had gone
  failed.done();
  admitted(budget.admit(":1.7")).done(); // not refused for bytes that were never queued
  keep.done();
});
