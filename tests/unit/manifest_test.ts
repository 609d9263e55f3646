/**
 * container/daemonset.yaml against the Kubernetes API schema (the npm
 * package kubernetes-models validates objects with the API's OpenAPI
 * schema) and against container/run-options.json, which container tests
 * run the image with; and the Containerfile against both.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { loadRunOptions, podmanRunArgs, runtimePackages } from "../../container/run_options.ts";

const root = new URL("../../", import.meta.url);
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

Deno.test("daemonset.yaml's ConfigMap holds stacd.conf and sys.conf that stacd reads", () => {
  const cm = manifest().find((d) => d.kind === "ConfigMap") as { data: Record<string, string> };
  assert.deepEqual(Object.keys(cm.data).sort(), ["stacd.conf", "sys.conf"]);
  assert.match(cm.data["stacd.conf"]!, /^\[Controllers\]$/m);
  assert.match(cm.data["sys.conf"]!, /^nqn = file:\/\/\/etc\/nvme\/hostnqn$/m);
});

Deno.test("Containerfile: entrypoint, health check and runtime packages match run-options.json", () => {
  const o = loadRunOptions();
  const file = read("container/Containerfile");
  const exec = (instruction: RegExp) => JSON.parse(file.match(instruction)?.[1] ?? "null");
  assert.deepEqual(exec(/^ENTRYPOINT (\[.*\])$/m), o.entrypoint);
  assert.deepEqual(exec(/^HEALTHCHECK .*CMD (\[.*\])$/m), o.healthCommand);
  assert.deepEqual(runtimePackages(file), ["libnvme1", "libudev1"]);
  assert.match(file, /^FROM \$\{RUNTIME_BASE\}$/m, "the runtime base is a build argument");
});

Deno.test("podmanRunArgs() turns run-options.json into the equivalent podman run", () => {
  const args = podmanRunArgs(loadRunOptions(), { configDir: "/tmp/conf", args: ["--tron"] });
  const text = args.join(" ");
  for (
    const part of [
      "--privileged",
      "--network host",
      "--read-only",
      "--volume /dev:/dev",
      "--volume /sys:/sys",
      "--volume /etc/nvme:/etc/nvme:ro",
      "--volume /run/stacd:/run/stacd",
      "--volume /tmp/conf:/etc/stas:ro",
      "--tmpfs /tmp",
    ]
  ) assert.ok(text.includes(part), `${part} in: ${text}`);
  assert.ok(!text.includes("/run/dbus"), "the bus is optional");
  assert.deepEqual(args.slice(-2), ["localhost/stacd:0.1.0", "--tron"]);
});
