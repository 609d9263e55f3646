/**
 * Random and mutated get_all_log_pages replies through parseLogPages(). The
 * seed is printed; replay a failure with STACD_FUZZ_SEED=<seed>. Small
 * limits make every limit reachable.
 *
 * The property that matters: an answer called complete lost nothing that may
 * name an NVMe subsystem. Every raw entry whose subtype is unreadable or
 * "nvme" is either in the output or reported as skipped because it cannot
 * be connected (too long, or a comma).
 */
import assert from "node:assert/strict";
import { type PageLimits, parseLogPages } from "../../../lib/dbus/stafd_pages.ts";
import { nvmeEntry, page } from "../../dbus/stafd_garbage.ts";
import { seededDraws, seedFrom } from "../../seeded_random.ts";

const RUNS = 3000;
const LIMITS: PageLimits = {
  maxChars: 20_000,
  maxPages: 4,
  maxEntriesPerPage: 6,
  maxStringLength: 64,
  maxProblems: 10_000,
};
const KERNEL_FIELDS = ["trtype", "traddr", "trsvcid", "subnqn"] as const;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

const SEED = seedFrom("STACD_FUZZ_SEED");
console.log(`stafd pages fuzz seed: ${SEED} (replay: STACD_FUZZ_SEED=${SEED})`);

const { int, pick } = seededDraws(SEED);

const STRINGS = [
  "",
  "nvme",
  "referral",
  "discovery",
  "tcp",
  "::",
  "0.0.0.0",
  "10.0.0.1",
  "fe80::1%eth0",
  "nv\u0000me",
  "a,b",
  "x".repeat(65),
  "x".repeat(300),
  "\u001b[31mred",
  "é☃",
  "__proto__",
];
function randomValue(depth = 0): unknown {
  switch (int(depth > 2 ? 4 : 7)) {
    case 0:
      return pick(STRINGS);
    case 1:
      return pick([0, 1, 2, 3, -1, 4420, 1.5, 2 ** 53]);
    case 2:
      return pick([true, false, null]);
    case 3:
      return undefined;
    case 4:
      return Array.from({ length: int(3) }, () => randomValue(depth + 1));
    case 5:
      return Object.fromEntries(
        Array.from({ length: int(3) }, () => [pick(STRINGS), randomValue(depth + 1)]),
      );
    default:
      return pick(STRINGS) + pick(STRINGS);
  }
}

function randomDoc(): unknown[] {
  return Array.from(
    { length: int(LIMITS.maxPages + 2) },
    () =>
      page(
        Array.from({ length: int(LIMITS.maxEntriesPerPage + 2) }, (_, j) =>
          nvmeEntry(`nqn.f:${j}`, { subtype: pick(["nvme", "nvme", "referral", "discovery"]) })),
      ),
  );
}

/** Replaces (or deletes) one random node of the document. */
function mutate(node: unknown): unknown {
  if (int(4) === 0 || node === null || typeof node !== "object") return randomValue();
  const keys = Object.keys(node);
  if (keys.length === 0) return node;
  const key = pick(keys);
  const copy = (Array.isArray(node) ? [...node] : { ...node }) as Record<string, unknown>;
  copy[key] = mutate(copy[key]);
  return copy;
}

function randomText(): string {
  let doc: unknown = randomDoc();
  for (let i = int(4); i > 0; i--) doc = mutate(doc);
  const text = JSON.stringify(doc) ?? "";
  if (int(10) > 0) return text;
  const at = int(text.length + 1);
  return pick([text.slice(0, at), text.slice(0, at) + pick(STRINGS) + text.slice(at)]);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The raw entries whose loss could disconnect a controller, with their place. */
function mayBeNvme(text: string): { i: number; j: number; entry: Record<string, unknown> }[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(doc)) return [];
  return doc.flatMap((p, i) => {
    const list = isObject(p) ? p["log-pages"] : undefined;
    return (Array.isArray(list) ? list : []).flatMap((entry, j) => {
      if (!isObject(entry)) return [{ i, j, entry: {} }];
      const sub = entry.subtype;
      const readable = typeof sub === "string" || typeof sub === "number";
      return !readable || String(sub).replace(CONTROL, "") === "nvme" ? [{ i, j, entry }] : [];
    });
  });
}

Deno.test(`parseLogPages() survives ${RUNS} random replies and never drops an NVMe entry silently`, () => {
  for (let run = 0; run < RUNS; run++) {
    const text = randomText();
    const result = parseLogPages(text, LIMITS);
    const context = `run ${run}, input ${JSON.stringify(text.slice(0, 300))}`;
    assert.deepEqual(parseLogPages(text, LIMITS), result, `deterministic: ${context}`);
    assert.ok(result.pages.length <= LIMITS.maxPages, context);
    for (const line of result.problems) {
      assert.ok(line.length < 1000, `bounded line: ${context}`);
      assert.doesNotMatch(line, CONTROL, context);
    }
    const out = result.pages.flatMap((p) => p.entries);
    for (const p of result.pages) {
      assert.ok(p.entries.length <= LIMITS.maxEntriesPerPage, context);
      for (const v of [p.hostTraddr, p.hostIface, p.hostNqn]) assert.ok(!v.includes(","), context);
    }
    for (const e of out) {
      for (const v of Object.values(e)) {
        assert.equal(typeof v, "string", context);
        assert.ok((v as string).length <= LIMITS.maxStringLength, context);
        assert.doesNotMatch(v as string, CONTROL, context);
      }
      for (const k of KERNEL_FIELDS) assert.ok(!e[k].includes(","), `${k} has a comma: ${context}`);
    }
    if (!result.complete) continue;
    const problems = result.problems.join("\n");
    for (const { i, j, entry } of mayBeNvme(text)) {
      const clean = (v: unknown) => String(v).replace(CONTROL, "");
      const kept = out.some((e) =>
        e.subnqn === clean(entry.subnqn) && e.traddr === clean(entry.traddr)
      );
      const unconnectable = new RegExp(
        `^page ${i}\\b[^\\n]*(entry ${j}: (trtype|traddr|trsvcid|subnqn)|discovery-controller host-)` +
          `[^\\n]*(exceed|contains ",")`,
        "m",
      ).test(problems);
      assert.ok(kept || unconnectable, `page ${i} entry ${j} dropped silently: ${context}`);
    }
  }
});
