/**
 * stacd's log: one line per event an operator cares about, INFO by default,
 * DEBUG when tron is on. Lines go to one sink (stdout, or syslog with -s),
 * once. Under systemd (JOURNAL_STREAM set) each line starts with the
 * sd-daemon(3) priority prefix so the journal keeps its level.
 */

import { sendDatagram } from "./unix_datagram.ts";

export type Level = "error" | "warning" | "info" | "debug";

const PRIORITY: Record<Level, number> = { error: 3, warning: 4, info: 6, debug: 7 };
const LABEL: Record<Level, string> = {
  error: "ERROR",
  warning: "WARNING",
  info: "INFO",
  debug: "DEBUG",
};

/** Where formatted lines end up. */
export interface LogSink {
  write(priority: number, line: string): void;
}

export interface Logger {
  error(message: string): void;
  warning(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  /** Debug logging on (tron) or off. */
  tron: boolean;
}

/** Writes to stdout; with `journal` true each line carries its `<N>` priority prefix. */
export function stdoutSink(journal = Deno.env.get("JOURNAL_STREAM") !== undefined): LogSink {
  const encoder = new TextEncoder();
  return {
    write(priority, line) {
      const text = journal ? `<${priority}>${line}\n` : `${line}\n`;
      try {
        Deno.stdout.writeSync(encoder.encode(text));
      } catch {
        // A closed stdout (EPIPE) must not take the daemon down.
      }
    },
  };
}

export function createLogger(
  sink: LogSink,
  options: { tron?: boolean; timestamps?: boolean } = {},
): Logger {
  const log = (level: Level, message: string) => {
    if (level === "debug" && !logger.tron) return;
    // One event, one line: a multi-line message would split in the journal.
    const flat = message.replace(/\s*\n\s*/g, " ");
    const prefix = options.timestamps ? `${new Date().toISOString()} ` : "";
    sink.write(PRIORITY[level], `${prefix}${LABEL[level]}: ${flat}`);
  };
  const logger: Logger = {
    tron: options.tron ?? false,
    error: (m) => log("error", m),
    warning: (m) => log("warning", m),
    info: (m) => log("info", m),
    debug: (m) => log("debug", m),
  };
  return logger;
}

/**
 * syslog(3)'s wire form on /dev/log (`<PRI>stacd[PID]: message`, facility
 * daemon), one datagram per line: what `-s` uses where stdout is not the
 * journal. Falls back to stdout when /dev/log cannot be reached.
 */
export function syslogSink(
  ident = "stacd",
  devLog = "/dev/log",
  send: (path: string, payload: Uint8Array<ArrayBuffer>) => boolean = sendDatagram,
): LogSink {
  const FACILITY_DAEMON = 3 << 3;
  const fallback = stdoutSink(false);
  const encoder = new TextEncoder();
  return {
    write(priority, line) {
      const payload = encoder.encode(
        `<${FACILITY_DAEMON | priority}>${ident}[${Deno.pid}]: ${line}`,
      );
      if (!send(devLog, payload)) fallback.write(priority, line);
    },
  };
}
