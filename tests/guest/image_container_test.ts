/**
 * stacd's container image for real, with podman in the Debian 13 guest: the
 * image is built from container/Containerfile's runtime stage on a root
 * debootstrapped from the release and packages it names
 * (tests/guest/container_image.ts), and every container runs with exactly
 * the options of container/run-options.json, which tests/unit/container/manifest_test.ts
 * holds to container/daemonset.yaml: privileged, host network, /dev, /sys,
 * /etc/nvme and /run/stacd from the host, /etc/stas a folder written as the
 * kubelet writes a ConfigMap volume, read-only root, the liveness probe as
 * podman's health check. No system bus and no udevd in the container.
 *
 * Needs the runtime root on the host first; the whole run, as one command:
 *   deno run -A tests/guest/container_suite.ts
 * Ignored where podman is missing (Debian 12's root) or the root is not built.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { productionPackages } from "../../build/install.ts";
import { runtimeRootReady } from "../../build/container_root.ts";
import { readContainerfile, runtimePackages } from "../../container/run_options.ts";
import { environment, execForm, labels } from "../../container/runtime_stage.ts";
import { buildImage, type BuiltImage, inspectImage, mountImage } from "./container_image.ts";
import { ConfigMapDir } from "./configmap_dir.ts";
import { controllers, controllersOf, deleteAllControllers, waitFor } from "./nvme_host.ts";
import { Podman } from "./podman.ts";
import { StacdContainer } from "./stacd_container.ts";
import { identities, liveNqns, waitForLiveSet } from "./stacd_process.ts";
import { createTarget, LOOPBACK_PORT } from "./target.ts";

const checkout = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const options = StacdContainer.options;

const root = await runtimeRootReady();
const why = !Podman.installed()
  ? "no podman in this guest's root (the Debian 13 root has it)"
  : !root
  ? "the image's runtime root is not built: run tests/guest/container_suite.ts on the host"
  : undefined;
if (why) console.log(`image_container_test: ignored: ${why}`);
const ignore = why !== undefined;

/** podman and the image, made once for all tests (the build takes minutes under TCG). */
let ready: Promise<{ podman: Podman; built: BuiltImage }> | undefined;
function setup(): Promise<{ podman: Podman; built: BuiltImage }> {
  return ready ??= (async () => {
    const podman = await Podman.start();
    const built = await buildImage(podman, root!);
    return { podman, built };
  })();
}

/** The ConfigMap of daemonset.yaml: the stacd.conf and sys.conf a cluster starts from. */
function manifestConfigMap(): Record<string, string> {
  const text = Deno.readTextFileSync(`${checkout}/container/daemonset.yaml`);
  const cm = parseAllDocuments(text, { version: "1.1" }).map((d) => d.toJS())
    .find((d) => d?.kind === "ConfigMap") as { data: Record<string, string> } | undefined;
  assert.ok(cm, "no ConfigMap in daemonset.yaml");
  return cm.data;
}

/** The manifest's stacd.conf with `lines` added at the top of `section`. */
function addToSection(conf: string, section: string, lines: string[]): string {
  const header = `[${section}]\n`;
  assert.ok(conf.includes(header), `no ${header.trim()} in the ConfigMap's stacd.conf`);
  return conf.replace(header, header + lines.map((l) => `${l}\n`).join(""));
}

/** The ConfigMap's files with one controller line per NQN (and extra [Global] lines). */
function configFiles(nqns: string[], global: string[] = []): Record<string, string> {
  const data = manifestConfigMap();
  const controllerLines = nqns.map((n) =>
    `controller = transport=tcp;traddr=${LOOPBACK_PORT.traddr};trsvcid=${LOOPBACK_PORT.trsvcid};nqn=${n}`
  );
  const conf = addToSection(
    addToSection(data["stacd.conf"]!, "Controllers", controllerLines),
    "Global",
    global,
  );
  return { ...data, "stacd.conf": conf };
}

/**
 * A fresh ConfigMap folder (the DaemonSet's defaultMode 0600), and a fresh
 * /run/stacd as its DirectoryOrCreate hostPath finds on a new node. Disposing
 * of it removes the folder and every connection the test left.
 */
async function freshNode(
  files: Record<string, string>,
): Promise<ConfigMapDir & AsyncDisposable> {
  await Deno.remove("/run/stacd", { recursive: true }).catch(() => {});
  await Deno.mkdir("/run/stacd", { recursive: true });
  const dir = await Deno.makeTempDir({ prefix: "stacd-configmap-" });
  const cm = await ConfigMapDir.create(dir, files, 0o600);
  return Object.assign(cm, {
    async [Symbol.asyncDispose]() {
      await deleteAllControllers();
      await Deno.remove(dir, { recursive: true });
    },
  });
}

function assertNoDuplicates(): void {
  const nqns = liveNqns();
  assert.deepEqual(nqns, [...new Set(nqns)], "a subsystem is connected twice");
}

const count = (log: string, pattern: RegExp) => (log.match(new RegExp(pattern, "g")) ?? []).length;
const seconds = (ns: number | undefined) => ns === undefined ? undefined : ns / 1e9;

Deno.test({
  name: "the image is built from the Containerfile's runtime stage on the debootstrapped root",
  ignore,
  async fn() {
    const { podman, built } = await setup();
    const containerfile = readContainerfile();
    const { config, healthcheck, size } = await inspectImage(podman, built.image);
    assert.deepEqual(config.Entrypoint, execForm(containerfile, "ENTRYPOINT"));
    assert.deepEqual(config.Entrypoint, options.entrypoint);
    for (const [key, value] of Object.entries(environment(containerfile))) {
      assert.ok(config.Env?.includes(`${key}=${value}`), `${key}=${value} in the image's Env`);
    }
    assert.deepEqual(healthcheck?.Test, ["CMD", ...execForm(containerfile, "HEALTHCHECK")]);
    assert.deepEqual(healthcheck?.Test, ["CMD", ...options.healthCommand]);
    assert.equal(seconds(healthcheck?.Interval), options.healthProbe.periodSeconds);
    assert.equal(seconds(healthcheck?.Timeout), options.healthProbe.timeoutSeconds);
    for (const [key, value] of Object.entries(labels(containerfile))) {
      assert.equal(config.Labels?.[key], value, `label ${key}`);
    }
    // The stage's own check ran (dpkg-query in its RUN); the packages are there to run.
    const dpkg = await podman.ok([
      "run",
      "--rm",
      ...["--network", "none", "--entrypoint", "dpkg-query"],
      built.image,
      ...["--show", "--showformat", "${Package} ${Version}\\n", ...runtimePackages()],
    ]);
    console.log(`image: runtime packages:\n${dpkg.trim()}`);

    const base = await inspectImage(podman, built.base);
    const figures = {
      image: built.image,
      sizeBytes: size,
      baseSizeBytes: base.size,
      seconds: built.seconds,
      ...await archiveSizes(podman, built.image),
    };
    console.log(`image: ${JSON.stringify(figures)}`);
    const out = Deno.env.get("GUEST_OUT");
    if (out) await Deno.writeTextFile(`${out}/container-image.json`, JSON.stringify(figures));
  },
});

/** `podman image save` of `image`: its size, and gzip's (about what a registry stores). */
async function archiveSizes(podman: Podman, image: string) {
  const save = podman.spawn(["image", "save", "--format", "docker-archive", image]);
  const bytes = async (stream: ReadableStream<Uint8Array>) => {
    let n = 0;
    for await (const chunk of stream) n += chunk.length;
    return n;
  };
  const [raw, forGzip] = save.stdout.tee();
  const [archiveBytes, archiveGzipBytes, stderr] = await Promise.all([
    bytes(raw),
    bytes(forGzip.pipeThrough(new CompressionStream("gzip"))),
    new Response(save.stderr).text(),
  ]);
  const { code } = await save.status;
  assert.equal(code, 0, `podman image save: ${stderr}`);
  return { archiveBytes, archiveGzipBytes };
}

/** Every regular file under `dir` (symbolic links not followed), as paths relative to it. */
async function* walk(dir: string, rel = ""): AsyncGenerator<{ path: string; size: number }> {
  for await (const e of Deno.readDir(`${dir}${rel}`)) {
    const path = `${rel}/${e.name}`;
    if (e.isDirectory) yield* walk(dir, path);
    else if (e.isFile) yield { path, size: (await Deno.lstat(`${dir}${path}`)).size };
  }
}

Deno.test({
  name: "the image holds no build tools, no package lists and no secret; /etc/stas is 0600",
  ignore,
  async fn() {
    const { podman, built } = await setup();
    const fs = await mountImage(podman, built.image);
    try {
      const status = await Deno.readTextFile(`${fs}/var/lib/dpkg/status`);
      const packages = status.split("\n\n").filter((s) => /^Status: install ok installed$/m.test(s))
        .map((s) => s.match(/^Package: (\S+)$/m)![1]!);
      // Compilers and their toolchains by name (gcc-12, not gcc-12-base: that
      // one holds only libgcc's documentation), -dev packages, node and npm.
      const tools =
        /^(gcc|g\+\+|cpp|clang|make|cmake|nodejs|npm|git|curl|wget)(-\d[\d.]*)?$|^(binutils|build-essential|llvm|dpkg-dev)|-dev$/;
      assert.deepEqual(packages.filter((p) => tools.test(p)), [], "build tool packages");
      for (const bin of ["/usr/bin", "/usr/sbin", "/usr/local/bin"]) {
        for (const tool of ["cc", "gcc", "c++", "make", "ld", "as", "node", "npm", "npx", "git"]) {
          assert.ok(
            !await Deno.lstat(`${fs}${bin}/${tool}`).then(() => true, () => false),
            `${bin}/${tool} in the image`,
          );
        }
      }
      assert.deepEqual(await Array.fromAsync(Deno.readDir(`${fs}/var/lib/apt/lists`)), []);
      const debs = (await Array.fromAsync(Deno.readDir(`${fs}/var/cache/apt/archives`)))
        .filter((e) => e.name.endsWith(".deb"));
      assert.deepEqual(debs, [], "downloaded packages");

      // stacd's files: the sources the launcher runs and the production npm
      // packages, nothing of the checkout's tests, tools or development packages.
      const lib = `${fs}/usr/lib/stacd`;
      const top = (await Array.fromAsync(Deno.readDir(lib))).map((e) => e.name).sort();
      assert.deepEqual(top, [
        "deno",
        "deno.json",
        ...(top.includes("deno.lock") ? ["deno.lock"] : []),
        "ffi",
        "lib",
        "main.ts",
        "node_modules",
        "package-lock.json",
        "package.json",
      ]);
      const modules: string[] = [];
      for await (const e of Deno.readDir(`${lib}/node_modules`)) {
        if (!e.name.startsWith("@")) modules.push(`node_modules/${e.name}`);
        else {
          for await (const s of Deno.readDir(`${lib}/node_modules/${e.name}`)) {
            modules.push(`node_modules/${e.name}/${s.name}`);
          }
        }
      }
      const lock = await Deno.readTextFile(`${lib}/package-lock.json`);
      assert.deepEqual(modules.sort(), productionPackages(lock), "only production npm packages");

      // No secret: no DH-HMAC-CHAP key and no private key in any text file.
      // Binaries are left out: libgnutls and deno embed public self-test
      // keys. No node identity either: /etc/nvme comes from the host.
      const grep = await new Deno.Command("grep", {
        args: [
          ...[
            "-rlIE",
            "DHHC-1:0[0-3]:[A-Za-z0-9+/]{40,}={0,2}:|-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY",
          ],
          fs,
        ],
      }).output();
      assert.equal(grep.code, 1, `files with a key: ${new TextDecoder().decode(grep.stdout)}`);
      assert.ok(!await Deno.lstat(`${fs}/etc/nvme`).then(() => true, () => false), "/etc/nvme");
      for (const name of ["stacd.conf", "sys.conf"]) {
        const path = `${fs}${options.configDir}/${name}`;
        assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600, `${name} mode`);
        const set = (await Deno.readTextFile(path)).split("\n")
          .filter((l) =>
            /^\s*(key|dhchap-secret|dhchap-ctrl-secret)\s*=/.test(l) || /DHHC-1/.test(l)
          )
          .filter((l) => !l.trimStart().startsWith("#"));
        assert.deepEqual(set, [], `${name} sets no key`);
      }

      let bytes = 0;
      let files = 0;
      for await (const f of walk(fs)) {
        bytes += f.size;
        files++;
      }
      const notable = packages.filter((p) => /nvme|udev|ssl|dbus|json|libc6$|systemd/.test(p));
      console.log(
        `image: ${packages.length} packages (${notable.join(", ")}); ` +
          `${files} files, ${(bytes / 1e6).toFixed(1)} MB unpacked`,
      );
    } finally {
      await podman.run(["image", "unmount", built.image]);
    }
  },
});

Deno.test({
  name: "(a) stacd in the container connects the 8 controllers of the mounted ConfigMap",
  ignore,
  async fn() {
    const { podman } = await setup();
    using t = createTarget({ subsystems: 8, ports: [LOOPBACK_PORT] });
    await using cm = await freshNode(configFiles(t.nqns));
    await using c = new StacdContainer(podman, { name: "stacd-a", configDir: cm.dir });
    await c.waitForLog(/Starting stacd .*udev source: kernel/);
    await waitForLiveSet(t.nqns, 180_000);
    assertNoDuplicates();
    assert.equal(controllers().length, 8);
    assert.equal(await c.stop(), 0);
    assert.equal(count(c.log, /Connection established!/), 8, c.log);
  },
});

Deno.test({
  name: "(b) a ConfigMap update (kubelet's ..data symlink swap) is applied without a restart",
  ignore,
  async fn() {
    const { podman } = await setup();
    using t = createTarget({ subsystems: 10, ports: [LOOPBACK_PORT] });
    const first = t.nqns.slice(0, 8);
    const second = t.nqns.slice(2);
    await using cm = await freshNode(configFiles(first));
    await using c = new StacdContainer(podman, { name: "stacd-b", configDir: cm.dir });
    await waitForLiveSet(first, 180_000);
    const before = identities();
    const version = await cm.current();
    await cm.update(configFiles(second));
    assert.notEqual(await cm.current(), version, "..data points at a new version");
    await c.waitForLog(/Configuration reloaded from \/etc\/stas\/stacd\.conf/);
    await waitForLiveSet(second, 120_000);
    assertNoDuplicates();
    const after = identities();
    for (const nqn of first.slice(2)) {
      assert.equal(after.get(nqn), before.get(nqn), `${nqn} kept its device and cntlid`);
    }
    // Out of the live set as soon as their deletion starts; gone once the kernel is done.
    for (const nqn of first.slice(0, 2)) {
      await waitFor(() => controllersOf(nqn).length === 0 || undefined, `${nqn} deleted`, 30_000);
    }
    assert.equal(count(c.log, /Starting stacd/), 1, "one start: no restart");
    assert.equal(await c.stop(), 0, "the same container ran throughout");
  },
});

Deno.test({
  name: "(c) stopping the container keeps the connections; a new container adopts them, none twice",
  ignore,
  async fn() {
    const { podman } = await setup();
    using t = createTarget({ subsystems: 8, ports: [LOOPBACK_PORT] });
    await using cm = await freshNode(configFiles(t.nqns));
    const before = await (async () => {
      await using c = new StacdContainer(podman, { name: "stacd-c", configDir: cm.dir });
      await waitForLiveSet(t.nqns, 180_000);
      const ids = identities();
      assert.equal(await c.stop(), 0, "podman stop: SIGTERM, a clean exit");
      await c.waitForLog(/Stopping stacd \(connections are kept\)/, 0);
      return ids;
    })();
    await waitForLiveSet(t.nqns);
    assert.deepEqual(identities(), before, "stopping the container disconnected nothing");
    const saved = "/run/stacd/last-known-config";
    assert.equal(JSON.parse(await Deno.readTextFile(saved)).controllers.length, 8);
    assert.equal((await Deno.stat(saved)).mode! & 0o777, 0o600);

    await using again = new StacdContainer(podman, { name: "stacd-c", configDir: cm.dir });
    await again.waitForLog(/Restored 8 controllers/);
    await again.waitForLog(/Adopted existing connection/);
    await waitForLiveSet(t.nqns);
    // Settle: a duplicate connect would show up within a reconcile pass or two.
    await new Promise((r) => setTimeout(r, 5_000));
    assertNoDuplicates();
    assert.deepEqual(identities(), before, "adopted: same devices, same cntlids");
    assert.doesNotMatch(again.log, /Connection established!/, "nothing reconnected");
    assert.equal(await again.stop(), 0);
  },
});

Deno.test({
  name: "(d) with no bus and no udevd in the container, a controller removed on the target is seen",
  ignore,
  async fn() {
    const { podman } = await setup();
    using t = createTarget({ subsystems: 2, ports: [LOOPBACK_PORT] });
    const [gone, stays] = t.nqns as [string, string];
    await using cm = await freshNode(
      configFiles(t.nqns, ["reconnect-delay = 1", "ctrl-loss-tmo = 2"]),
    );
    await using c = new StacdContainer(podman, { name: "stacd-d", configDir: cm.dir });
    await c.waitForLog(/Starting stacd .*udev source: kernel/);
    await c.waitForLog(/D-Bus API off/);
    const alone = await c.exec([
      "/bin/sh",
      "-c",
      "test ! -e /run/udev/control && test ! -e /run/dbus/system_bus_socket",
    ]);
    assert.equal(alone.code, 0, "no udevd socket and no system bus in the container");
    await waitForLiveSet(t.nqns, 180_000);
    const device = controllersOf(gone)[0]!.name;

    t.target.removeSubsystem(gone);
    await waitFor(() => controllersOf(gone).length === 0 || undefined, "kernel gave up", 60_000);
    const escaped = device.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    await c.waitForLog(new RegExp(`${escaped} - Controller removed by the kernel, retrying`));
    assert.equal(controllersOf(stays).length, 1, "the other controller is untouched");

    t.target.createSubsystem(gone);
    t.target.linkSubsystem(LOOPBACK_PORT.id, gone);
    await waitForLiveSet(t.nqns, 120_000);
    assertNoDuplicates();
    assert.equal(await c.stop(), 0);
  },
});

Deno.test({
  name: "(e) the liveness probe's command answers 0 while stacd runs and fails once it hangs",
  ignore,
  async fn() {
    const { podman } = await setup();
    await using cm = await freshNode(configFiles([]));
    // The one option not taken from run-options.json: under TCG, starting
    // the launcher (deno, which transpiles stacd's sources on every start:
    // the root is read-only) takes about as long as the probe's 5 s
    // timeout. The command, its answer and the probe's other settings are
    // the DaemonSet's.
    await using c = new StacdContainer(podman, {
      name: "stacd-e",
      configDir: cm.dir,
      healthTimeoutSeconds: 60,
    });
    await c.waitForLog(/Starting stacd/);
    // The probe's initial delay: the socket appears once stacd has started.
    const socket = () => {
      try {
        return Deno.lstatSync("/run/stacd/health.sock").isSocket || undefined;
      } catch {
        return undefined;
      }
    };
    await waitFor(socket, "the health socket", 120_000);
    let t = performance.now();
    assert.equal(await c.probe(), 0, "podman exec NAME stacd --health");
    console.log(`probe: podman exec stacd --health took ${Math.round(performance.now() - t)} ms`);
    t = performance.now();
    const healthy = await podman.run(["healthcheck", "run", c.name]);
    console.log(`probe: podman healthcheck run took ${Math.round(performance.now() - t)} ms`);
    assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr);

    // A hung daemon (stopped, so it accepts nothing) fails the probe.
    await c.signal("SIGSTOP");
    assert.notEqual(await c.probe(), 0, "a stopped stacd is not healthy");
    const unhealthy = await podman.run(["healthcheck", "run", c.name]);
    assert.equal(unhealthy.code, 1, unhealthy.stdout + unhealthy.stderr);
    assert.match(unhealthy.stdout, /unhealthy/);
    await c.signal("SIGCONT");
    assert.equal(await c.probe(), 0, "healthy again");
    assert.equal(await c.stop(), 0);
  },
});

Deno.test({
  name:
    "(f) one process: the ConfigMap's discovery controller's subsystems connect, then follow the target",
  ignore,
  async fn() {
    const { podman } = await setup();
    using t = createTarget({ subsystems: 4, ports: [LOOPBACK_PORT] });
    const stafd = `[Controllers]\ncontroller = transport=tcp;traddr=${LOOPBACK_PORT.traddr};` +
      `trsvcid=${LOOPBACK_PORT.trsvcid}\n`;
    await using cm = await freshNode({ ...configFiles([]), "stafd.conf": stafd });
    await using c = new StacdContainer(podman, { name: "stacd-f", configDir: cm.dir });
    await waitForLiveSet(t.nqns, 180_000);
    assertNoDuplicates();
    await c.waitForLog(
      /nqn\.2014-08\.org\.nvmexpress\.discovery\) \| nvme\d+ - Connection established!/,
    );
    // No configuration change: the target changes, the kernel's AEN reaches the finder.
    const added = "nqn.2026-11.io.test:added";
    t.target.createSubsystem(added);
    t.target.linkSubsystem(LOOPBACK_PORT.id, added);
    await waitForLiveSet([...t.nqns, added], 120_000);
    const gone = t.nqns[0]!;
    t.target.unlinkSubsystem(LOOPBACK_PORT.id, gone);
    await waitFor(() => controllersOf(gone).length === 0 || undefined, `${gone} gone`, 120_000);
    await waitForLiveSet([...t.nqns.slice(1), added], 120_000);
    assert.equal(await c.stop(), 0);
    t.target.removeSubsystem(added);
  },
});
