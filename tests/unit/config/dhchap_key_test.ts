import assert from "node:assert/strict";
import { dhchapKeyProblem, keyFileModeWarning } from "../../../lib/config/dhchap_key.ts";

// Keys made outside this code (Python's zlib.crc32 + base64), one per transform;
// the first is nvme-cli's documentation example.
const VALID = [
  "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:",
  "DHHC-1:01:H0D8ktokFpR1CXnubPWC8tXX0o4YM13gWrxU0FYOD1PSgP0x:",
  "DHHC-1:02:Umd2iCLuYk1I/OFexcp5y9YCy39MIVelFlVpkfIu+Me173sY0f9BxZNw77CFhlHUMfrrXw==:",
  "DHHC-1:03:rMKNsr63tCuqHLAkPUAcy04/zkTXsCh5pSeZqt/1QVItiCJZiy+mZPnVFWwAySSAXXXDhovVbCrLgdN+mONa3AdTEKU=:",
  "DHHC-1:00:SPsQsV89RKCdyC0CsGWB4MDGlHjJ/Sz4+Qk2WQGaFoe67NuzjJ5ysSFp3EFIaQ+HPv9JxQ==:",
];

Deno.test("dhchapKeyProblem() accepts well-formed keys of every transform", () => {
  for (const key of VALID) assert.equal(dhchapKeyProblem(key), undefined, key);
});

Deno.test("dhchapKeyProblem() rejects malformed keys with a reason that never quotes them", () => {
  const cases: [string, string][] = [
    ["DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n", "is not of the form"],
    ["DHHC-2:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:", "is not of the form"],
    ["dhhc-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:", "is not of the form"],
    ["DHHC-1:04:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:", "unknown key transform"],
    ["DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2*:", "not valid base64"],
    ["DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2:", "not valid base64"],
    ["DHHC-1:00:AAAA:", "decodes to 3 bytes"],
    [
      "DHHC-1:01:h8Vo4Del+lCxvJEejuGad8TdPCK86ZMvhv3Yohav4WgciXN/raaFnpEEfuznEewWBmdt4A==:",
      "48-byte key",
    ],
    ["DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2m:", "CRC-32"],
    ["", "is not of the form"],
  ];
  for (const [key, reason] of cases) {
    const problem = dhchapKeyProblem(key);
    assert.ok(problem?.includes(reason), `${key}: ${problem}`);
    const secret = key.split(":")[2];
    if (secret) assert.ok(!problem?.includes(secret));
  }
});

Deno.test("keyFileModeWarning() warns when group or others may read, naming the file only", () => {
  assert.equal(keyFileModeWarning("/etc/stas/sys.conf", 0o100600), undefined);
  assert.equal(keyFileModeWarning("/etc/stas/sys.conf", 0o700), undefined);
  assert.equal(keyFileModeWarning("/etc/stas/sys.conf", null), undefined);
  for (const mode of [0o640, 0o604, 0o100644]) {
    const d = keyFileModeWarning("/etc/stas/sys.conf", mode);
    assert.equal(d?.level, "warning");
    assert.equal(d?.file, "/etc/stas/sys.conf");
    assert.match(d?.message ?? "", /^\/etc\/stas\/sys\.conf holds a DH-HMAC-CHAP key .*0600/);
  }
  assert.match(keyFileModeWarning("f", 0o100644)?.message ?? "", /mode 0644/);
});
