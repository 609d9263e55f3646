/**
 * DH-HMAC-CHAP key checks, done when the configuration is read so that a
 * mistyped key is reported by name of its option instead of as the kernel's
 * bare EINVAL at connect time. Nothing here ever puts a key in a message.
 */

import type { ConfigDiagnostic } from "./diagnostics.ts";

/** Key lengths (bytes, before the CRC) that each `hh` transform requires; 00 takes any. */
const KEY_LENGTHS = new Map<string, readonly number[]>([
  ["00", [32, 48, 64]],
  ["01", [32]],
  ["02", [48]],
  ["03", [64]],
]);

/**
 * Why `text` is not a usable DH-HMAC-CHAP secret, or undefined when it is.
 * The form is `DHHC-1:<hh>:<base64 of key + CRC-32>:` (NVMe base spec 8.13.5.8,
 * as nvme-cli's gen-dhchap-key writes it): 36, 52 or 68 bytes decoded, the
 * length fitting `hh`, and the little-endian CRC-32 of the key at the end,
 * which the kernel checks too. The reason never quotes the key.
 */
export function dhchapKeyProblem(text: string): string | undefined {
  const parts = text.split(":");
  if (parts.length !== 4 || parts[0] !== "DHHC-1" || parts[3] !== "") {
    return 'is not of the form "DHHC-1:<hh>:<base64>:"';
  }
  const hh = parts[1] ?? "";
  const lengths = KEY_LENGTHS.get(hh);
  if (lengths === undefined) return "has an unknown key transform (hh must be 00, 01, 02 or 03)";
  const bytes = decodeBase64(parts[2] ?? "");
  if (bytes === undefined) return "is not valid base64";
  if (![36, 52, 68].includes(bytes.length)) {
    return `decodes to ${bytes.length} bytes (expected 36, 52 or 68, CRC-32 included)`;
  }
  const keyLength = bytes.length - 4;
  if (!lengths.includes(keyLength)) {
    return `holds a ${keyLength}-byte key, which transform ${hh} does not take`;
  }
  const key = bytes.subarray(0, keyLength);
  const stored = new DataView(bytes.buffer, bytes.byteOffset + keyLength, 4).getUint32(0, true);
  if (crc32(key) !== stored) return "fails its CRC-32 check (mistyped?)";
  return undefined;
}

/**
 * A warning when a file that holds a key (stacd.conf, sys.conf or a key file
 * they point to) is readable by group or others; undefined otherwise.
 * `mode` is `Deno.FileInfo.mode` (null where the platform has none).
 */
export function keyFileModeWarning(
  file: string,
  mode: number | null,
): ConfigDiagnostic | undefined {
  if (mode === null || (mode & 0o044) === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  return {
    level: "warning",
    file,
    message: `${file} holds a DH-HMAC-CHAP key but is readable by group or others ` +
      `(mode ${octal}); make it 0600`,
  };
}

/** Strict base64 (standard alphabet, padded): atob alone accepts sloppy input. */
function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    return undefined;
  }
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, as zlib and the kernel's crc32_le compute it). */
function crc32(data: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = (crcTable[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
