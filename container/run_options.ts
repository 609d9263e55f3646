/**
 * container/run-options.json, typed: how the stacd container must run. The
 * Kubernetes manifest is tested against it (tests/unit/manifest_test.ts) and
 * container tests start the image from it ({@linkcode podmanRunArgs}), so the
 * two cannot drift apart. Also reads the Containerfile's runtime packages,
 * which the container-root task installs.
 */

const here = decodeURIComponent(new URL("./", import.meta.url).pathname);

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  why: string;
}

export interface RunOptions {
  image: string;
  entrypoint: string[];
  privileged: boolean;
  hostNetwork: boolean;
  hostPID: boolean;
  readOnlyRootFilesystem: boolean;
  /** Where the configuration directory (a ConfigMap in Kubernetes) is mounted. */
  configDir: string;
  mounts: Mount[];
  optionalMounts: Mount[];
  tmpfs: string[];
  healthCommand: string[];
}

export function loadRunOptions(path = `${here}run-options.json`): RunOptions {
  return JSON.parse(Deno.readTextFileSync(path)) as RunOptions;
}

/**
 * `podman run` arguments for the image: `configDir` is the host folder that
 * plays the ConfigMap; `dbus` also mounts the host's bus; `args` go to stacd.
 */
export function podmanRunArgs(
  o: RunOptions,
  opts: { configDir: string; image?: string; dbus?: boolean; name?: string; args?: string[] },
): string[] {
  const volume = (
    m: { source: string; target: string; readOnly: boolean },
  ) => ["--volume", `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`];
  return [
    "run",
    ...(opts.name ? ["--name", opts.name] : []),
    ...(o.privileged ? ["--privileged"] : []),
    ...(o.hostNetwork ? ["--network", "host"] : []),
    ...(o.hostPID ? ["--pid", "host"] : []),
    ...(o.readOnlyRootFilesystem ? ["--read-only"] : []),
    ...o.mounts.flatMap(volume),
    ...(opts.dbus ? o.optionalMounts.flatMap(volume) : []),
    ...volume({ source: opts.configDir, target: o.configDir, readOnly: true }),
    ...o.tmpfs.flatMap((t) => ["--tmpfs", t]),
    "--health-cmd",
    o.healthCommand.join(" "),
    opts.image ?? o.image,
    ...(opts.args ?? []),
  ];
}

/** The packages the Containerfile's runtime stage installs (its ARG RUNTIME_PACKAGES). */
export function runtimePackages(containerfile = Deno.readTextFileSync(`${here}Containerfile`)) {
  const m = containerfile.match(/^ARG RUNTIME_PACKAGES="([^"]+)"/m);
  if (!m) throw new SyntaxError('Containerfile: no ARG RUNTIME_PACKAGES="..." line');
  return m[1]!.split(/\s+/).filter(Boolean);
}
