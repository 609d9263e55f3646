/**
 * A folder written the way the kubelet writes a ConfigMap volume
 * (kubernetes pkg/volume/util/atomic_writer.go), for tests that mount it
 * where a pod would have its ConfigMap:
 *
 *   ..2026_11_27_15_04_05.2271039814/stacd.conf   the data, one folder per version
 *   ..data -> ..2026_11_27_15_04_05.2271039814
 *   stacd.conf -> ..data/stacd.conf               one link per key, made once
 *
 * An update writes a new version folder, points a new link `..data_tmp` at
 * it and renames that over `..data` (the one atomic step), then removes the
 * old folder: a reader sees the old files or the new ones, never a mix, and
 * the files' own names never change.
 */
export class ConfigMapDir {
  readonly dir: string;
  readonly #mode: number;

  private constructor(dir: string, mode: number) {
    this.dir = dir;
    this.#mode = mode;
  }

  /** Writes `files` (key -> content) into the new folder `dir`; `mode` is the volume's defaultMode. */
  static async create(
    dir: string,
    files: Record<string, string>,
    mode = 0o644,
  ): Promise<ConfigMapDir> {
    await Deno.mkdir(dir, { recursive: true });
    const cm = new ConfigMapDir(dir, mode);
    await cm.update(files);
    return cm;
  }

  /** The version folder `..data` points at now. */
  async current(): Promise<string | undefined> {
    return await Deno.readLink(`${this.dir}/..data`).catch(() => undefined);
  }

  /** Replaces the content with `files`, as a ConfigMap update does. */
  async update(files: Record<string, string>): Promise<void> {
    const old = await this.current();
    const version = await this.#writeVersion(files);
    await Deno.symlink(version, `${this.dir}/..data_tmp`);
    await Deno.rename(`${this.dir}/..data_tmp`, `${this.dir}/..data`);
    for (const key of Object.keys(files)) {
      const link = `${this.dir}/${key}`;
      const exists = await Deno.lstat(link).then(() => true, () => false);
      if (!exists) await Deno.symlink(`..data/${key}`, link);
    }
    for await (const e of Deno.readDir(this.dir)) {
      if (!e.name.startsWith("..") && !(e.name in files)) {
        await Deno.remove(`${this.dir}/${e.name}`);
      }
    }
    if (old) await Deno.remove(`${this.dir}/${old}`, { recursive: true });
  }

  /** `..YYYY_MM_DD_hh_mm_ss.RANDOM`, 0755, holding the files with the volume's mode. */
  async #writeVersion(files: Record<string, string>): Promise<string> {
    const stamp = new Date().toISOString().slice(0, 19).replace(/[-T:]/g, "_");
    const random = crypto.getRandomValues(new Uint32Array(1))[0]!;
    const name = `..${stamp}.${random}`;
    const path = `${this.dir}/${name}`;
    await Deno.mkdir(path, { mode: 0o755 });
    await Deno.chmod(path, 0o755);
    for (const [key, content] of Object.entries(files)) {
      await Deno.writeTextFile(`${path}/${key}`, content);
      await Deno.chmod(`${path}/${key}`, this.#mode);
    }
    return name;
  }
}
