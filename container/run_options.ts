/**
 * container/run-options.json, typed: how the stacd container must run. The
 * Kubernetes manifest is tested against it (tests/unit/container/manifest_test.ts) and
 * container tests start the image from it ({@linkcode podmanRunArgs}), so the
 * two cannot drift apart. Also reads the Containerfile's runtime base and
 * packages, which the container-root task debootstraps
 * (build/container_root.ts).
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
  /** stacd's arguments, as the DaemonSet's container `args` (the one-process mode). */
  args: string[];
  /** Where the configuration directory (a ConfigMap in Kubernetes) is mounted. */
  configDir: string;
  mounts: Mount[];
  optionalMounts: Mount[];
  tmpfs: string[];
  /** The liveness probe's exec command. */
  healthCommand: string[];
  healthProbe: HealthProbe;
}

/** The liveness probe's timing, in the DaemonSet's terms. */
export interface HealthProbe {
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}

export function loadRunOptions(path = `${here}run-options.json`): RunOptions {
  return JSON.parse(Deno.readTextFileSync(path)) as RunOptions;
}

/** What {@linkcode podmanRunArgs} adds to run-options.json for one run. */
export interface PodmanRunOptions {
  /** The host folder that plays the ConfigMap, mounted read-only at `configDir`. */
  configDir: string;
  /** Default: run-options.json's image. */
  image?: string;
  /** Also mount the host's system bus (optionalMounts). */
  dbus?: boolean;
  name?: string;
  /** Remove the container when it exits (`--rm`), so that its name can be used again. */
  rm?: boolean;
  /** Arguments to stacd after run-options.json's (the ENTRYPOINT is stacd). */
  args?: string[];
  /**
   * Replaces healthProbe.timeoutSeconds: for an emulated CPU (the test
   * guest), where starting the probe's command takes longer than on a node.
   */
  healthTimeoutSeconds?: number;
}

/**
 * `podman run` arguments equivalent to the DaemonSet: privileges and
 * namespaces, the host paths, the config folder, the memory /tmp, and the
 * liveness probe as podman's health check (exec form, same timing).
 */
export function podmanRunArgs(o: RunOptions, opts: PodmanRunOptions): string[] {
  const volume = (
    m: { source: string; target: string; readOnly: boolean },
  ) => ["--volume", `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`];
  const p = o.healthProbe;
  return [
    "run",
    ...(opts.name ? ["--name", opts.name] : []),
    ...(opts.rm ? ["--rm"] : []),
    ...(o.privileged ? ["--privileged"] : []),
    ...(o.hostNetwork ? ["--network", "host"] : []),
    ...(o.hostPID ? ["--pid", "host"] : []),
    ...(o.readOnlyRootFilesystem ? ["--read-only"] : []),
    ...o.mounts.flatMap(volume),
    ...(opts.dbus ? o.optionalMounts.flatMap(volume) : []),
    ...volume({ source: opts.configDir, target: o.configDir, readOnly: true }),
    ...o.tmpfs.flatMap((t) => ["--tmpfs", t]),
    // A JSON array is podman's exec form, as the probe's `exec.command`.
    `--health-cmd=${JSON.stringify(o.healthCommand)}`,
    `--health-start-period=${p.initialDelaySeconds}s`,
    `--health-interval=${p.periodSeconds}s`,
    `--health-timeout=${opts.healthTimeoutSeconds ?? p.timeoutSeconds}s`,
    `--health-retries=${p.failureThreshold}`,
    opts.image ?? o.image,
    ...o.args,
    ...(opts.args ?? []),
  ];
}

/** The Containerfile's text. */
export function readContainerfile(path = `${here}Containerfile`): string {
  return Deno.readTextFileSync(path);
}

/** The packages the Containerfile's runtime stage installs (its ARG RUNTIME_PACKAGES). */
export function runtimePackages(containerfile = readContainerfile()): string[] {
  const m = containerfile.match(/^ARG RUNTIME_PACKAGES="([^"]+)"/m);
  if (!m) throw new SyntaxError('Containerfile: no ARG RUNTIME_PACKAGES="..." line');
  return m[1]!.split(/\s+/).filter(Boolean);
}

/**
 * The runtime stage's default base (ARG RUNTIME_BASE) and the Debian release
 * it names: "docker.io/library/debian:bookworm-slim" is bookworm. The
 * container-root task debootstraps that release.
 */
export function runtimeBase(containerfile = readContainerfile()): { image: string; suite: string } {
  const m = containerfile.match(/^ARG RUNTIME_BASE=(\S+)$/m);
  if (!m) throw new SyntaxError("Containerfile: no ARG RUNTIME_BASE=... line");
  const image = m[1]!;
  const suite = image.match(/(?:^|\/)debian:([a-z]+)-slim$/)?.[1];
  if (!suite) {
    throw new SyntaxError(`Containerfile: RUNTIME_BASE "${image}" is not debian:RELEASE-slim`);
  }
  return { image, suite };
}
