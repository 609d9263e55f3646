/**
 * Reloads stacd when a config file changes on disk (docs/design.md#watching-the-files). The
 * directories are watched, not the files: editors replace files by rename,
 * and a Kubernetes ConfigMap update swaps a symlink in the directory.
 *
 * A file that is gone is not applied: an editor's rename-replace makes a
 * file briefly absent, and defaults in its place would disconnect every
 * configured controller. Only an explicit SIGHUP applies an absent file.
 */
import type { Clock, Timer } from "../clock.ts";
import { CONFIG_FILE_MAX_BYTES, denoTextFileReader, readFailure } from "../config/text_file.ts";
import type { Logger } from "../logger.ts";

/** Each file's text, undefined when absent, or why it could not be read. */
type Snapshot = (string | undefined)[];

export interface ConfigWatcherDeps {
  clock: Clock;
  log: Logger;
  /** Writers touch files several times: one reload after the burst. */
  soakMs: number;
  /** Called when a file's content differs from what was loaded last. */
  onChange: () => void;
}

export class ConfigWatcher {
  readonly #files: readonly string[];
  readonly #deps: ConfigWatcherDeps;
  #loaded: Snapshot = [];
  #watchers: Deno.FsWatcher[] = [];
  #loops: Promise<void>[] = [];
  #pending: Timer | undefined;
  #gone = new Set<string>();
  #closed = false;

  constructor(files: readonly string[], deps: ConfigWatcherDeps) {
    this.#files = files;
    this.#deps = deps;
  }

  /** The files are being loaded: what they hold now is the baseline. */
  loaded(): void {
    this.#loaded = this.#read();
    this.#gone.clear();
  }

  /**
   * Watches `dirs`. A change made between the last load and now is seen
   * as if the watcher had seen it happen.
   */
  start(dirs: readonly string[]): void {
    for (const dir of new Set(dirs)) {
      let watcher: Deno.FsWatcher;
      try {
        watcher = Deno.watchFs(dir, { recursive: false });
      } catch (error) {
        // No /etc/stas (a container given -f) is common: said, not warned.
        const say = error instanceof Deno.errors.NotFound ? "info" : "warning";
        this.#deps.log[say](`Cannot watch ${dir} for changes: ${(error as Error).message}`);
        continue;
      }
      this.#watchers.push(watcher);
      this.#loops.push(
        (async () => {
          for await (const event of watcher) if (event.kind !== "access") this.#touched();
        })().catch((error) => this.#deps.log.error(`Config watcher failed: ${error}`)),
      );
    }
    this.#touched();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#pending?.cancel();
    for (const watcher of this.#watchers) watcher.close();
    await Promise.all(this.#loops);
  }

  #touched(): void {
    this.#pending?.cancel();
    this.#pending = this.#deps.clock.after(this.#deps.soakMs, () => this.#settled());
  }

  #settled(): void {
    if (this.#closed) return;
    const now = this.#read();
    const gone = this.#files.filter((_, i) =>
      this.#loaded[i] !== undefined && now[i] === undefined
    );
    // One warning per disappearance, not one per soak while it lasts.
    for (const file of gone.filter((f) => !this.#gone.has(f))) {
      this.#deps.log.warning(
        `${file} is gone; the running configuration is kept (SIGHUP applies its absence)`,
      );
    }
    this.#gone = new Set(gone);
    if (gone.length === 0 && now.some((text, i) => text !== this.#loaded[i])) {
      this.#deps.onChange();
    }
  }

  /** A touch is not a change: the content is compared. */
  #read(): Snapshot {
    return this.#files.map((file) => {
      try {
        return denoTextFileReader.readTextFile(file, CONFIG_FILE_MAX_BYTES);
      } catch (error) {
        // Differs from any text: a new read error is a change (the reload reports it).
        return `\0${readFailure(error)}`;
      }
    });
  }
}
