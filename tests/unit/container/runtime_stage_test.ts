/**
 * container/runtime_stage.ts: the Containerfile's runtime stage as the
 * guest builds it. Exactly the apt-get install and the COPY of the compiled
 * binary are replaced; every other instruction of the stage is kept as
 * written; a Containerfile that changed those lines is refused.
 */
import assert from "node:assert/strict";
import { readContainerfile } from "../../../container/run_options.ts";
import {
  execForm,
  instructions,
  labels,
  LAUNCHER_DIR,
  localRuntimeStage,
} from "../../../container/runtime_stage.ts";

const containerfile = readContainerfile();

/** The instructions after the last FROM (the runtime stage), as text. */
function runtimeStage(text: string): string[] {
  const all = instructions(text).map((i) => i.text);
  return all.slice(all.findLastIndex((t) => t.startsWith("FROM ")));
}

Deno.test("localRuntimeStage() keeps the runtime stage but the apt-get install and the binary's COPY", () => {
  const original = runtimeStage(containerfile);
  const local = runtimeStage(localRuntimeStage(containerfile));
  const dropped = original.filter((t) => !local.includes(t));
  const added = local.filter((t) => !original.includes(t));
  assert.equal(dropped.length, 2, `dropped: ${dropped.join("\n")}`);
  assert.match(dropped[0]!, /^RUN apt-get update\b[\s\S]*apt-get install/);
  assert.equal(dropped[1], "COPY --from=build /out/stacd /usr/sbin/stacd");
  assert.deepEqual(added, [
    'RUN dpkg-query --show ${RUNTIME_PACKAGES} && test -z "$(ls -A /var/lib/apt/lists)"',
    `COPY ${LAUNCHER_DIR}/usr/sbin/stacd /usr/sbin/stacd`,
    `COPY ${LAUNCHER_DIR}/usr/lib/stacd /usr/lib/stacd`,
  ]);
  // Kept in order, so instructions that depend on each other still do.
  assert.deepEqual(
    local.filter((t) => original.includes(t)),
    original.filter((t) => !dropped.includes(t)),
  );
});

Deno.test("localRuntimeStage() is one stage on ARG RUNTIME_BASE, needing no other stage", () => {
  const local = localRuntimeStage(containerfile);
  const all = instructions(local);
  assert.deepEqual(all.filter((i) => i.keyword === "FROM").map((i) => i.text), [
    "FROM ${RUNTIME_BASE}",
  ]);
  assert.equal(all[0]!.text, "ARG RUNTIME_BASE=docker.io/library/debian:bookworm-slim");
  assert.ok(all.every((i) => !i.text.includes("--from=")));
  assert.ok(all.every((i) => !/\bapt-get\b/.test(i.text)));
});

Deno.test("localRuntimeStage() refuses a runtime stage that changed what it replaces", () => {
  const noCopy = containerfile.replace("COPY --from=build /out/stacd /usr/sbin/stacd\n", "");
  assert.throws(() => localRuntimeStage(noCopy), /no longer has its apt-get install/);
  const otherStage = containerfile.replace(
    "RUN ln -s ../sbin/stacd /usr/bin/stacctl",
    "COPY --from=npm /src/node_modules /usr/lib/node_modules",
  );
  assert.throws(() => localRuntimeStage(otherStage), /cannot build without a mirror or stage/);
  const moreApt = containerfile.replace(
    "RUN ln -s ../sbin/stacd /usr/bin/stacctl",
    "RUN apt-get purge -y apt",
  );
  assert.throws(() => localRuntimeStage(moreApt), /cannot build without a mirror or stage/);
});

Deno.test("instructions() joins continuation lines and keeps comments with the next instruction", () => {
  const all = instructions('# one\nFROM x\n\n# two\nRUN a \\\n && b\nLABEL k="v"\n');
  assert.deepEqual(all.map((i) => i.keyword), ["FROM", "RUN", "LABEL"]);
  assert.deepEqual(all[1]!.comments, ["", "# two"]);
  assert.equal(all[1]!.text, "RUN a \\\n && b");
  assert.throws(() => instructions("FROM x\nRUN a \\"), SyntaxError);
});

Deno.test("execForm() and labels() read the runtime stage's ENTRYPOINT, HEALTHCHECK and LABEL", () => {
  assert.deepEqual(execForm(containerfile, "ENTRYPOINT"), ["/usr/sbin/stacd"]);
  assert.deepEqual(execForm(containerfile, "HEALTHCHECK"), ["/usr/sbin/stacd", "--health"]);
  assert.deepEqual(labels(containerfile), {
    "org.opencontainers.image.title": "stacd",
    "org.opencontainers.image.description":
      "NVMe-oF STorage Appliance Connector (nvme-stas compatible)",
    "org.opencontainers.image.version": "0.1.0",
  });
});
