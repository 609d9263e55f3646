/**
 * The connection options that both [Global] and a `controller =` entry may
 * set, and the value checks they share, so that an override is validated
 * exactly like the global option it overrides.
 */

import type { FabricsOptions } from "../core/connect_request.ts";

/**
 * The connection parameters a config file may set: the fabrics options
 * stacd.conf documents (an absent field lets the kernel decide).
 */
export type ConnectionOptions = Pick<
  FabricsOptions,
  | "hdrDigest"
  | "dataDigest"
  | "kato"
  | "nrIoQueues"
  | "nrWriteQueues"
  | "nrPollQueues"
  | "queueSize"
  | "reconnectDelay"
  | "ctrlLossTmo"
  | "disableSqflow"
>;

/** How to read one option: the parser gives undefined for an invalid value. */
export interface OptionSpec<T> {
  parse(text: string): T | undefined;
  /** What a valid value looks like, for the warning. */
  expected: string;
}

/** The kernel parses these options as a C int: anything larger it refuses. */
const INT_MAX = 2147483647;

/** `true` or `false` in any case: upstream accepts nothing else (no yes/1/on). */
export const booleanSpec: OptionSpec<boolean> = {
  parse(text) {
    const lower = text.toLowerCase();
    return lower === "true" ? true : lower === "false" ? false : undefined;
  },
  expected: "true or false",
};

/** A decimal integer in [min, max] (Python's int() also takes a sign). */
export function integerSpec(min: number, max = INT_MAX): OptionSpec<number> {
  return {
    parse(text) {
      if (!/^[+-]?\d{1,12}$/.test(text)) return undefined;
      const value = Number(text);
      return value >= min && value <= max ? value : undefined;
    },
    expected: max === INT_MAX ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
  };
}

/** One connection option: its name in the file, its field, its check. */
export interface ConnectionOptionSpec extends OptionSpec<boolean | number> {
  name: string;
  field: keyof ConnectionOptions;
}

function spec(
  name: string,
  field: keyof ConnectionOptions,
  check: OptionSpec<boolean> | OptionSpec<number>,
): ConnectionOptionSpec {
  return { name, field, parse: (text) => check.parse(text), expected: check.expected };
}

/** Every connection option of docs/design.md#global-options, keyed by its name in the file. */
export const CONNECTION_OPTIONS: ReadonlyMap<string, ConnectionOptionSpec> = new Map(
  [
    spec("hdr-digest", "hdrDigest", booleanSpec),
    spec("data-digest", "dataDigest", booleanSpec),
    spec("kato", "kato", integerSpec(0)),
    spec("nr-io-queues", "nrIoQueues", integerSpec(1)),
    spec("nr-write-queues", "nrWriteQueues", integerSpec(1)),
    spec("nr-poll-queues", "nrPollQueues", integerSpec(1)),
    spec("queue-size", "queueSize", integerSpec(16, 1024)),
    spec("reconnect-delay", "reconnectDelay", integerSpec(1)),
    // -1 means "retry forever"; any other negative value is a typo.
    { ...spec("ctrl-loss-tmo", "ctrlLossTmo", integerSpec(-1)), expected: "-1 or an integer >= 0" },
    spec("disable-sqflow", "disableSqflow", booleanSpec),
  ].map((s) => [s.name, s]),
);

/** Sets `options[spec.field]`; one place for the assignment TypeScript cannot type per field. */
export function setConnectionOption(
  options: ConnectionOptions,
  spec: ConnectionOptionSpec,
  value: boolean | number,
): void {
  (options as Record<string, boolean | number>)[spec.field] = value;
}
