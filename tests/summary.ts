/**
 * Prints one closing line for a whole test run from the JUnit reports that
 * `deno test --junit-path` wrote (host and guest runs), in the plain form CI
 * runners read: `tests: N passed, N failed, N skipped`. Exits non-zero when
 * a test failed or a report expected by the caller is missing.
 *
 *   deno run --allow-read tests/summary.ts out/junit-unit.xml out/junit-guest.xml
 */

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** Counts the test cases of one JUnit XML document. */
export function countJUnit(xml: string): Counts {
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  const cases = xml.match(/<testcase\b[\s\S]*?(?:\/>|<\/testcase>)/g) ?? [];
  for (const c of cases) {
    if (/<(failure|error)\b/.test(c)) counts.failed++;
    else if (/<skipped\b/.test(c)) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

if (import.meta.main) {
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  let missing = 0;
  for (const path of Deno.args) {
    try {
      const c = countJUnit(await Deno.readTextFile(path));
      console.log(`${path}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
      total.passed += c.passed;
      total.failed += c.failed;
      total.skipped += c.skipped;
    } catch {
      console.log(`${path}: missing (that run did not complete)`);
      missing++;
      total.failed++;
    }
  }
  console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
  Deno.exit(total.failed > 0 || missing > 0 ? 1 : 0);
}
