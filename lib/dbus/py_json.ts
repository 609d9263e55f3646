/**
 * JSON as Python's json.dumps() writes it by default (", " and ": "
 * separators, non-ASCII escaped): what upstream's stafd returns from
 * get_all_log_pages and what scripts written against it may compare.
 */
export function pyJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pyJson).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const items = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${items.map(([k, v]) => `${pyString(k)}: ${pyJson(v)}`).join(", ")}}`;
  }
  return typeof value === "string" ? pyString(value) : JSON.stringify(value ?? null);
}

function pyString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
