/**
 * parseLogPages(): stafd's get_all_log_pages reply as untrusted input.
 * Table tests for each kind of problem, then a seeded fuzz test whose main
 * property is "nothing that may name an NVMe subsystem is dropped silently
 * from an answer called complete".
 */
import assert from "node:assert/strict";
import {
  DEFAULT_PAGE_LIMITS,
  parseLogPages,
  readLogPagesReply,
} from "../../../lib/dbus/stafd_pages.ts";
import { GARBAGE, goodPages, HOST_NQN, nvmeEntry, page } from "../../dbus/stafd_garbage.ts";

const parse = (value: unknown, limits = {}) => parseLogPages(JSON.stringify(value), limits);

Deno.test("parseLogPages() reads stafd's answer: host fields from the discovery controller, all values strings", () => {
  const { pages, problems, complete } = parse([
    page([nvmeEntry("nqn.x:s1", { eflags: 4 })], {
      "host-traddr": "10.0.0.1",
      "host-iface": "eth0",
    }),
  ]);
  assert.deepEqual(problems, []);
  assert.equal(complete, true);
  assert.deepEqual(pages, [{
    hostTraddr: "10.0.0.1",
    hostIface: "eth0",
    hostNqn: HOST_NQN,
    entries: [{
      subtype: "nvme",
      trtype: "tcp",
      traddr: "192.168.1.20",
      trsvcid: "4420",
      subnqn: "nqn.x:s1",
      adrfam: "ipv4",
      treq: "not specified",
      portid: "1",
      cntlid: "65535",
      asqsz: "32",
      eflags: "4",
      sectype: "none",
    }],
  }]);
});

Deno.test("an empty list is a complete answer with no pages", () => {
  assert.deepEqual(parseLogPages("[]"), { pages: [], problems: [], complete: true });
});

Deno.test("absent host-traddr, host-iface and host-nqn read as empty, without a problem (older stafds)", () => {
  const { pages, problems } = parse([{ "discovery-controller": {}, "log-pages": [] }]);
  assert.deepEqual(problems, []);
  assert.deepEqual(pages, [{ hostTraddr: "", hostIface: "", hostNqn: "", entries: [] }]);
});

Deno.test("informational fields may be absent; a flat sectype is accepted too", () => {
  const entry = {
    subtype: "nvme",
    trtype: "tcp",
    traddr: "::1",
    trsvcid: 4420,
    subnqn: "n",
    sectype: "tls1.3",
  };
  const { pages, complete } = parse([page([entry])]);
  assert.equal(complete, true);
  assert.deepEqual(pages[0]?.entries[0], {
    ...{ subtype: "nvme", trtype: "tcp", traddr: "::1", trsvcid: "4420", subnqn: "n" },
    ...{ adrfam: "", treq: "", portid: "", cntlid: "", asqsz: "", eflags: "", sectype: "tls1.3" },
  });
});

for (const [kind, { answer, outcome }] of Object.entries(GARBAGE)) {
  if (answer.kind !== "json") continue;
  Deno.test(`bad answer "${kind}": ${outcome}, every problem on one short line`, () => {
    const { pages, problems, complete } = parseLogPages(answer.text);
    assert.equal(complete, outcome === "partial");
    assert.ok(problems.length > 0);
    for (const line of problems) {
      assert.ok(line.length < 400, `${line.length} characters: ${line.slice(0, 100)}`);
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(line, /[\u0000-\u001f]/, "no raw control character reaches the log");
    }
    if (outcome === "partial") {
      assert.ok(pages.flatMap((p) => p.entries).some((e) => e.subnqn.startsWith("nqn.x:ok")));
    }
  });
}

Deno.test("an unreadable nvme entry makes the answer incomplete: dropping it would disconnect it", () => {
  const result = parse([page([nvmeEntry("nqn.x:s1"), nvmeEntry("nqn.x:s2", { traddr: {} })])]);
  assert.equal(result.complete, false);
  assert.deepEqual(result.pages[0]?.entries.map((e) => e.subnqn), ["nqn.x:s1"]);
  assert.match(
    result.problems[0] ?? "",
    /^page 0 \(tcp 192\.168\.1\.10 8009\), entry 1: traddr: expected a string, got an object; skipped$/,
  );
});

Deno.test("an unreadable referral or discovery entry is skipped; the answer stays complete", () => {
  for (const subtype of ["referral", "discovery", 3]) {
    const result = parse([
      page([nvmeEntry("nqn.x:d", { subtype, trsvcid: {} }), nvmeEntry("nqn.x:s1")]),
    ]);
    assert.equal(result.complete, true, `subtype ${subtype}`);
    assert.deepEqual(result.pages[0]?.entries.map((e) => e.subnqn), ["nqn.x:s1"]);
    assert.equal(result.problems.length, 1);
  }
});

Deno.test("values the kernel's connect options cannot carry skip the entry, not the answer", () => {
  for (
    const over of [{ subnqn: "nqn.x:a,b" }, { traddr: "1.2.3.4,hostnqn=evil" }, {
      trtype: "t".repeat(2000),
    }]
  ) {
    const result = parse([page([nvmeEntry("nqn.x:bad", over), nvmeEntry("nqn.x:ok")])]);
    assert.equal(result.complete, true, JSON.stringify(over).slice(0, 40));
    assert.deepEqual(result.pages[0]?.entries.map((e) => e.subnqn), ["nqn.x:ok"]);
  }
  const host = parse([page([nvmeEntry("nqn.x:s1")], { "host-nqn": "nqn.h,x" }), ...goodPages(1)]);
  assert.equal(host.complete, true);
  assert.equal(host.pages.length, 1, "the page whose host-nqn has a comma is skipped");
  assert.match(host.problems[0] ?? "", /discovery-controller host-nqn: "nqn\.h,x" contains ","/);
});

Deno.test("an over-long informational field loses the entry (it is not a connect option)", () => {
  const result = parse([page([nvmeEntry("nqn.x:s1", { treq: "r".repeat(5000) })])]);
  assert.equal(result.complete, false);
});

Deno.test("control characters are removed from every value, and reported", () => {
  const result = parse([
    page([nvmeEntry("nqn.x:s1\u0000", { traddr: "10.0.0.1\n" })], { "host-iface": "eth0\u007f" }),
  ]);
  assert.equal(result.complete, true);
  assert.equal(result.pages[0]?.hostIface, "eth0");
  assert.equal(result.pages[0]?.entries[0]?.subnqn, "nqn.x:s1");
  assert.equal(result.pages[0]?.entries[0]?.traddr, "10.0.0.1");
  assert.equal(result.problems.length, 3);
  assert.match(
    result.problems.join("\n"),
    /traddr: control characters removed from "10\.0\.0\.1\\n"/,
  );
});

Deno.test("own keys only: __proto__ or constructor in the input do not reach the prototype", () => {
  const text = `[{"discovery-controller": {}, "__proto__": {"log-pages": []}}]`;
  assert.equal(parseLogPages(text).complete, false);
  const entry =
    `{"subtype":"nvme","trtype":"tcp","traddr":"1.1.1.1","trsvcid":"4420","subnqn":"n","constructor":{}}`;
  assert.equal(
    parseLogPages(`[{"discovery-controller":{},"log-pages":[${entry}]}]`).complete,
    true,
  );
});

Deno.test("the limits can be lowered, and each is enforced", () => {
  const three = goodPages(3);
  assert.equal(parse(three, { maxEntriesPerPage: 2 }).complete, false);
  assert.equal(parse([...three, ...three], { maxPages: 1 }).complete, false);
  assert.equal(parse(three, { maxChars: 100 }).complete, false);
  assert.match(parse(three, { maxChars: 100 }).problems[0] ?? "", /characters exceeds 100$/);
  const short = parse(three, { maxStringLength: 10 });
  assert.equal(short.complete, true, "what is too long to connect is skipped, not lost");
  assert.equal(short.pages.length, 0);
  assert.match(short.problems[0] ?? "", /host-nqn: 68 characters exceed 10$/);
});

Deno.test("problems are capped at maxProblems, plus one line counting the rest", () => {
  const entries = Array.from({ length: 50 }, (_, i) => nvmeEntry(`nqn.x:${i},`));
  const { problems } = parse([page(entries)], { maxProblems: 5 });
  assert.equal(problems.length, 6);
  assert.equal(problems[5], "... and 45 more problems");
  assert.equal(DEFAULT_PAGE_LIMITS.maxProblems, 20);
});

Deno.test("readLogPagesReply() insists on the signature s", () => {
  assert.equal(readLogPagesReply("s", ["[]"]).complete, true);
  assert.equal(readLogPagesReply("s", [42]).complete, false);
  assert.equal(readLogPagesReply("as", [["[]"]]).complete, false);
  assert.equal(readLogPagesReply(undefined, []).complete, false);
});
