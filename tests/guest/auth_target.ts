/**
 * What the DH-HMAC-CHAP guest tests share: random keys in the form
 * `nvme gen-dhchap-key` prints, an nvmet target whose subsystems demand
 * them, a scratch /etc/stas (the guest's root is read-only), and the check
 * that a text holds no key. Needs the guest (nvmet in configfs, root).
 */
import assert from "node:assert/strict";
import { deleteAllControllers, hostIdentity } from "./nvme_host.ts";
import { LOOPBACK_PORT, NvmetTarget } from "./target.ts";

/** The port the auth tests' subsystems listen on. */
export const AUTH_PORT = LOOPBACK_PORT;

/** A random DH-HMAC-CHAP secret as `nvme gen-dhchap-key` writes it (no transform). */
export function generateKey(bytes: 32 | 48 | 64 = 32): string {
  const key = crypto.getRandomValues(new Uint8Array(bytes));
  const all = new Uint8Array(bytes + 4);
  all.set(key);
  new DataView(all.buffer).setUint32(bytes, crc32(key), true);
  return `DHHC-1:00:${btoa(String.fromCharCode(...all))}:`;
}

function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * A target whose subsystems each admit only this host, with the given
 * secrets (the host entry is shared: nvmet keeps keys per host, not per
 * subsystem), plus optional open subsystems, on {@linkcode AUTH_PORT}.
 * Disposing tears it down.
 */
export function authTarget(
  opts: { secured: string[]; open?: string[]; hostKey?: string; ctrlKey?: string },
): NvmetTarget {
  const { hostnqn } = hostIdentity();
  const target = new NvmetTarget();
  try {
    if (opts.secured.length > 0) {
      target.createHost(hostnqn, { dhchapKey: opts.hostKey, dhchapCtrlKey: opts.ctrlKey });
    }
    for (const nqn of opts.secured) {
      target.createSubsystem(nqn, { allowAnyHost: false });
      target.allowHost(nqn, hostnqn);
    }
    for (const nqn of opts.open ?? []) target.createSubsystem(nqn);
    target.createPort(AUTH_PORT.id, AUTH_PORT);
    for (const nqn of [...opts.secured, ...opts.open ?? []]) {
      target.linkSubsystem(AUTH_PORT.id, nqn);
    }
  } catch (e) {
    target.teardown();
    throw e;
  }
  return target;
}

/** The config files of a scratch configuration, and where stacd keeps its runtime files. */
export interface ScratchConfig extends AsyncDisposable {
  /** stacd.conf's path (not written yet), in a fresh 0700 folder. */
  confFile: string;
  runtimeDir: string;
}

/**
 * A scratch folder for stacd.conf, and /etc/stas covered by a tmpfs
 * holding `sysConf` (the guest's root is read-only), for the test's
 * duration. `files` are written next to sys.conf (key files), mode 0600.
 * Disposing uncovers /etc/stas and deletes every controller.
 */
export async function scratchConfig(
  sysConf: string,
  files: Record<string, string> = {},
): Promise<ScratchConfig> {
  const dir = await Deno.makeTempDir({ prefix: "stacd-auth-" });
  await mount(["-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/etc/stas"]);
  await Deno.writeTextFile("/etc/stas/sys.conf", sysConf, { mode: 0o600 });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`/etc/stas/${name}`, text, { mode: 0o600 });
  }
  return {
    confFile: `${dir}/stacd.conf`,
    runtimeDir: `${dir}/run`,
    [Symbol.asyncDispose]: async () => {
      await mount(["/etc/stas"], "umount");
      await deleteAllControllers();
    },
  };
}

async function mount(args: string[], cmd = "mount"): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A secret to look for, with a name for messages (which never show the value). */
export interface Secret {
  label: string;
  value: string;
}

/**
 * The strings that give a key away: the key itself and, for the
 * `DHHC-1:<hh>:<base64>:` form, its base64 body alone (found even when the
 * frame around it was reformatted or cut).
 */
export function secretForms(value: string): string[] {
  const body = /^DHHC-1:[0-9a-f]{2}:([^:]+):?$/i.exec(value.trim())?.[1];
  return body ? [value, body] : [value];
}

/** The labels of the `secrets` that appear in `text`, in any of their {@linkcode secretForms}. */
export function secretsIn(text: string, secrets: readonly Secret[]): string[] {
  return secrets.filter((s) => secretForms(s.value).some((form) => text.includes(form)))
    .map((s) => s.label);
}

/** Asserts that `text` holds none of `secrets` (plain key strings, or labelled ones). */
export function assertNoSecret(
  text: string,
  secrets: readonly (string | Secret)[],
  where: string,
): void {
  const labelled = secrets.map((s, i) =>
    typeof s === "string" ? { label: `key #${i + 1}`, value: s } : s
  );
  const found = secretsIn(text, labelled);
  assert.ok(found.length === 0, `${found.join(", ")} appear(s) in ${where}`);
}
