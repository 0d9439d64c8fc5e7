/** What the CLI commands share: printing, tables, terminal charts, and a short-lived database connection. */
import { equalWidthCounts } from '../ml/profiling/profileDiff';
import { closeDb, connectDb, type Db } from '../storage/db';
import { loadConfig } from '../config/env';

export type Say = (line: string) => void;

/** A time (a Date, or an ISO string as the API sends it) as `YYYY-MM-DD HH:MM:SS` (UTC); '-' when there is none. */
export function when(date: Date | string | null): string {
  if (!date) return '-';
  return (typeof date === 'string' ? new Date(date).toISOString() : date.toISOString()).slice(0, 19).replace('T', ' ');
}

/** One connection for one command, closed whatever happens. */
export async function withDb<T>(work: (db: Db) => Promise<T>): Promise<T> {
  const db = connectDb(loadConfig().databaseUrl, 1);
  try {
    return await work(db);
  } finally {
    await closeDb(db);
  }
}

/** Left-aligned columns, the first row as the header. */
export function table(rows: string[][], say: Say): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  for (const row of rows)
    say(
      `  ${row
        .map((cell, c) => (cell ?? '').padEnd(widths[c]!))
        .join('  ')
        .trimEnd()}`,
    );
}

const BARS = '▁▂▃▄▅▆▇█';

/** A terminal histogram: values binned on [lo, hi], each bin a bar as high as its count. */
export function sparkline(values: number[], lo: number, hi: number, bins = 16): string {
  return histogramBars(equalWidthCounts(values, lo, hi, bins));
}

/** Bin counts as bars, the fullest bin the highest, an empty bin a space. */
export function histogramBars(counts: number[]): string {
  if (!counts.length) return '';
  const top = Math.max(...counts);
  return counts
    .map((c) => (c === 0 ? ' ' : BARS[Math.min(BARS.length - 1, Math.floor((c / top) * (BARS.length - 1) + 0.5))]))
    .join('');
}

/** A series as one row of bars: each value's height between the series' min and max. */
export function barLine(values: number[]): string {
  const lo = Math.min(...values),
    hi = Math.max(...values);
  return values.map((v) => BARS[hi > lo ? Math.round(((v - lo) / (hi - lo)) * (BARS.length - 1)) : 0]).join('');
}
