/**
 * Output contract of every CLI command that measures something (eval, bench, run):
 *
 *   1. a human-readable table (aligned columns, optional title line), then
 *   2. as the VERY LAST line of stdout, one JSON object with the metrics,
 *      on a single line, followed by a newline.
 *
 * Scripts read the result with `npm run cli -- … | tail -n 1 | jq`. Nothing may
 * be printed to stdout after the JSON line; diagnostics go to stderr.
 */

export type Cell = string | number | boolean | null;

export interface Column {
  key: string;
  /** Header text (defaults to key). */
  label?: string;
  /** Digits after the decimal point for numbers (default: as is). */
  digits?: number;
  /** Numbers in exponential notation with this many fraction digits (for tiny errors). */
  exponentDigits?: number;
}

export type Row = Record<string, Cell>;

export interface Report {
  title?: string;
  columns: Column[];
  rows: Row[];
  metrics: Record<string, unknown>;
}

function cellText(value: Cell, column: Column): string {
  if (value === null) return '–';
  if (typeof value !== 'number' || !Number.isFinite(value)) return String(value);
  if (column.exponentDigits !== undefined) return value.toExponential(column.exponentDigits);
  return column.digits === undefined ? String(value) : value.toFixed(column.digits);
}

/** Columns padded to their widest cell; numbers right-aligned, text left-aligned. */
export function formatTable(columns: Column[], rows: Row[]): string {
  const header = columns.map((c) => c.label ?? c.key);
  const body = rows.map((r) => columns.map((c) => cellText(r[c.key] ?? null, c)));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i].length)));
  const numeric = columns.map((c) => rows.length > 0 && rows.every((r) => typeof r[c.key] === 'number' || r[c.key] === null));
  const line = (cells: string[]) =>
    cells
      .map((s, i) => (numeric[i] ? s.padStart(widths[i]) : s.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** Table, blank line, then the metrics JSON as the last line. */
export function formatReport(report: Report): string {
  const parts = [];
  if (report.title) parts.push(report.title);
  parts.push(formatTable(report.columns, report.rows), '', JSON.stringify(report.metrics));
  return parts.join('\n') + '\n';
}

export function printReport(report: Report, write: (s: string) => void = (s) => process.stdout.write(s)): void {
  write(formatReport(report));
}

/** The metrics of a command's stdout (its last non-empty line). */
export function parseMetricsLine(stdout: string): Record<string, unknown> {
  const last = stdout.trimEnd().split('\n').pop() ?? '';
  return JSON.parse(last) as Record<string, unknown>;
}
