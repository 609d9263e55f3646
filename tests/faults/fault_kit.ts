/**
 * What every fault test of the campaign shares (issue 6, item 2): a watch
 * that samples the kernel's controllers every ~100 ms DURING the fault and
 * fails on a duplicate or on a kept connection that changed (docs/design.md#what-a-test-must-show:
 * a disconnect followed by a reconnect is a lost connection), and
 * {@linkcode faultTest}, which records one row of the campaign's summary
 * table ($GUEST_OUT/faults.jsonl, printed by tests/faults/campaign.ts).
 * Runs only in the guest, through tests/faults/campaign.ts.
 */
import assert from "node:assert/strict";
import { deleteAllControllers, waitFor } from "../guest/nvme_host.ts";
import type { StacdProcess } from "../guest/stacd_process.ts";
import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";

const SYS_NVME = "/sys/class/nvme";

/** One row of the summary table. */
export interface FaultRow {
  fault: string;
  /** How many faults were injected, e.g. "1000 SIGHUP". */
  injected: string;
  /** stacd stayed up (or exited cleanly where it should). */
  survived: boolean;
  /** Final kernel state = desired state, no duplicate, no kept connection lost. */
  stateCorrect: boolean;
  passed: boolean;
  seconds: number;
  /** Seed, counts, or the failure. */
  note: string;
}

/** What a fault test fills in as it goes; unset flags mean "not shown". */
export interface FaultRecord {
  /** e.g. "20 SIGKILL". */
  injected: string;
  survived: boolean;
  stateCorrect: boolean;
  notes: string[];
}

/** Where the rows go: the guest run's output folder, which the host reads. */
export const ROWS_FILE = "faults.jsonl";

/**
 * One fault, one Deno.test, one row. The row is written whether the test
 * passes or not, so the table shows what failed and how far it got.
 */
export function faultTest(name: string, body: (record: FaultRecord) => Promise<void>): void {
  Deno.test(name, async () => {
    const record: FaultRecord = { injected: "-", survived: false, stateCorrect: false, notes: [] };
    const started = performance.now();
    let failure: unknown;
    try {
      await body(record);
    } catch (error) {
      failure = error;
      writeFailure(name, error);
      throw error;
    } finally {
      const why = failure === undefined
        ? ""
        : (failure instanceof Error ? failure.message : String(failure)).split("\n")[0]!;
      writeRow({
        fault: name,
        injected: record.injected,
        survived: record.survived,
        stateCorrect: record.stateCorrect && failure === undefined,
        passed: failure === undefined,
        seconds: Math.round((performance.now() - started) / 100) / 10,
        note: [...record.notes, ...(why ? [`FAILED: ${why.slice(0, 200)}`] : [])].join("; "),
      });
    }
  });
}

/**
 * The whole failure (with stacd's log, which waitForLog puts in it) in a
 * file of its own: deno test's report shortens long messages, and CI keeps
 * the file (the campaign copies it next to its JUnit report).
 */
function writeFailure(name: string, error: unknown): void {
  const out = Deno.env.get("GUEST_OUT");
  if (!out) return;
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60);
  const text = error instanceof Error ? error.stack ?? error.message : String(error);
  Deno.writeTextFileSync(`${out}/fault-failed-${slug}.txt`, `${name}\n\n${text}\n`);
}

function writeRow(row: FaultRow): void {
  const out = Deno.env.get("GUEST_OUT");
  if (!out) return;
  Deno.writeTextFileSync(`${out}/${ROWS_FILE}`, JSON.stringify(row) + "\n", { append: true });
}

/** One controller as the watch samples it. */
export interface Seen {
  name: string;
  nqn: string;
  cntlid: string;
  state: string;
}

/**
 * Every nvme controller now: three attribute reads each, so that sampling
 * 64 controllers every 100 ms stays cheap under TCG. One that vanishes while
 * read is left out.
 */
export function sample(): Seen[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(SYS_NVME)].map((e) => e.name).sort();
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const attr = (a: string) => Deno.readTextFileSync(`${SYS_NVME}/${name}/${a}`).trim();
    try {
      return [{ name, nqn: attr("subsysnqn"), cntlid: attr("cntlid"), state: attr("state") }];
    } catch {
      return [];
    }
  });
}

/**
 * subsysnqn -> "nvmeX/cntlid" of the I/O controllers now (the identity of
 * docs/design.md#what-a-test-must-show).
 */
export function identities(seen: Seen[] = sample()): Map<string, string> {
  return new Map(
    seen.filter((c) => c.nqn !== DISCOVERY_NQN).map((c) => [c.nqn, `${c.name}/${c.cntlid}`]),
  );
}

/**
 * How a kept connection must look in every sample: "identity" = same device
 * and same cntlid (stacd must not touch it); "device" = same device (the
 * target dropped the association and the kernel itself reconnected it, which
 * gives a new cntlid, but stacd must neither delete nor duplicate it).
 */
export type KeepMode = "identity" | "device";

/**
 * Samples the kernel every `intervalMs` until stopped, and remembers every
 * violation: a subsystem connected twice (controllers being deleted aside),
 * or a kept controller that changed or disappeared.
 */
export class KernelWatch implements AsyncDisposable {
  /** Samples taken so far. */
  samples = 0;
  /** Time spent sampling, in milliseconds (what the watch costs the guest). */
  busyMs = 0;
  readonly violations: string[] = [];
  readonly #kept = new Map<string, { id: string; mode: KeepMode; node: number | null }>();
  readonly #loop: Promise<void>;
  #stopped = false;
  #wake: (() => void) | undefined;

  constructor(readonly intervalMs = 100) {
    this.#loop = this.#run();
  }

  /** From now on, each of `ids` (nqn -> "nvmeX/cntlid") must stay as it is. */
  keep(ids: ReadonlyMap<string, string>, mode: KeepMode = "identity"): void {
    for (const [nqn, id] of ids) this.#kept.set(nqn, { id, mode, node: kernfsNode(id) });
  }

  /** Stops requiring these (about to be removed on purpose). */
  release(...nqns: string[]): void {
    for (const nqn of nqns) this.#kept.delete(nqn);
  }

  /** Stops requiring anything. */
  releaseAll(): void {
    this.#kept.clear();
  }

  /** The subsystems it keeps now. */
  get kept(): string[] {
    return [...this.#kept.keys()];
  }

  /**
   * Takes one sample now. Kept lean, as it runs every 100 ms beside stacd on
   * a TCG guest: each controller's subsysnqn is read once per kernfs node (a
   * deleted and re-created nvmeX is a new node), then a sample costs one
   * lstat per controller, plus the cntlid of the kept ones and the state of
   * those that look duplicated.
   */
  check(): void {
    const started = performance.now();
    const seen = this.#observe();
    const read = (name: string, attr: string) => {
      try {
        return Deno.readTextFileSync(`${SYS_NVME}/${name}/${attr}`).trim();
      } catch {
        return "gone";
      }
    };
    this.samples++;
    const at = `sample ${this.samples}`;
    const byNqn = new Map<string, string[]>();
    const nodeOf = new Map<string, number | null>();
    for (const { name, nqn, node } of seen) {
      byNqn.set(nqn, [...(byNqn.get(nqn) ?? []), name]);
      nodeOf.set(name, node);
    }
    for (const [nqn, names] of byNqn) {
      if (nqn === DISCOVERY_NQN || names.length < 2) continue;
      // Being deleted (or already gone) is not a second connection.
      const active = names.filter((n) => !/^deleting|^gone$/.test(read(n, "state")));
      if (active.length > 1) {
        this.#violate(`${at}: ${nqn} connected ${active.length} times (${active})`);
      }
    }
    for (const [nqn, { id, mode, node }] of this.#kept) {
      const names = byNqn.get(nqn) ?? [];
      const [device] = id.split("/");
      // The same kernfs node: a device deleted and made again, even under the
      // same name and cntlid (both are lowest-free numbers), is a new node.
      const same = names.some((n) =>
        n === device && (node === null || nodeOf.get(n) === node) &&
        (mode === "device" || `${n}/${read(n, "cntlid")}` === id)
      );
      if (same) continue;
      const now = names.map((n) => `${n}/${read(n, "cntlid")} ${read(n, "state")}`).join(", ");
      this.#violate(`${at}: kept ${nqn} was ${id}, now ${now || "nothing"}`);
    }
    this.busyMs += performance.now() - started;
  }

  /** Every controller's name and subsysnqn, the latter cached per kernfs node. */
  #observe(): { name: string; nqn: string; node: number | null }[] {
    let names: string[];
    try {
      names = [...Deno.readDirSync(SYS_NVME)].map((e) => e.name);
    } catch {
      return [];
    }
    const seen = [];
    for (const name of names) {
      try {
        const ino = Deno.lstatSync(`${SYS_NVME}/${name}`).ino;
        let known = this.#nqnOf.get(name);
        if (known?.ino !== ino || ino === null) {
          const nqn = Deno.readTextFileSync(`${SYS_NVME}/${name}/subsysnqn`).trim();
          known = { ino, nqn };
          // Until the kernel has found the subsystem (a connect under way) the
          // attribute reads "(efault)": read it again next time.
          if (nqn.startsWith("nqn.")) this.#nqnOf.set(name, known);
        }
        seen.push({ name, nqn: known.nqn, node: ino });
      } catch {
        this.#nqnOf.delete(name); // vanished while looked at
      }
    }
    return seen;
  }

  readonly #nqnOf = new Map<string, { ino: number | null; nqn: string }>();

  /** Throws listing the violations seen so far (the first ten). */
  assertClean(): void {
    this.check();
    assert.ok(this.samples > 0, "the watch took no sample");
    assert.deepEqual(
      this.violations.slice(0, 10),
      [],
      `${this.violations.length} violations in ${this.samples} samples`,
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
  }

  /**
   * Stops watching, then deletes every connection: the kernel state a fault
   * test watched ends with it (in that order, or the watch would see the
   * deletions as losses).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await deleteAllControllers();
  }

  #violate(what: string): void {
    // The same violation seen in consecutive samples is one event.
    const text = what.replace(/^sample \d+: /, "");
    if (this.violations.at(-1)?.endsWith(text)) return;
    this.violations.push(what);
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.check();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.intervalMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** The kernfs inode of /sys/class/nvme/nvmeX for an "nvmeX/cntlid" id (null if gone). */
function kernfsNode(id: string): number | null {
  try {
    return Deno.lstatSync(`${SYS_NVME}/${id.split("/")[0]}`).ino;
  } catch {
    return null;
  }
}

/** No subsystem has two active controllers now. */
export function assertNoDuplicates(seen: Seen[] = sample()): void {
  const nqns = seen.filter((c) => c.nqn !== DISCOVERY_NQN && !c.state.startsWith("deleting"))
    .map((c) => c.nqn);
  const twice = nqns.filter((n, i) => nqns.indexOf(n) !== i);
  assert.deepEqual(twice, [], "a subsystem is connected twice");
}

/** Whether stacd is still running (its process has not exited). */
export async function isRunning(stacd: StacdProcess): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const still = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), 20));
  try {
    return await Promise.race([stacd.child.status.then(() => false), still]);
  } finally {
    clearTimeout(timer);
  }
}

/** Log lines that betray an error inside stacd rather than a fault it handled. */
const INTERNAL_ERROR = /Reconcile pass failed|handling failed|failed: .*Error|Uncaught|panicked/;

/** Asserts stacd is up, and logged no internal error, and records it. */
export async function assertSurvived(stacd: StacdProcess, record: FaultRecord): Promise<void> {
  assert.ok(await isRunning(stacd), `stacd exited during the fault\n${stacd.log}`);
  assert.deepEqual(stacd.lines.filter((l) => INTERNAL_ERROR.test(l)), [], "internal errors");
  record.survived = true;
}

/** The log lines from index `from` on that match `pattern`. */
export function linesSince(stacd: StacdProcess, from: number, pattern: RegExp): string[] {
  return stacd.lines.slice(from).filter((l) => pattern.test(l));
}

/** How many log lines match `pattern`. */
export function countLines(stacd: StacdProcess, pattern: RegExp): number {
  return stacd.lines.filter((l) => pattern.test(l)).length;
}

/**
 * Waits until `n` log lines match `pattern` (the kernel's state can run ahead
 * of stacd's log: a connect is visible in sysfs before stacd has logged it),
 * then says how many match once the log has settled for `settleMs`.
 */
export async function settledCount(
  stacd: StacdProcess,
  pattern: RegExp,
  n: number,
  settleMs = 500,
): Promise<number> {
  await waitFor(
    () => countLines(stacd, pattern) >= n || undefined,
    `${n} log lines ${pattern}\n${stacd.log}`,
    30_000,
  ).catch(() => {}); // fewer is for the caller's assertion to report
  await sleep(settleMs);
  return countLines(stacd, pattern);
}

/** A regular expression matching `text` literally. */
export function literal(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

/** A log line about subsystem `nqn`'s controller (its printable id ends with the NQN) saying `what`. */
export function about(nqn: string, what: string | RegExp): RegExp {
  const tail = typeof what === "string" ? literal(what).source : what.source;
  return new RegExp(`, ${literal(nqn).source}\\).*${tail}`);
}

/** A scratch folder with stacd.conf and a runtime directory path. */
export async function scratch(
  prefix = "stacd-fault-",
): Promise<{ dir: string; confFile: string; runtimeDir: string }> {
  const dir = await Deno.makeTempDir({ prefix });
  return { dir, confFile: `${dir}/stacd.conf`, runtimeDir: `${dir}/run` };
}

/** Replaces a file atomically (temp + rename), as editors and ConfigMaps do. */
export function replaceFile(path: string, text: string): void {
  Deno.writeTextFileSync(`${path}.new`, text);
  Deno.renameSync(`${path}.new`, path);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
