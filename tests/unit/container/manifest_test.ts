/**
 * container/daemonset.yaml against the Kubernetes API schema (the npm
 * package kubernetes-models validates objects with the API's OpenAPI
 * schema) and against container/run-options.json; the podman command line
 * that the guest's container test runs the image with (podmanRunArgs) against
 * the DaemonSet, so that what the guest proves is what Kubernetes runs; and
 * the Containerfile against both.
 */
import assert from "node:assert/strict";
import { parseStafdConfig } from "../../../lib/config/stafd_conf.ts";
import { parseAllDocuments } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import {
  loadRunOptions,
  podmanRunArgs,
  runtimeBase,
  runtimePackages,
} from "../../../container/run_options.ts";

const root = new URL("../../../", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, root));

/** The manifest's documents, parsed as Kubernetes parses YAML (1.1: 0600 is octal). */
function manifest(): Record<string, unknown>[] {
  return parseAllDocuments(read("container/daemonset.yaml"), { version: "1.1" })
    .map((doc) => {
      assert.deepEqual(doc.errors, []);
      return doc.toJS() as Record<string, unknown>;
    });
}

function daemonSet(): IDaemonSet {
  const ds = manifest().find((d) => d.kind === "DaemonSet");
  assert.ok(ds, "no DaemonSet in daemonset.yaml");
  return ds as unknown as IDaemonSet;
}

Deno.test("daemonset.yaml: every document is valid against the Kubernetes API schema", () => {
  const models: Record<string, (o: never) => { validate(): void }> = {
    Namespace: (o) => new Namespace(o),
    ConfigMap: (o) => new ConfigMap(o),
    DaemonSet: (o) => new DaemonSet(o),
  };
  const docs = manifest();
  assert.deepEqual(docs.map((d) => d.kind), ["Namespace", "ConfigMap", "DaemonSet"]);
  for (const doc of docs) models[doc.kind as string]!(doc as never).validate();
});

Deno.test("daemonset.yaml: the validator rejects a broken DaemonSet (it does check)", () => {
  const ds = structuredClone(daemonSet());
  const context = ds.spec!.template.spec!.containers[0]!.securityContext!;
  (context as Record<string, unknown>).privileged = "yes";
  assert.throws(() => new DaemonSet(ds as never).validate(), /privileged/);
});

Deno.test("daemonset.yaml runs stacd as run-options.json says", () => {
  const o = loadRunOptions();
  const spec = daemonSet().spec!.template.spec!;
  const [c] = spec.containers;
  assert.ok(c && spec.containers.length === 1);
  assert.equal(c.securityContext?.privileged, o.privileged);
  assert.equal(c.securityContext?.readOnlyRootFilesystem, o.readOnlyRootFilesystem);
  assert.equal(spec.hostNetwork ?? false, o.hostNetwork);
  assert.equal(spec.hostPID ?? false, o.hostPID);
  assert.equal(c.image, o.image);
  assert.equal(c.command, undefined, "the image's ENTRYPOINT runs stacd");
  assert.deepEqual(c.livenessProbe?.exec?.command, o.healthCommand);
  const { $comment: _, ...probe } = o.healthProbe as typeof o.healthProbe & { $comment?: string };
  assert.deepEqual(
    Object.fromEntries(Object.keys(probe).map((k) => [k, (c.livenessProbe as never)[k]])),
    probe,
    "livenessProbe timing",
  );

  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m]));
  for (const m of o.mounts) {
    const vm = mounts.get(m.target);
    assert.ok(vm, `no volumeMount at ${m.target}`);
    assert.equal(vm.readOnly ?? false, m.readOnly, `${m.target} readOnly`);
    assert.equal(
      volumes.get(vm.name)?.hostPath?.path,
      m.source,
      `${m.target} from host ${m.source}`,
    );
  }
  for (const t of o.tmpfs) {
    const vm = mounts.get(t);
    assert.equal(vm && volumes.get(vm.name)?.emptyDir?.medium, "Memory", `${t} is a tmpfs`);
  }
  // The config is a ConfigMap mounted as a directory: its updates swap a
  // symlink there, which stacd's directory watch sees; subPath would freeze it.
  const config = mounts.get(o.configDir);
  assert.ok(config?.readOnly, `${o.configDir} mounted read-only`);
  assert.equal(volumes.get(config.name)?.configMap?.name, "stacd-config");
  assert.equal(volumes.get(config.name)?.configMap?.defaultMode, 0o600);
  assert.ok((c.volumeMounts ?? []).every((m) => m.subPath === undefined), "no subPath mounts");
  assert.equal(
    mounts.size,
    o.mounts.length + o.tmpfs.length + 1,
    "no mount run-options.json lacks",
  );
});

Deno.test("daemonset.yaml's ConfigMap holds stacd.conf, stafd.conf and sys.conf that stacd reads", () => {
  const cm = manifest().find((d) => d.kind === "ConfigMap") as { data: Record<string, string> };
  assert.deepEqual(Object.keys(cm.data).sort(), ["stacd.conf", "stafd.conf", "sys.conf"]);
  assert.match(cm.data["stacd.conf"]!, /^\[Controllers\]$/m);
  const stafd = parseStafdConfig(cm.data["stafd.conf"]!, "stafd.conf");
  assert.deepEqual(stafd.diagnostics.filter((d) => d.level !== "info"), []);
  assert.match(cm.data["sys.conf"]!, /^nqn = file:\/\/\/etc\/nvme\/hostnqn$/m);
});

Deno.test("Containerfile: entrypoint, health check and runtime packages match run-options.json", () => {
  const o = loadRunOptions();
  const file = read("container/Containerfile");
  const exec = (instruction: RegExp) => JSON.parse(file.match(instruction)?.[1] ?? "null");
  assert.deepEqual(exec(/^ENTRYPOINT (\[.*\])$/m), o.entrypoint);
  assert.deepEqual(exec(/^HEALTHCHECK .*CMD (\[.*\])$/m), o.healthCommand);
  const healthcheck = file.match(/^HEALTHCHECK (.*) CMD /m)?.[1] ?? "";
  assert.match(healthcheck, new RegExp(`--interval=${o.healthProbe.periodSeconds}s\\b`));
  assert.match(healthcheck, new RegExp(`--timeout=${o.healthProbe.timeoutSeconds}s\\b`));
  assert.deepEqual(runtimePackages(file), ["libnvme1", "libudev1"]);
  assert.deepEqual(runtimeBase(file), {
    image: "docker.io/library/debian:bookworm-slim",
    suite: "bookworm",
  });
  assert.match(file, /^FROM \$\{RUNTIME_BASE\}$/m, "the runtime base is a build argument");
});

/** What a `podman run` command line asks for, read back from its arguments. */
interface PodmanRun {
  flags: Set<string>;
  /** --volume, by target: source and whether read-only. */
  volumes: Map<string, { source: string; readOnly: boolean }>;
  tmpfs: string[];
  /** --name=value style options (network, health-*, ...), last one wins. */
  values: Map<string, string>;
  image: string;
  args: string[];
}

function parsePodmanRun(argv: string[]): PodmanRun {
  assert.equal(argv[0], "run");
  const run: PodmanRun = {
    flags: new Set(),
    volumes: new Map(),
    tmpfs: [],
    values: new Map(),
    image: "",
    args: [],
  };
  const withValue = new Set(["--name", "--network", "--pid", "--volume", "--tmpfs"]);
  let i = 1;
  while (i < argv.length && argv[i]!.startsWith("--")) {
    const arg = argv[i++]!;
    const eq = arg.indexOf("=");
    const [name, value] = eq > 0
      ? [arg.slice(0, eq), arg.slice(eq + 1)]
      : withValue.has(arg)
      ? [arg, argv[i++]!]
      : [arg, undefined];
    if (value === undefined) run.flags.add(name);
    else if (name === "--volume") {
      const [source, target, mode] = value.split(":") as [string, string, string?];
      assert.ok(!run.volumes.has(target), `two volumes on ${target}`);
      run.volumes.set(target, { source, readOnly: mode === "ro" });
    } else if (name === "--tmpfs") run.tmpfs.push(value);
    else run.values.set(name, value);
  }
  run.image = argv[i]!;
  run.args = argv.slice(i + 1);
  return run;
}

Deno.test("podmanRunArgs() runs the image as the DaemonSet does: privileges, mounts, config, probe", () => {
  const o = loadRunOptions();
  const run = parsePodmanRun(podmanRunArgs(o, { configDir: "/tmp/configmap", name: "stacd" }));
  const spec = daemonSet().spec!.template.spec!;
  const c = spec.containers[0]!;

  assert.equal(run.image, c.image);
  assert.deepEqual(run.args, c.args ?? [], "stacd's arguments");
  assert.equal(run.flags.has("--privileged"), c.securityContext?.privileged ?? false);
  assert.equal(run.flags.has("--read-only"), c.securityContext?.readOnlyRootFilesystem ?? false);
  assert.equal(run.values.get("--network") === "host", spec.hostNetwork ?? false);
  assert.equal(run.values.get("--pid") === "host", spec.hostPID ?? false);

  // Every volumeMount has its podman counterpart, and nothing more is mounted.
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.get(m.name)!;
    if (v.hostPath) {
      assert.deepEqual(run.volumes.get(m.mountPath), {
        source: v.hostPath.path,
        readOnly: m.readOnly ?? false,
      }, `hostPath ${v.hostPath.path} on ${m.mountPath}`);
    } else if (v.configMap) {
      assert.equal(m.mountPath, o.configDir, "the config path");
      assert.deepEqual(run.volumes.get(m.mountPath), { source: "/tmp/configmap", readOnly: true });
    } else if (v.emptyDir?.medium === "Memory") {
      assert.ok(run.tmpfs.includes(m.mountPath), `${m.mountPath} is a tmpfs`);
    } else {
      assert.fail(`volume ${m.name}: no podman equivalent known`);
    }
  }
  const mounted = (c.volumeMounts ?? []).map((m) => m.mountPath).sort();
  assert.deepEqual([...run.volumes.keys(), ...run.tmpfs].sort(), mounted, "the same mounts");

  // The liveness probe: the same exec command (podman's JSON form) and timing.
  const probe = c.livenessProbe!;
  assert.deepEqual(JSON.parse(run.values.get("--health-cmd")!), probe.exec?.command);
  assert.equal(run.values.get("--health-start-period"), `${probe.initialDelaySeconds}s`);
  assert.equal(run.values.get("--health-interval"), `${probe.periodSeconds}s`);
  assert.equal(run.values.get("--health-timeout"), `${probe.timeoutSeconds}s`);
  assert.equal(run.values.get("--health-retries"), String(probe.failureThreshold));
});

Deno.test("podmanRunArgs(): the bus only when asked, --rm, and stacd's arguments last", () => {
  const o = loadRunOptions();
  const plain = podmanRunArgs(o, { configDir: "/tmp/conf", args: ["--tron"] });
  assert.ok(!plain.join(" ").includes("/run/dbus"), "the bus is optional");
  assert.ok(!plain.includes("--rm"));
  // The DaemonSet's arguments (the one-process mode), then the run's own.
  assert.deepEqual(plain.slice(-3), ["localhost/stacd:0.1.0", "--finder", "--tron"]);
  const withBus = parsePodmanRun(podmanRunArgs(o, { configDir: "/c", dbus: true, rm: true }));
  assert.deepEqual(withBus.volumes.get("/run/dbus"), { source: "/run/dbus", readOnly: false });
  assert.ok(withBus.flags.has("--rm"));
  const slow = parsePodmanRun(podmanRunArgs(o, { configDir: "/c", healthTimeoutSeconds: 60 }));
  assert.equal(slow.values.get("--health-timeout"), "60s");
});
