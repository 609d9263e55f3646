import assert from "node:assert/strict";
import { type IniDocument, parseIni } from "../../../lib/config/ini.ts";

/** The document as plain data: section -> option -> [value, line][]. */
function flat(doc: IniDocument): Record<string, Record<string, [string, number][]>> {
  const out: Record<string, Record<string, [string, number][]>> = {};
  for (const [section, options] of doc.sections) {
    out[section] = {};
    for (const [option, values] of options) {
      out[section][option] = values.map((v) => [v.value, v.line]);
    }
  }
  return out;
}

Deno.test("parseIni() keeps ; and # inside a value: there are no inline comments", () => {
  const doc = parseIni(
    "[Controllers]\ncontroller = transport=tcp;traddr=1.2.3.4 # not a comment\n",
  );
  assert.deepEqual(flat(doc), {
    Controllers: { controller: [["transport=tcp;traddr=1.2.3.4 # not a comment", 2]] },
  });
  assert.deepEqual(doc.problems, []);
});

Deno.test("parseIni() accumulates repeated keys in file order with their lines", () => {
  const doc = parseIni("[C]\ncontroller=a\nexclude=x\ncontroller=b\n\ncontroller=c\n");
  assert.deepEqual(flat(doc).C, {
    controller: [["a", 2], ["b", 4], ["c", 6]],
    exclude: [["x", 3]],
  });
});

Deno.test("parseIni() lowercases option names and keeps the case of section names", () => {
  const doc = parseIni("[Global]\nTRON = true\n[global]\nKato=3\n");
  assert.deepEqual(flat(doc), { Global: { tron: [["true", 2]] }, global: { kato: [["3", 4]] } });
});

Deno.test("parseIni() skips whole-line comments, indented ones too", () => {
  const doc = parseIni("# top\n; top\n[A]\n  # indented\n\t; tab\nx = 1\n   #x = 2\n");
  assert.deepEqual(flat(doc), { A: { x: [["1", 6]] } });
  assert.deepEqual(doc.problems, []);
});

Deno.test("parseIni() trims whitespace around names and values", () => {
  const doc = parseIni("[A]\n\t  kato   =    30  \t\n");
  assert.deepEqual(flat(doc), { A: { kato: [["30", 2]] } });
});

Deno.test("parseIni() splits name and value at the first = only", () => {
  const doc = parseIni("[A]\nk = a=b==c\n");
  assert.deepEqual(flat(doc), { A: { k: [["a=b==c", 2]] } });
});

Deno.test("parseIni() accepts empty values", () => {
  const doc = parseIni("[A]\nkey =\nother=\n");
  assert.deepEqual(flat(doc), { A: { key: [["", 2]], other: [["", 3]] } });
  assert.deepEqual(doc.problems, []);
});

Deno.test("parseIni() reports a line without = with its line number and reads on", () => {
  const doc = parseIni("[A]\nx = 1\nbare key\ny = 2\n");
  assert.deepEqual(flat(doc), { A: { x: [["1", 2]], y: [["2", 4]] } });
  assert.deepEqual(doc.problems, [{ line: 3, message: 'line without "=": "bare key"' }]);
});

Deno.test("parseIni() reports options before any section header and skips them", () => {
  const doc = parseIni("tron = true\n[Global]\nkato = 1\n");
  assert.deepEqual(flat(doc), { Global: { kato: [["1", 3]] } });
  assert.deepEqual(doc.problems, [{
    line: 1,
    message: 'option line before any [section]: "tron = true"',
  }]);
});

Deno.test("parseIni() reports an option without a name", () => {
  const doc = parseIni("[A]\n = value\n");
  assert.deepEqual(flat(doc), { A: {} });
  assert.equal(doc.problems[0]?.line, 2);
});

Deno.test("parseIni() joins a more indented next line to the value with a newline", () => {
  const doc = parseIni("[A]\nx = first\n    second\n\tthird\ny = 2\n");
  assert.deepEqual(flat(doc), { A: { x: [["first\nsecond\nthird", 2]], y: [["2", 5]] } });
});

Deno.test("parseIni() continues a value across comment lines, as configparser does", () => {
  const doc = parseIni("[A]\nx = a\n# comment\n  b\n");
  assert.deepEqual(flat(doc), { A: { x: [["a\nb", 2]] } });
});

Deno.test("parseIni() ends a value at an empty line", () => {
  const doc = parseIni("[A]\nx = a\n\n  b = 2\n");
  assert.deepEqual(flat(doc), { A: { x: [["a", 2]], b: [["2", 4]] } });
});

Deno.test("parseIni() reads equally indented lines as separate options", () => {
  const doc = parseIni("[A]\n  x = 1\n  y = 2\n");
  assert.deepEqual(flat(doc), { A: { x: [["1", 2]], y: [["2", 3]] } });
});

Deno.test("parseIni() does not continue a section header with an indented line", () => {
  const doc = parseIni("[A]\n   x = 1\n");
  assert.deepEqual(flat(doc), { A: { x: [["1", 2]] } });
});

Deno.test("parseIni() merges repeated section headers", () => {
  const doc = parseIni("[A]\nx=1\n[B]\ny=2\n[A]\nx=3\n");
  assert.deepEqual(flat(doc), { A: { x: [["1", 2], ["3", 6]] }, B: { y: [["2", 4]] } });
  assert.equal(doc.sectionLines.get("A"), 1);
});

Deno.test("parseIni() takes a section name up to the last ], untrimmed, like configparser", () => {
  const doc = parseIni("[Global] # trailing\n[ Spaced ]\n[a]b]\n");
  assert.deepEqual([...doc.sections.keys()], ["Global", " Spaced ", "a]b"]);
});

Deno.test("parseIni() reads CRLF and CR line endings and a UTF-8 BOM", () => {
  const lf = flat(parseIni("[A]\nx = 1\ny = a;b\n"));
  assert.deepEqual(flat(parseIni("\uFEFF[A]\r\nx = 1\r\ny = a;b\r\n")), lf);
  assert.deepEqual(flat(parseIni("[A]\rx = 1\ry = a;b\r")), lf);
});

Deno.test("parseIni() never quotes a DH-HMAC-CHAP key in a problem", () => {
  const doc = parseIni("[A]\nDHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:\n");
  assert.equal(doc.problems.length, 1);
  assert.ok(!doc.problems[0]?.message.includes("ia6zGod"));
});

Deno.test("parseIni() survives binary garbage and a 1 MiB line", () => {
  const garbage = String.fromCharCode(
    ...Array.from({ length: 4096 }, (_, i) => (i * 7919) % 65536),
  );
  const doc = parseIni(garbage);
  assert.ok(doc.problems.length >= 0);
  const long = parseIni(`[A]\nx = ${"y".repeat(1 << 20)}\n${"z".repeat(1 << 20)}\n`);
  assert.equal(long.sections.get("A")?.get("x")?.[0]?.value.length, 1 << 20);
  assert.ok((long.problems[0]?.message.length ?? 0) < 200, "long lines are shortened in messages");
});
