/**
 * libnvme symbol table and the one struct whose layout stacd depends on.
 *
 * Everything here is opaque handles and accessors (stable across libnvme
 * 1.x) except `struct nvme_fabrics_config`, which grew fields over time:
 * its layouts live in {@link FABRICS_CONFIG_LAYOUTS}, keyed by the libnvme
 * versions they were verified against (tests/unit/ffi/fabrics_layout_test.ts
 * compiles offsetof() probes against that version's headers).
 */
import { openLibrary } from "./loader.ts";

export const LIBNVME_SONAMES = ["libnvme.so.1"] as const;

/**
 * The libnvme symbols stacd and stafd call, keyed by their C names: all must
 * resolve when the library is opened, so nothing is listed that they do not
 * call (what only the tests need is in tests/ffi/).
 */
export const LIBNVME_SYMBOLS = {
  // const char *nvme_get_version(enum nvme_version type);  (absent from older builds)
  nvme_get_version: { parameters: ["i32"], result: "pointer", optional: true },
  // nvme_root_t nvme_create_root(FILE *fp, int log_level);
  nvme_create_root: { parameters: ["pointer", "i32"], result: "pointer" },
  // void nvme_free_tree(nvme_root_t r);
  nvme_free_tree: { parameters: ["pointer"], result: "void" },
  // nvme_host_t nvme_lookup_host(nvme_root_t r, const char *hostnqn, const char *hostid);
  nvme_lookup_host: { parameters: ["pointer", "buffer", "buffer"], result: "pointer" },
  // void nvme_host_set_dhchap_key(nvme_host_t h, const char *key);
  nvme_host_set_dhchap_key: { parameters: ["pointer", "buffer"], result: "void" },
  // void nvme_host_set_hostsymname(nvme_host_t h, const char *hostsymname);
  nvme_host_set_hostsymname: { parameters: ["pointer", "buffer"], result: "void" },
  // nvme_ctrl_t nvme_create_ctrl(nvme_root_t r, const char *subsysnqn, const char *transport,
  //     const char *traddr, const char *host_traddr, const char *host_iface, const char *trsvcid);
  nvme_create_ctrl: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "pointer",
  },
  // void nvme_ctrl_set_dhchap_key(nvme_ctrl_t c, const char *key);  (controller key)
  nvme_ctrl_set_dhchap_key: { parameters: ["pointer", "buffer"], result: "void" },
  // void nvme_ctrl_set_discovery_ctrl(nvme_ctrl_t c, bool discovery);  (a unique TP8013 NQN's DC)
  nvme_ctrl_set_discovery_ctrl: { parameters: ["pointer", "bool"], result: "void" },
  // void nvmf_default_config(struct nvme_fabrics_config *cfg);
  nvmf_default_config: { parameters: ["buffer"], result: "void" },
  // int nvmf_add_ctrl(nvme_host_t h, nvme_ctrl_t c, const struct nvme_fabrics_config *cfg);
  // Blocks for the whole fabrics connect (TCP handshake, admin queue, I/O queues).
  nvmf_add_ctrl: {
    parameters: ["pointer", "pointer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // const char *nvme_ctrl_get_name(nvme_ctrl_t c);
  nvme_ctrl_get_name: { parameters: ["pointer"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Opens libnvme; throws LibraryNotFoundError listing every path tried. */
export function openLibnvme(): Deno.DynamicLibrary<typeof LIBNVME_SYMBOLS> {
  return openLibrary("libnvme", LIBNVME_SONAMES, LIBNVME_SYMBOLS);
}

/** enum nvme_version */
export const NVME_VERSION_PROJECT = 0;
/**
 * syslog.h LOG_INFO: the level of libnvme's log that stacd reads. 1.3 logs
 * a refused connect at LOG_ERR, 1.13 at LOG_INFO ("Failed to write to
 * /dev/nvme-fabrics: <reason>"); the option string itself, which carries the
 * DH-HMAC-CHAP keys, is logged at LOG_DEBUG only, so never read that level.
 */
export const LOG_INFO = 6;

/**
 * Byte offsets of `struct nvme_fabrics_config` on x86_64 / aarch64 (LP64).
 * Fields that a version lacks are absent; stacd writes only the fields
 * every verified version has (the TLS ones keep nvmf_default_config's values).
 */
export interface FabricsConfigLayout {
  readonly size: number;
  readonly host_traddr: number;
  readonly host_iface: number;
  readonly queue_size: number;
  readonly nr_io_queues: number;
  readonly reconnect_delay: number;
  readonly ctrl_loss_tmo: number;
  readonly fast_io_fail_tmo: number;
  readonly keep_alive_tmo: number;
  readonly nr_write_queues: number;
  readonly nr_poll_queues: number;
  readonly tos: number;
  readonly duplicate_connect: number;
  readonly disable_sqflow: number;
  readonly hdr_digest: number;
  readonly data_digest: number;
  readonly tls: number;
  /** long keyring: TLS keyring serial (1.4+). */
  readonly keyring?: number;
  /** long tls_key: TLS PSK serial (1.4+). */
  readonly tls_key?: number;
  /** long tls_configured_key: serial of the configured PSK (1.11+). */
  readonly tls_configured_key?: number;
  /** bool concat: secure channel concatenation (1.11+). */
  readonly concat?: number;
}

/** libnvme 1.3 (Debian 12): two pointers, nine ints, five bools, padded to 8. */
const LAYOUT_1_3: FabricsConfigLayout = {
  size: 64,
  host_traddr: 0,
  host_iface: 8,
  queue_size: 16,
  nr_io_queues: 20,
  reconnect_delay: 24,
  ctrl_loss_tmo: 28,
  fast_io_fail_tmo: 32,
  keep_alive_tmo: 36,
  nr_write_queues: 40,
  nr_poll_queues: 44,
  tos: 48,
  duplicate_connect: 52,
  disable_sqflow: 53,
  hdr_digest: 54,
  data_digest: 55,
  tls: 56,
};

/**
 * libnvme 1.13 (Debian 13): the 1.3 fields, then three longs for TLS keys
 * after `tos` (8-aligned, so 4 bytes of padding), then six bools (`concat`
 * added), padded to 8.
 */
const LAYOUT_1_13: FabricsConfigLayout = {
  size: 88,
  host_traddr: 0,
  host_iface: 8,
  queue_size: 16,
  nr_io_queues: 20,
  reconnect_delay: 24,
  ctrl_loss_tmo: 28,
  fast_io_fail_tmo: 32,
  keep_alive_tmo: 36,
  nr_write_queues: 40,
  nr_poll_queues: 44,
  tos: 48,
  keyring: 56,
  tls_key: 64,
  tls_configured_key: 72,
  duplicate_connect: 80,
  disable_sqflow: 81,
  hdr_digest: 82,
  data_digest: 83,
  tls: 84,
  concat: 85,
};

/** Verified layouts by libnvme "major.minor" version. */
export const FABRICS_CONFIG_LAYOUTS: ReadonlyMap<string, FabricsConfigLayout> = new Map([
  ["1.3", LAYOUT_1_3],
  ["1.13", LAYOUT_1_13],
]);
