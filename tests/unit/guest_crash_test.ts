import assert from "node:assert/strict";
import { kernelCrash } from "../guest/guest.ts";

// The console of CI's crashed container run (abridged): the emulated kernel
// double-faulted in the slab allocator during podman's clone3.
const crashed = `[    3.120000] nvme nvme0: new ctrl: NQN "nqn.test"
[  121.337920] traps: PANIC: double fault, error_code: 0x0
[  121.339428] Oops: double fault: 0000 [#1] PREEMPT SMP NOPTI
[  121.343636] Kernel panic - not syncing: Fatal exception in interrupt
`;

Deno.test("kernelCrash names the first crash line of the guest console, without its timestamp", () => {
  assert.equal(kernelCrash(crashed), "traps: PANIC: double fault, error_code: 0x0");
  assert.equal(
    kernelCrash("[    9.5] Kernel panic - not syncing: Attempted to kill init!\n"),
    "Kernel panic - not syncing: Attempted to kill init!",
  );
});

Deno.test("kernelCrash finds nothing in a console where the kernel lived", () => {
  const calm = `[    0.000000] Kernel command line: console=ttyS0 quiet panic=-1
[    2.400000] nvme nvme1: failed to connect socket: -111
[    2.500000] nvme nvme1: Connect command failed, error wo/DNR bit: 6
guest.sh: tests failed
`;
  assert.equal(kernelCrash(calm), undefined);
  assert.equal(kernelCrash(""), undefined);
});
