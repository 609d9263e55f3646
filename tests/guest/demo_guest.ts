/**
 * In the guest: stacd against a real NVMe/TCP target. Builds an nvmet target
 * with 8 subsystems on 127.0.0.1:4420, writes a stacd.conf listing them,
 * starts `main.ts --tron`, shows it connecting, reloads with a changed
 * config (SIGHUP), stops it (SIGTERM) and shows that the connections stay.
 * Then discovery does the connecting: `main.ts --finder` with a stafd.conf
 * naming only the target's discovery controller connects every subsystem
 * it lists, and one added on the target arrives by the kernel's AEN.
 */
import { STACD_RUN_ENV, STACD_RUN_FLAGS } from "../../build/permissions.ts";
import { controllers, deleteAllControllers, waitFor } from "./nvme_host.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";

const root = new URL("../../", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "stacd-demo-" });
using t = createTarget({
  subsystems: 8,
  ports: [LOOPBACK_PORT],
});
const conf = (nqns: string[]) =>
  "[Global]\nkato = 30\n\n[Controllers]\n" +
  nqns.map((n) => `controller = transport=tcp;traddr=127.0.0.1;trsvcid=4420;nqn=${n}\n`).join("");
const confFile = `${dir}/stacd.conf`;
await Deno.writeTextFile(confFile, conf(t.nqns.slice(0, 6)));

const show = (what: string) => {
  console.log(`\n---- ${what}: kernel controllers ----`);
  for (const c of controllers()) console.log(`${c.name}  ${c.state.padEnd(10)} ${c.subsysnqn}`);
};
const stacd = new Deno.Command(Deno.execPath(), {
  args: ["run", ...STACD_RUN_FLAGS, "--no-check", `${root}main.ts`, "--tron", "-f", confFile],
  env: { ...STACD_RUN_ENV, RUNTIME_DIRECTORY: `${dir}/run`, STACD_TEST_TIMER_SCALE: "0.2" },
}).spawn();
const connected = (n: number) => () =>
  controllers().filter((c) => c.state === "live").length === n || undefined;

await waitFor(connected(6), "6 controllers live", 60_000);
show("stacd connected the 6 configured controllers");

await Deno.writeTextFile(confFile, conf(t.nqns.slice(2, 8)));
console.log("\n---- config changed (s1, s2 out; s7, s8 in); SIGHUP ----");
stacd.kill("SIGHUP");
await waitFor(
  () =>
    controllers().map((c) => c.subsysnqn).sort().join() === t.nqns.slice(2, 8).sort().join() ||
    undefined,
  "reload applied",
  60_000,
);
show("after reload");

stacd.kill("SIGTERM");
const status = await stacd.status;
show(`stacd stopped (exit ${status.code}); connections stay in the kernel`);
await deleteAllControllers();
if (status.code !== 0) Deno.exit(status.code);

// Part 2: discovery. stacd.conf lists nothing; stafd.conf names the DC.
await Deno.writeTextFile(confFile, "[Controllers]\n");
const stafdConf = `${dir}/stafd.conf`;
await Deno.writeTextFile(
  stafdConf,
  "[Controllers]\ncontroller = transport=tcp;traddr=127.0.0.1;trsvcid=4420\n",
);
console.log("\n---- stacd --finder: stafd.conf names only the discovery controller ----");
const both = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    ...STACD_RUN_FLAGS,
    "--no-check",
    `${root}main.ts`,
    "--finder",
    "--stafd-conf",
    stafdConf,
    "-f",
    confFile,
  ],
  env: { ...STACD_RUN_ENV, RUNTIME_DIRECTORY: `${dir}/run2`, STACD_TEST_TIMER_SCALE: "0.2" },
}).spawn();
const ioLive = (n: number) => () =>
  controllers().filter((c) => c.state === "live" && !c.subsysnqn.endsWith(".discovery"))
      .length === n || undefined;
await waitFor(ioLive(8), "8 discovered controllers live", 60_000);
show("the finder read the discovery log page; stacd connected its 8 subsystems");
const added = "nqn.2026-11.io.test:s9";
t.target.createSubsystem(added);
t.target.linkSubsystem(LOOPBACK_PORT.id, added);
console.log(`\n---- ${added} added on the target; no configuration change ----`);
await waitFor(ioLive(9), "the added subsystem live", 60_000);
show("the kernel's AEN reached the finder; stacd connected the new subsystem");
both.kill("SIGTERM");
const second = await both.status;
await deleteAllControllers();
t.target.removeSubsystem(added);
Deno.exit(second.code);
