/**
 * Well-formed and malformed stafd answers, for the parser tests and for the
 * stand-in's garbage mode. Each bad answer says what stacd must make of it:
 * "unknown" (the whole answer is not usable: keep everything) or "partial"
 * (pages delivered, the bad part skipped with a log line, nothing that could
 * be connected lost).
 */

import { DISCOVERY_NQN } from "../../lib/core/connect_request.ts";

/** One page as stafd's get_all_log_pages(true) lists it. */
export interface StandinPage {
  "discovery-controller": Record<string, unknown>;
  "log-pages": unknown[];
}

/** What the stand-in answers to get_all_log_pages. */
export type Answer =
  | { kind: "json"; text: string }
  | { kind: "reply"; signature: string; body: unknown[] }
  | { kind: "error"; name: string; text: string }
  | { kind: "hang" };

export const HOST_NQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";

/** An `nvme` entry as libnvme's Python binding makes it (ints included, sectype nested). */
export function nvmeEntry(
  subnqn: string,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    trtype: "tcp",
    adrfam: "ipv4",
    subtype: "nvme",
    treq: "not specified",
    portid: 1,
    trsvcid: "4420",
    subnqn,
    traddr: "192.168.1.20",
    eflags: 0,
    cntlid: 65535,
    asqsz: 32,
    tsas: { sectype: "none" },
    ...over,
  };
}

/** A page of discovery controller 192.168.1.10:8009 with these entries. */
export function page(entries: unknown[], dc: Record<string, unknown> = {}): StandinPage {
  return {
    "discovery-controller": {
      transport: "tcp",
      traddr: "192.168.1.10",
      trsvcid: "8009",
      subsysnqn: DISCOVERY_NQN,
      "host-traddr": "",
      "host-iface": "",
      "host-nqn": HOST_NQN,
      device: "nvme0",
      ...dc,
    },
    "log-pages": entries,
  };
}

/** A good answer with `n` subsystems `nqn.2026-11.io.test:sK`. */
export function goodPages(n: number): StandinPage[] {
  return [page(Array.from({ length: n }, (_, i) => nvmeEntry(`nqn.2026-11.io.test:s${i + 1}`)))];
}

const json = (value: unknown): Answer => ({
  kind: "json",
  text: typeof value === "string" ? value : JSON.stringify(value),
});
const one = (over: Record<string, unknown>) => [page([nvmeEntry("nqn.x:bad", over)])];
const MiB = 1024 * 1024;

/** Bad answers by name, with the outcome stacd must reach. */
export const GARBAGE: Record<string, { answer: Answer; outcome: "unknown" | "partial" }> = {
  "invalid JSON": { answer: json('[{"discovery-controller": {'), outcome: "unknown" },
  "empty string": { answer: json(""), outcome: "unknown" },
  "not a list": { answer: json({ pages: [] }), outcome: "unknown" },
  "a list of numbers": { answer: json([1, 2, 3]), outcome: "unknown" },
  "page without discovery-controller": { answer: json([{ "log-pages": [] }]), outcome: "unknown" },
  "log-pages not a list": {
    answer: json([{ ...page([]), "log-pages": "none" }]),
    outcome: "unknown",
  },
  "entry missing subnqn": { answer: json(one({ subnqn: undefined })), outcome: "unknown" },
  "object where a string is expected": { answer: json(one({ traddr: {} })), outcome: "unknown" },
  "array where a string is expected": {
    answer: json(one({ trsvcid: [4420] })),
    outcome: "unknown",
  },
  "boolean subtype": { answer: json(one({ subtype: true })), outcome: "unknown" },
  "null entry": { answer: json([page([null])]), outcome: "unknown" },
  "host-nqn an object": { answer: json([page([], { "host-nqn": {} })]), outcome: "unknown" },
  "too many entries": {
    answer: json([page(Array.from({ length: 4097 }, (_, i) => nvmeEntry(`nqn.x:${i}`)))]),
    outcome: "unknown",
  },
  "too many pages": {
    answer: json(Array.from({ length: 1025 }, () => page([]))),
    outcome: "unknown",
  },
  "deeply nested": { answer: json("[".repeat(100_000) + "]".repeat(100_000)), outcome: "unknown" },
  "wrong reply signature": {
    answer: { kind: "reply", signature: "i", body: [42] },
    outcome: "unknown",
  },
  "two strings": {
    answer: { kind: "reply", signature: "ss", body: ["[]", "[]"] },
    outcome: "unknown",
  },
  "D-Bus error with a 1 MiB text": {
    answer: { kind: "error", name: "org.nvmexpress.staf.Error", text: "e".repeat(MiB) },
    outcome: "unknown",
  },
  "1 MiB traddr": {
    answer: json([
      page([nvmeEntry("nqn.x:big", { traddr: "1".repeat(MiB) }), nvmeEntry("nqn.x:ok")]),
    ]),
    outcome: "partial",
  },
  "comma in subnqn": {
    answer: json([page([nvmeEntry("nqn.x:a,traddr=10.6.6.6"), nvmeEntry("nqn.x:ok")])]),
    outcome: "partial",
  },
  "control characters": {
    answer: json([page([nvmeEntry("nqn.x:ok\u0000\u001b[31m")])]),
    outcome: "partial",
  },
  "bad referral entry": {
    answer: json([
      page([nvmeEntry("nqn.x:ref", { subtype: "referral", traddr: [] }), nvmeEntry("nqn.x:ok")]),
    ]),
    outcome: "partial",
  },
};
