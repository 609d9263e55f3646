/**
 * Typed wrapper of libnvme for what stacd and stafd ask of it: connecting a
 * controller. Controllers are read and deleted through sysfs
 * (lib/kernel/nvme_sysfs.ts); discovery log pages are read through the
 * kernel's admin passthrough (lib/kernel/discovery_log_reader.ts).
 *
 * Each controller owns its own libnvme root, whose log stream is an
 * in-memory buffer: libnvme reports why a connect failed only through errno
 * (thread-local, lost when a `nonblocking` call returns on Deno's worker
 * thread) and through its log, so a private log per controller is what makes
 * a failure message attributable to the controller that failed.
 */
import {
  FABRICS_CONFIG_LAYOUTS,
  type FabricsConfigLayout,
  LOG_INFO,
  NVME_VERSION_PROJECT,
  openLibnvme,
} from "../../ffi/libnvme.ts";
import { errnoOfText, type Libc, libc, MFD_CLOEXEC } from "../../ffi/libc.ts";
import { cstr, type Handle, readCString, storePointer } from "../../ffi/pointers.ts";
import { scrub } from "../config/diagnostics.ts";
import { ConnectError } from "../core/kernel_api.ts";
import {
  type ConnectTarget,
  type FabricsOptions,
  type HostIdentity,
  redactOptionString,
} from "../core/connect_request.ts";

/**
 * Raised instead of filling a struct whose layout was not verified for this
 * libnvme; the message names the version found and the verified ones.
 */
export class UnverifiedLayoutError extends Error {
  constructor(readonly version: string) {
    super(
      `libnvme ${version}: struct nvme_fabrics_config layout not verified ` +
        `(verified: ${[...FABRICS_CONFIG_LAYOUTS.keys()].join(", ")})`,
    );
    this.name = "UnverifiedLayoutError";
  }
}

/** libnvme's ENVME_CONNECT_* codes (util.h), for failures that logged nothing. */
const ENVME_CONNECT = [
  "failed to resolve host",
  "unrecognized address family",
  "failed to get traddr",
  "need a transport argument",
  "need an address argument",
  "failed to open nvme-fabrics device",
  "failed to write to nvme-fabrics device",
  "failed to read from nvme-fabrics device",
  "failed to parse ctrl info",
  "invalid transport type",
  "failed to lookup subsystem name",
  "failed to lookup subsystem",
  "already connected",
  "invalid arguments/configuration",
  "hostnqn already in use",
  "invalid interface",
  "not supported",
  "connection refused",
  "address not available",
];

type Lib = ReturnType<typeof openLibnvme>;

/** The loaded libnvme, its version, and the fabrics config layout for that version. */
export class Libnvme {
  readonly #lib: Lib;
  readonly version: string;
  readonly layout: FabricsConfigLayout | undefined;
  #closed = false;

  private constructor(lib: Lib, version: string | undefined) {
    this.#lib = lib;
    this.version = version ?? detectVersion(lib);
    this.layout = FABRICS_CONFIG_LAYOUTS.get(majorMinor(this.version));
  }

  /**
   * Loads libnvme; throws LibraryNotFoundError naming every path
   * tried. `options.version` stands in for the detected version (tests use
   * it to see how an unverified version is handled).
   */
  static open(options: { version?: string } = {}): Libnvme {
    return new Libnvme(openLibnvme(), options.version);
  }

  /** A controller object, not yet connected. */
  controller(host: HostIdentity, target: ConnectTarget): NvmeController {
    return new NvmeController(this.#lib, this.layout, this.version, host, target);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lib.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** One controller: a libnvme root of its own, its host and its ctrl object. */
export class NvmeController {
  readonly #lib: Lib;
  readonly #layout: FabricsConfigLayout | undefined;
  readonly #version: string;
  readonly #log: MemoryLog;
  #root: Handle;
  #host: Handle;
  #ctrl: Handle;
  /** C strings libnvme keeps pointers to must outlive the objects holding them. */
  readonly #keepAlive: Uint8Array[] = [];
  #busy = false;

  constructor(
    lib: Lib,
    layout: FabricsConfigLayout | undefined,
    version: string,
    host: HostIdentity,
    readonly target: ConnectTarget,
  ) {
    this.#lib = lib;
    this.#layout = layout;
    this.#version = version;
    this.#log = new MemoryLog(libc());
    const s = lib.symbols;
    this.#root = s.nvme_create_root(this.#log.stream, LOG_INFO);
    if (this.#root === null) {
      this.#log.close();
      throw new ConnectError("nvme_create_root: out of memory");
    }
    this.#host = s.nvme_lookup_host(this.#root, this.#keep(host.hostnqn), this.#keep(host.hostid));
    // libnvme 1.3 takes the DH-HMAC-CHAP secret of a connect from the host
    // object: a host per controller lets each controller carry its own key.
    if (host.dhchapKey) s.nvme_host_set_dhchap_key(this.#host, this.#keep(host.dhchapKey));
    if (host.symname) s.nvme_host_set_hostsymname(this.#host, this.#keep(host.symname));
    this.#ctrl = s.nvme_create_ctrl(
      this.#root,
      this.#keep(target.subsysnqn),
      this.#keep(target.transport),
      this.#keep(target.traddr),
      this.#keep(target.hostTraddr || undefined),
      this.#keep(target.hostIface || undefined),
      this.#keep(target.trsvcid || undefined),
    );
    if (this.#ctrl === null) {
      // Read before close(), which closes the log too.
      const logged = this.#log.take();
      this.close();
      throw new ConnectError(`nvme_create_ctrl: ${logged || "invalid controller arguments"}`);
    }
  }

  /** The kernel device (`nvme3`) once connected. */
  get device(): string | undefined {
    if (this.#ctrl === null) return undefined;
    return readCString(this.#lib.symbols.nvme_ctrl_get_name(this.#ctrl)) || undefined;
  }

  /**
   * Connects through nvmf_add_ctrl on a worker thread. Resolves with the
   * device name; rejects with ConnectError carrying the kernel's reason.
   */
  async connect(options: FabricsOptions = {}): Promise<string> {
    // Checked first: libnvme dereferences the ctrl handle without a NULL check.
    if (this.#ctrl === null) throw new Error("NvmeController used after close()");
    if (this.#busy) throw new Error("NvmeController: a connect is still running");
    if (this.#layout === undefined) throw new UnverifiedLayoutError(this.#version);
    const cfg = this.#fabricsConfig(this.#layout, options);
    // libnvme tells only the well-known NQN's DCs apart by itself.
    if (options.discovery) this.#lib.symbols.nvme_ctrl_set_discovery_ctrl(this.#ctrl, true);
    if (options.dhchapCtrlKey) {
      this.#lib.symbols.nvme_ctrl_set_dhchap_key(this.#ctrl, this.#keep(options.dhchapCtrlKey));
    }
    this.#busy = true;
    let rc: number;
    try {
      rc = await this.#lib.symbols.nvmf_add_ctrl(this.#host, this.#ctrl, cfg);
    } finally {
      this.#busy = false;
    }
    if (rc !== 0) throw this.#error(rc);
    this.#log.take();
    const device = this.device;
    if (!device) throw new ConnectError("no device name after a successful connect");
    return device;
  }

  /** Frees the libnvme objects; the kernel controller is left as it is. */
  close(): void {
    if (this.#busy) throw new Error("NvmeController.close() while a connect is running");
    if (this.#root !== null) this.#lib.symbols.nvme_free_tree(this.#root);
    this.#root = this.#host = this.#ctrl = null;
    this.#log.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #fabricsConfig(layout: FabricsConfigLayout, options: FabricsOptions): Uint8Array {
    const buffer = new Uint8Array(layout.size);
    this.#lib.symbols.nvmf_default_config(buffer);
    const view = new DataView(buffer.buffer);
    storePointer(view, layout.host_traddr, this.#keep(this.target.hostTraddr || undefined));
    storePointer(view, layout.host_iface, this.#keep(this.target.hostIface || undefined));
    const ints: [keyof FabricsOptions, number][] = [
      ["queueSize", layout.queue_size],
      ["nrIoQueues", layout.nr_io_queues],
      ["reconnectDelay", layout.reconnect_delay],
      ["ctrlLossTmo", layout.ctrl_loss_tmo],
      ["fastIoFailTmo", layout.fast_io_fail_tmo],
      ["kato", layout.keep_alive_tmo],
      ["nrWriteQueues", layout.nr_write_queues],
      ["nrPollQueues", layout.nr_poll_queues],
      ["tos", layout.tos],
    ];
    for (const [field, offset] of ints) {
      const value = options[field];
      if (typeof value === "number") view.setInt32(offset, value, true);
    }
    const flags: [keyof FabricsOptions, number][] = [
      ["duplicateConnect", layout.duplicate_connect],
      ["disableSqflow", layout.disable_sqflow],
      ["hdrDigest", layout.hdr_digest],
      ["dataDigest", layout.data_digest],
    ];
    for (const [field, offset] of flags) {
      const value = options[field];
      if (typeof value === "boolean") view.setUint8(offset, value ? 1 : 0);
    }
    this.#keepAlive.push(buffer);
    return buffer;
  }

  #keep(s: string | undefined): Uint8Array | null {
    const c = cstr(s);
    if (c !== null) this.#keepAlive.push(c);
    return c;
  }

  /** The reason libnvme logged (errno is out of reach: see the module doc), or its code's. */
  #error(rc: number): ConnectError {
    const logged = this.#log.take();
    const known = ENVME_CONNECT[-rc - 1000] ?? ENVME_CONNECT[rc - 1000];
    const reason = logged || known || `libnvme returned ${rc}`;
    // "Failed to write to /dev/nvme-fabrics: Connection refused": the text names the errno.
    const failed = reason.match(/Failed to (?:open|write to|read from) \S+: ([^;]+)/)?.[1];
    const errno = failed === undefined ? undefined : errnoOfText(libc(), failed.trim());
    return new ConnectError(reason, { errno });
  }
}

/**
 * A `FILE *` over a memfd (libnvme's log of one controller), read back line
 * by line. libnvme 1.3 writes through the FILE (flushed before reading),
 * 1.13 writes to its descriptor; both append at the shared file offset.
 */
class MemoryLog {
  readonly #libc: Libc;
  readonly #fd: number;
  #consumed = 0;
  stream: Handle;

  constructor(c: Libc) {
    this.#libc = c;
    this.#fd = c.memfd_create(cstr("libnvme-log")!, MFD_CLOEXEC);
    if (this.#fd < 0) throw new ConnectError("memfd_create: cannot create libnvme's log");
    this.stream = c.fdopen(this.#fd, cstr("w")!);
    if (this.stream === null) {
      c.close(this.#fd);
      throw new ConnectError("fdopen: cannot create libnvme's log");
    }
  }

  /** What was logged since the last take(), as one line without libnvme's function prefix. */
  take(): string {
    if (this.stream === null) return "";
    this.#libc.fflush(this.stream);
    const chunks: Uint8Array[] = [];
    for (;;) {
      const chunk = new Uint8Array(4096);
      const n = Number(
        this.#libc.pread(this.#fd, chunk, BigInt(chunk.length), BigInt(this.#consumed)),
      );
      if (n <= 0) break;
      chunks.push(chunk.subarray(0, n));
      this.#consumed += n;
    }
    if (chunks.length === 0) return "";
    return libnvmeLogText(chunks.map((c) => new TextDecoder().decode(c)).join(""));
  }

  close(): void {
    if (this.stream === null) return;
    this.#libc.fclose(this.stream);
    this.stream = null;
  }
}

/**
 * What libnvme logged, as one line without its function prefixes, with
 * every DH-HMAC-CHAP key cut out: libnvme 1.3 logs the whole connect option
 * string, keys included, at LOG_ERR when it cannot parse the kernel's reply
 * ("Failed to parse ctrl info for ..."), and this text reaches stacd's log.
 */
export function libnvmeLogText(text: string): string {
  return text
    .split("\n")
    .map((line) => scrub(redactOptionString(line.replace(/^[\w]+: /, "").trim())))
    .filter((line) => line.length > 0)
    .join("; ");
}

function detectVersion(lib: Lib): string {
  const fromLibrary = lib.symbols.nvme_get_version === null
    ? undefined
    : readCString(lib.symbols.nvme_get_version(NVME_VERSION_PROJECT));
  if (fromLibrary && /^\d+\.\d+/.test(fromLibrary)) return fromLibrary;
  // Older builds have no nvme_get_version: the file name of the mapped
  // library carries the version (libnvme.so.1.3.0).
  const maps = Deno.readTextFileSync("/proc/self/maps");
  const match = maps.match(/libnvme\.so\.1\.(\d+)\.(\d+)/);
  return match ? `1.${match[1]}.${match[2]}` : "unknown";
}

function majorMinor(version: string): string {
  return version.split(".").slice(0, 2).join(".");
}
