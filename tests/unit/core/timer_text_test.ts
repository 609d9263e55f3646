import assert from "node:assert/strict";
import { pyFloat, timerText } from "../../../lib/core/timer_text.ts";

Deno.test("timerText() prints a stopped timer as upstream's GTimer: '60.0s [off]'", () => {
  assert.equal(timerText(60_000), "60.0s [off]");
  assert.equal(timerText(1_500), "1.5s [off]");
  assert.equal(timerText(30_000), "30.0s [off]");
  assert.equal(timerText(15), "0.015s [off]", "scaled test timers keep their digits");
});

Deno.test("timerText() prints a running timer with the seconds left, not '[on]'", () => {
  assert.equal(timerText(1_500, 734.211), "1.5s [0.734211s]");
  assert.equal(timerText(60_000, 60_000), "60.0s [60.0s]");
  assert.equal(timerText(3_000, 2_999.9996), "3.0s [3.0s]", "microseconds, as GLib's clock");
  assert.equal(timerText(3_000, 0.0004), "3.0s [0s]", "due: Python's int 0");
  assert.equal(timerText(3_000, -5), "3.0s [0s]");
});

Deno.test("pyFloat() writes floats as Python's repr()", () => {
  assert.equal(pyFloat(10), "10.0");
  assert.equal(pyFloat(0), "0.0");
  assert.equal(pyFloat(0.1), "0.1");
  assert.equal(pyFloat(0.0001), "0.0001");
  assert.equal(pyFloat(0.000015), "1.5e-05");
  assert.equal(pyFloat(0.000001), "1e-06");
});
