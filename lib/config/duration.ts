/**
 * Time spans as stafd.conf's zeroconf-connections-persistence takes them
 * (upstream reads them with timeparse): a number of seconds ("3600", "-1"),
 * or days, hours, minutes and seconds in that order, each optional, with
 * or without spaces and separators: "72hours", "3 days 5 hours",
 * "1h, 30m", "90 secs". Clock forms ("1:30:00") are not taken.
 */

const SPAN = new RegExp(
  "^" + [
    String.raw`(?:(?<days>\d+(?:\.\d+)?)\s*(?:d|dys?|days?)\s*[,/]?\s*)?`,
    String.raw`(?:(?<hours>\d+(?:\.\d+)?)\s*(?:h|hrs?|hours?)\s*[,/]?\s*)?`,
    String.raw`(?:(?<mins>\d+(?:\.\d+)?)\s*(?:m|mins?|minutes?)\s*[,/]?\s*)?`,
    String.raw`(?:(?<secs>\d+(?:\.\d+)?)\s*(?:s|secs?|seconds?))?`,
  ].join("") + "$",
  "i",
);
const SECONDS = { days: 86400, hours: 3600, mins: 60, secs: 1 } as const;

/** Seconds (rounded down), or undefined when `text` is no time span. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^[+-]?\d+$/.test(trimmed)) return Number(trimmed);
  const negative = trimmed.startsWith("-");
  const match = SPAN.exec(trimmed.replace(/^[+-]\s*/, ""));
  const groups = match?.groups;
  if (!groups || Object.values(groups).every((v) => v === undefined)) return undefined;
  let total = 0;
  for (const [unit, factor] of Object.entries(SECONDS)) {
    const value = groups[unit];
    if (value !== undefined) total += Number(value) * factor;
  }
  return Math.floor(negative ? -total : total);
}
