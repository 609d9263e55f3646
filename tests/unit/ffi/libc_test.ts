/**
 * The one libc table: its constants and struct layouts against the C
 * headers of this machine (compiled with cc, as fabrics_layout_test.ts does
 * for libnvme), and the sockaddr_un builder. Only the host's architecture
 * is probed: the one value that differs on arm64 (O_NOFOLLOW) is taken from
 * arch/arm64/include/uapi/asm/fcntl.h, and the guest runs there are x86_64.
 */
import assert from "node:assert/strict";
import * as c from "../../../ffi/libc.ts";

const PROBES: Record<string, [string, number]> = {
  O_RDWR: ["O_RDWR", c.O_RDWR],
  O_CREAT: ["O_CREAT", c.O_CREAT],
  O_NONBLOCK: ["O_NONBLOCK", c.O_NONBLOCK],
  O_CLOEXEC: ["O_CLOEXEC", c.O_CLOEXEC],
  O_NOFOLLOW: ["O_NOFOLLOW", c.O_NOFOLLOW],
  LOCK_EX: ["LOCK_EX", c.LOCK_EX],
  LOCK_NB: ["LOCK_NB", c.LOCK_NB],
  MFD_CLOEXEC: ["MFD_CLOEXEC", c.MFD_CLOEXEC],
  AF_UNIX: ["AF_UNIX", c.AF_UNIX],
  SOCK_DGRAM: ["SOCK_DGRAM", c.SOCK_DGRAM],
  SOCK_CLOEXEC: ["SOCK_CLOEXEC", c.SOCK_CLOEXEC],
  MSG_NOSIGNAL: ["MSG_NOSIGNAL", c.MSG_NOSIGNAL],
  EAGAIN: ["EAGAIN", c.Errno.EAGAIN],
  ENOBUFS: ["ENOBUFS", c.Errno.ENOBUFS],
  POLLIN: ["POLLIN", c.POLLIN],
  POLLNVAL: ["POLLNVAL", c.POLLNVAL],
  pollfd_size: ["sizeof(struct pollfd)", c.POLLFD.size],
  pollfd_fd: ["offsetof(struct pollfd, fd)", c.POLLFD.fd],
  pollfd_events: ["offsetof(struct pollfd, events)", c.POLLFD.events],
  pollfd_revents: ["offsetof(struct pollfd, revents)", c.POLLFD.revents],
  sockaddr_un_size: ["sizeof(struct sockaddr_un)", c.SOCKADDR_UN.size],
  sockaddr_un_family: ["offsetof(struct sockaddr_un, sun_family)", c.SOCKADDR_UN.family],
  sockaddr_un_path: ["offsetof(struct sockaddr_un, sun_path)", c.SOCKADDR_UN.path],
};

async function probe(): Promise<Record<string, number>> {
  const dir = await Deno.makeTempDir();
  try {
    const lines = Object.entries(PROBES).map(([name, [expr]]) =>
      `printf("${name} %ld\\n", (long)(${expr}));`
    );
    const headers = ["errno.h", "fcntl.h", "poll.h", "stddef.h", "stdio.h", "sys/file.h"]
      .concat(["sys/mman.h", "sys/socket.h", "sys/un.h"]);
    await Deno.writeTextFile(
      `${dir}/probe.c`,
      "#define _GNU_SOURCE\n" + headers.map((h) => `#include <${h}>\n`).join("") +
        `int main(void) { ${lines.join(" ")} return 0; }\n`,
    );
    const cc = await new Deno.Command("cc", {
      args: ["-o", `${dir}/probe`, `${dir}/probe.c`],
    }).output();
    assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
    const run = await new Deno.Command(`${dir}/probe`).output();
    return Object.fromEntries(
      new TextDecoder().decode(run.stdout).trim().split("\n").map((line) => {
        const [name, value] = line.split(" ");
        return [name ?? "", Number(value)];
      }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(`libc constants and layouts match the C headers (${Deno.build.arch})`, async () => {
  const expected = Object.fromEntries(Object.entries(PROBES).map(([n, [, v]]) => [n, v]));
  assert.deepEqual(await probe(), expected);
});

Deno.test("libc() opens libc once and hands out the same symbols", () => {
  assert.equal(c.libc(), c.libc());
  assert.equal(c.errnoText(c.libc(), 2), "No such file or directory");
});

Deno.test("errnoOfText() finds the errno behind a strerror text, and nothing for other text", () => {
  assert.equal(c.errnoOfText(c.libc(), "Connection refused"), 111);
  assert.equal(c.errnoOfText(c.libc(), "Key was rejected by service"), 129);
  assert.equal(c.errnoOfText(c.libc(), "not an error text"), undefined);
});

Deno.test("sockaddrUn() ends a path with its NUL and gives an abstract name its exact length", () => {
  const path = c.sockaddrUn("/run/x");
  assert.equal(path.length, 2 + 6 + 1);
  assert.deepEqual([...path.address.subarray(0, 9)], [
    1,
    0,
    ...new TextEncoder().encode("/run/x"),
    0,
  ]);
  const abstract = c.sockaddrUn("@x");
  assert.equal(abstract.length, 2 + 2);
  assert.deepEqual([...abstract.address.subarray(0, 4)], [1, 0, 0, "x".charCodeAt(0)]);
  assert.throws(() => c.sockaddrUn("/" + "a".repeat(108)), RangeError);
});
