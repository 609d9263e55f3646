/**
 * The last line of defence before a dict leaves stacd over D-Bus: the model
 * is written not to include secrets, and this drops whatever looks like one
 * anyway, so that a future bug in the model cannot leak a DH-HMAC-CHAP or
 * TLS key to every local user (upstream's list_controllers did exactly that).
 */

/** Keys that hold DH-HMAC-CHAP secrets in nvme-stas configs (dhchap-secret, dhchap_ctrl_secret...). */
const SECRET_KEY = /^dhchap/i;
/** The interchange formats of NVMe secrets: DH-HMAC-CHAP (`DHHC-1:`) and TLS PSK (`NVMeTLSkey-1:`). */
const SECRET_VALUE = /DHHC-1:|NVMeTLSkey-1:/i;

/** True if `key` or `value` looks like it carries a secret. */
export function looksSecret(key: string, value: unknown): boolean {
  return SECRET_KEY.test(key) || (typeof value === "string" && SECRET_VALUE.test(value));
}

/**
 * A copy of `dict` without secret-looking entries; `dropped` names the keys
 * removed (never their values), so the caller can report the model's bug.
 */
export function withoutSecrets<T>(
  dict: Readonly<Record<string, T>>,
): { clean: Record<string, T>; dropped: string[] } {
  const clean: Record<string, T> = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(dict)) {
    if (looksSecret(key, value)) dropped.push(key);
    else clean[key] = value;
  }
  return { clean, dropped };
}

/**
 * `dict` with string values only, as the `a{ss}` of list_controllers needs:
 * numbers and booleans become text, null and undefined are left out, and
 * anything else (an object: a model bug) is left out rather than making
 * the whole reply unencodable.
 */
export function stringValues(dict: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(dict)) {
    if (typeof value === "string") out[key] = value;
    else if (typeof value === "number" || typeof value === "boolean") out[key] = String(value);
  }
  return out;
}

/**
 * A filter for the dicts a service sends: drops secret-looking entries and
 * reports each drop once per field (never its value): a drop is a model bug.
 */
export function secretGuard(
  log: { error(message: string): void },
): <T>(dict: Readonly<Record<string, T>>, what: string) => Record<string, T> {
  const reported = new Set<string>();
  return (dict, what) => {
    const { clean, dropped } = withoutSecrets(dict);
    for (const key of dropped) {
      if (reported.has(`${what}/${key}`)) continue;
      reported.add(`${what}/${key}`);
      log.error(`D-Bus: dropped secret-looking field "${key}" from ${what} (a bug: please report)`);
    }
    return clean;
  };
}
