/**
 * The container image's guest test as one command: builds on the host what
 * the guest cannot (the image's runtime root: debootstrap of the release and
 * packages container/Containerfile names, cached under .cache/container-root/,
 * about half a minute the first time), then runs
 * tests/guest/image_container_test.ts in a Debian 13 guest (podman and
 * crun are in its root) through run_suite.ts.
 *
 * Usage: deno run -A tests/guest/container_suite.ts [--junit FILE] [--timeout SECONDS] [-- DENO_TEST_ARGS]
 */
import { runtimeRoot } from "../../build/container_root.ts";

const args = [...Deno.args];
const dash = args.indexOf("--");
const testArgs = dash >= 0 ? args.splice(dash) : [];
const j = args.indexOf("--junit");
const junit = j >= 0 ? args.splice(j, 2)[1] : undefined;
const t = args.indexOf("--timeout");
// Under TCG the image build alone takes about 4 minutes.
const timeout = t >= 0 ? args.splice(t, 2)[1] : "2400";
if (args.length > 0 || (j >= 0 && !junit) || Number.isNaN(Number(timeout))) {
  console.error(
    "Usage: container_suite.ts [--junit FILE] [--timeout SECONDS] [-- DENO_TEST_ARGS]",
  );
  Deno.exit(2);
}

await runtimeRoot();
const { code } = await new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-all",
    decodeURIComponent(new URL("./run_suite.ts", import.meta.url).pathname),
    ...["--platform", "debian13", "--timeout", timeout!],
    ...(junit ? ["--junit", junit] : []),
    ...["--suffix", "_container_test.ts"],
    ...testArgs,
  ],
  stdin: "null",
  stdout: "inherit",
  stderr: "inherit",
}).output();
Deno.exit(code);
