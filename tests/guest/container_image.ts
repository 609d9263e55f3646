/**
 * The stacd image, built in the guest from container/Containerfile's
 * runtime stage (container/runtime_stage.ts says which two instructions
 * are replaced there, and why). Its base is the root build/container_root.ts
 * debootstrapped on the host from the release and packages the
 * Containerfile names, imported into podman as a local image: no registry
 * and no mirror are reachable from the guest. stacd goes in as the launcher
 * install of the checkout as it is now, so the image is never stale.
 */
import { install } from "../../build/install.ts";
import { type RuntimeRoot } from "../../build/container_root.ts";
import { loadRunOptions, readContainerfile } from "../../container/run_options.ts";
import { LAUNCHER_DIR, localRuntimeStage } from "../../container/runtime_stage.ts";
import type { Podman } from "./podman.ts";

const checkout = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");

/** What the build made and how long each step took. */
export interface BuiltImage {
  /** run-options.json's image name. */
  image: string;
  /** The imported runtime root. */
  base: string;
  /** The Containerfile the guest built (the runtime stage, two instructions replaced). */
  containerfile: string;
  seconds: { import: number; install: number; build: number };
}

const since = (t: number) => Math.round((performance.now() - t) / 100) / 10;

/** Imports `root` as the local base and builds the image on it; `log` hears each step. */
export async function buildImage(
  podman: Podman,
  root: RuntimeRoot,
  log: (line: string) => void = console.log,
): Promise<BuiltImage> {
  const image = loadRunOptions().image;
  const base = `localhost/stacd-runtime-base:${root.suite}`;

  let t = performance.now();
  await podman.ok(["import", root.tarball, base]);
  const importSeconds = since(t);
  log(`image: imported ${root.tarball} as ${base} (${importSeconds} s)`);

  t = performance.now();
  const context = await Deno.makeTempDir({ prefix: "stacd-image-" });
  await install({ prefix: "/usr", destdir: `${context}/${LAUNCHER_DIR}`, sysconfdir: "/etc" });
  await Deno.mkdir(`${context}/etc/stas`, { recursive: true });
  for (const name of ["stacd.conf", "sys.conf"]) {
    await Deno.copyFile(`${checkout}/etc/stas/${name}`, `${context}/etc/stas/${name}`);
  }
  const containerfile = localRuntimeStage(readContainerfile());
  await Deno.writeTextFile(`${context}/Containerfile`, containerfile);
  const installSeconds = since(t);
  log(`image: build context in ${context} (${installSeconds} s)`);

  t = performance.now();
  try {
    await podman.ok([
      "build",
      // Docker's format: OCI images have no HEALTHCHECK, podman would drop it.
      ...["--format", "docker", "--network", "none"],
      // One layer for the stage's instructions: faster under TCG, same files.
      "--layers=false",
      ...["--build-arg", `RUNTIME_BASE=${base}`],
      ...["--file", `${context}/Containerfile`, "--tag", image],
      context,
    ]);
  } finally {
    await Deno.remove(context, { recursive: true });
  }
  const buildSeconds = since(t);
  log(`image: built ${image} (${buildSeconds} s)`);
  return {
    image,
    base,
    containerfile,
    seconds: { import: importSeconds, install: installSeconds, build: buildSeconds },
  };
}

/** The image's config as `podman image inspect` shows it (the parts tests look at). */
export interface ImageConfig {
  Entrypoint: string[] | null;
  Cmd: string[] | null;
  Labels: Record<string, string> | null;
  /** `KEY=VALUE` entries. */
  Env: string[] | null;
}

/** A HEALTHCHECK as the image stores it (durations in nanoseconds). */
export interface ImageHealthcheck {
  Test: string[];
  Interval?: number;
  Timeout?: number;
}

export async function inspectImage(
  podman: Podman,
  image: string,
): Promise<{ config: ImageConfig; healthcheck?: ImageHealthcheck; size: number }> {
  const [info] = JSON.parse(await podman.ok(["image", "inspect", image])) as {
    Config: ImageConfig & { Healthcheck?: ImageHealthcheck };
    Healthcheck?: ImageHealthcheck;
    Size: number;
  }[];
  if (!info) throw new Error(`podman image inspect ${image}: nothing`);
  // podman's JSON has a Docker-format image's health check beside Config.
  const healthcheck = info.Healthcheck ?? info.Config.Healthcheck;
  return { config: info.Config, healthcheck, size: info.Size };
}

/**
 * The image's files, mounted read-only, as a path the test can read (see
 * {@linkcode Podman.path}); `podman image unmount` it afterwards.
 */
export async function mountImage(podman: Podman, image: string): Promise<string> {
  return podman.path((await podman.ok(["image", "mount", image])).trim());
}
