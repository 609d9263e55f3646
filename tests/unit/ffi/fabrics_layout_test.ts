/**
 * Every verified `struct nvme_fabrics_config` layout matches offsetof() and
 * sizeof() as the C compiler computes them from that libnvme version's own
 * headers (compiled here with cc). 1.3's come from the host's libnvme-dev
 * (Debian 12); 1.13's from Debian 13's libnvme-dev package, which the guest
 * bed's debian13.ts fetches and unpacks into .cache/ the first time.
 */
import assert from "node:assert/strict";
import { FABRICS_CONFIG_LAYOUTS } from "../../../ffi/libnvme.ts";
import { libnvmeHeaders } from "../../guest/debian13.ts";

/** Where the headers of each verified version are found (fetched if need be). */
const HEADER_DIRS: Record<string, () => Promise<string>> = {
  "1.3": () => Promise.resolve("/usr/include"),
  "1.13": () => libnvmeHeaders("1.13"),
};

async function installedLibnvmeDev(): Promise<string> {
  const out = await new Deno.Command("dpkg-query", {
    args: ["-W", "-f", "${Version}", "libnvme-dev"],
  }).output();
  return new TextDecoder().decode(out.stdout);
}

async function probeLayout(includeDir: string, fields: string[]): Promise<Record<string, number>> {
  const dir = await Deno.makeTempDir();
  try {
    const lines = fields.map((f) =>
      f === "size"
        ? `printf("size %zu\\n", sizeof(struct nvme_fabrics_config));`
        : `printf("${f} %zu\\n", offsetof(struct nvme_fabrics_config, ${f}));`
    );
    await Deno.writeTextFile(
      `${dir}/probe.c`,
      `#include <stddef.h>\n#include <stdio.h>\n#include <stdbool.h>\n#include <nvme/fabrics.h>\n` +
        `int main(void) { ${lines.join(" ")} return 0; }\n`,
    );
    const cc = await new Deno.Command("cc", {
      args: ["-I", includeDir, "-o", `${dir}/probe`, `${dir}/probe.c`],
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

for (const [version, layout] of FABRICS_CONFIG_LAYOUTS) {
  Deno.test(`fabrics config layout of libnvme ${version} matches its headers`, async () => {
    const headers = HEADER_DIRS[version];
    assert.ok(headers, `no header location known for libnvme ${version}`);
    const includeDir = await headers();
    if (includeDir === "/usr/include") {
      assert.match(await installedLibnvmeDev(), new RegExp(`^${version.replace(".", "\\.")}\\b`));
    }
    const expected = { ...layout } as Record<string, number>;
    const measured = await probeLayout(includeDir, Object.keys(expected));
    assert.deepEqual(measured, expected);
  });
}
