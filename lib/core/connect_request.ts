/**
 * What a fabrics connect needs, independent of how it is issued (libnvme's
 * nvmf_add_ctrl or the option string written to /dev/nvme-fabrics).
 */

/** Where to connect: the kernel's view of one I/O (or discovery) controller. */
export interface ConnectTarget {
  transport: string;
  traddr: string;
  trsvcid: string;
  subsysnqn: string;
  hostTraddr?: string;
  hostIface?: string;
}

/** Who connects. The DH-HMAC-CHAP key is the host's (or the controller's override). */
export interface HostIdentity {
  hostnqn: string;
  hostid: string;
  dhchapKey?: string;
  symname?: string;
}

/** Connection parameters; an absent field lets the kernel decide. */
export interface FabricsOptions {
  hdrDigest?: boolean;
  dataDigest?: boolean;
  kato?: number;
  nrIoQueues?: number;
  nrWriteQueues?: number;
  nrPollQueues?: number;
  queueSize?: number;
  reconnectDelay?: number;
  ctrlLossTmo?: number;
  fastIoFailTmo?: number;
  tos?: number;
  disableSqflow?: boolean;
  duplicateConnect?: boolean;
  /** Controller key for bidirectional DH-HMAC-CHAP. */
  dhchapCtrlKey?: string;
  /**
   * A discovery controller: with a unique (TP8013) NQN the kernel must be
   * told (`discovery`); with the well-known NQN it knows by itself.
   */
  discovery?: boolean;
}

export interface ConnectRequest {
  target: ConnectTarget;
  host: HostIdentity;
  options?: FabricsOptions;
}

/** The subsystem NQN every discovery controller answers to (NVMe Base Specification). */
export const DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery";

const INT_OPTIONS = [
  ["nrIoQueues", "nr_io_queues"],
  ["nrWriteQueues", "nr_write_queues"],
  ["nrPollQueues", "nr_poll_queues"],
  ["queueSize", "queue_size"],
  ["kato", "keep_alive_tmo"],
  ["reconnectDelay", "reconnect_delay"],
  ["ctrlLossTmo", "ctrl_loss_tmo"],
  ["fastIoFailTmo", "fast_io_fail_tmo"],
  ["tos", "tos"],
] as const;

const FLAG_OPTIONS = [
  ["duplicateConnect", "duplicate_connect"],
  ["disableSqflow", "disable_sqflow"],
  ["hdrDigest", "hdr_digest"],
  ["dataDigest", "data_digest"],
] as const;

/**
 * Why `value` cannot go into the kernel's comma-separated `key=value`
 * connect options (libnvme writes the same string from its fields), or
 * undefined when it can: a comma or whitespace would end it and could
 * smuggle in an option of its own (`nqn.x,duplicate_connect`), and "=" and
 * control characters belong in no NQN, address, port or interface name.
 */
export function optionValueProblem(value: string): string | undefined {
  if (value.includes(",")) return 'contains ","';
  if (value.includes("=")) return 'contains "="';
  if (/\s/.test(value)) return "contains whitespace";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) return "contains a control character";
  return undefined;
}

/**
 * The first field of `request` that cannot go into the option string, and
 * why (see {@linkcode optionValueProblem}); undefined when all can. The
 * keys are checked by their own format (their base64 may end in "=").
 */
export function unsafeRequestField(
  request: ConnectRequest,
): { field: string; problem: string } | undefined {
  const { target, host } = request;
  const fields: [string, string | undefined][] = [
    ["nqn", target.subsysnqn],
    ["transport", target.transport],
    ["traddr", target.traddr],
    ["trsvcid", target.trsvcid],
    ["host-traddr", target.hostTraddr],
    ["host-iface", target.hostIface],
    ["host-nqn", host.hostnqn],
    ["hostid", host.hostid],
  ];
  for (const [name, value] of fields) {
    const problem = value ? optionValueProblem(value) : undefined;
    if (problem !== undefined) return { field: name, problem };
  }
  return undefined;
}

/**
 * The option string the kernel's /dev/nvme-fabrics accepts, in the order
 * libnvme writes it. It contains the DH-HMAC-CHAP keys when set: never log
 * it without {@link redactOptionString}.
 */
export function kernelOptionString({ target, host, options = {} }: ConnectRequest): string {
  const parts: string[] = [
    `nqn=${target.subsysnqn}`,
    `transport=${target.transport}`,
    `traddr=${target.traddr}`,
  ];
  if (target.hostTraddr) parts.push(`host_traddr=${target.hostTraddr}`);
  if (target.hostIface) parts.push(`host_iface=${target.hostIface}`);
  if (target.trsvcid) parts.push(`trsvcid=${target.trsvcid}`);
  parts.push(`hostnqn=${host.hostnqn}`);
  // An empty `hostid=` is refused by the kernel (EINVAL); left out, the kernel picks one.
  if (host.hostid) parts.push(`hostid=${host.hostid}`);
  const discovery = target.subsysnqn === DISCOVERY_NQN || options.discovery === true;
  if (discovery && target.subsysnqn !== DISCOVERY_NQN) parts.push("discovery");
  if (!discovery && host.dhchapKey) parts.push(`dhchap_secret=${host.dhchapKey}`);
  if (!discovery && options.dhchapCtrlKey) {
    parts.push(`dhchap_ctrl_secret=${options.dhchapCtrlKey}`);
  }
  for (const [field, name] of INT_OPTIONS) {
    const value = options[field];
    if (value !== undefined) parts.push(`${name}=${value}`);
  }
  for (const [field, name] of FLAG_OPTIONS) {
    if (options[field]) parts.push(name);
  }
  return parts.join(",");
}

/** The option string with every secret replaced, safe for logs. */
export function redactOptionString(options: string): string {
  return options.replace(/(dhchap_(?:ctrl_)?secret)=[^,]*/g, "$1=<redacted>");
}

/** Parses the kernel's answer to a connect: `instance=N,cntlid=M`. */
export function parseConnectReply(reply: string): { instance: number; cntlid: number } {
  const fields = new Map(
    reply.trim().split(",").map((kv) => kv.split("=", 2) as [string, string | undefined]),
  );
  const instance = Number(fields.get("instance"));
  const cntlid = Number(fields.get("cntlid"));
  if (!Number.isInteger(instance) || instance < 0) {
    throw new SyntaxError(`Unexpected reply from /dev/nvme-fabrics: "${reply.trim()}"`);
  }
  return { instance, cntlid: Number.isInteger(cntlid) ? cntlid : -1 };
}
