/**
 * Two dataset versions compared from their stored profiles alone (no data read): schema changes, per-column
 * statistics side by side, PSI with the test validation and monitoring use, and equal-width histograms of both
 * samples over a shared range.
 */
import { categoricalPsi, psi } from '../quality/drift';
import type { ColumnProfile, ColumnType } from './profile';

export type SchemaChange =
  | { change: 'removed'; column: string; type: ColumnType }
  | { change: 'added'; column: string; type: ColumnType }
  | { change: 'type'; column: string; from: ColumnType; to: ColumnType };

export type ColumnStatistics = Pick<ColumnProfile, 'count' | 'nulls' | 'distinct' | 'mean' | 'std' | 'min' | 'max'>;

export interface ColumnDiff {
  column: string;
  a: ColumnStatistics;
  b: ColumnStatistics;
  /**
   * PSI of b against a: numeric columns from a's bins and b's sample, categorical ones from the top values; absent when
   * neither applies.
   */
  psi?: number;
  /** Counts per equal-width bin of each sample over [min(a.min, b.min), max(a.max, b.max)]; numeric columns only. */
  shape?: { a: number[]; b: number[] };
}

export interface ProfileDiff {
  schemaChanges: SchemaChange[];
  /** The columns both versions have, in a's order. */
  columns: ColumnDiff[];
}

/** @default 12 bins per histogram */
export function diffProfiles(a: ColumnProfile[], b: ColumnProfile[], shapeBins = 12): ProfileDiff {
  const pa = new Map(a.map((p) => [p.name, p]));
  const pb = new Map(b.map((p) => [p.name, p]));
  const schemaChanges: SchemaChange[] = [];
  for (const [name, p] of pa) {
    const q = pb.get(name);
    if (!q) schemaChanges.push({ change: 'removed', column: name, type: p.type });
    else if (q.type !== p.type) schemaChanges.push({ change: 'type', column: name, from: p.type, to: q.type });
  }
  for (const [name, q] of pb) if (!pa.has(name)) schemaChanges.push({ change: 'added', column: name, type: q.type });

  const columns: ColumnDiff[] = [];
  for (const [name, p] of pa) {
    const q = pb.get(name);
    if (!q) continue;
    const diff: ColumnDiff = { column: name, a: statistics(p), b: statistics(q) };
    if (p.bins && q.sample?.length) {
      diff.psi = psi(p.bins, q.sample);
      const lo = Math.min(p.min!, q.min!),
        hi = Math.max(p.max!, q.max!);
      diff.shape = {
        a: equalWidthCounts(p.sample ?? [], lo, hi, shapeBins),
        b: equalWidthCounts(q.sample, lo, hi, shapeBins),
      };
    } else if (p.topValues && q.topValues) {
      // b's values beyond its top list go to the "other" bucket, like a's.
      const current = new Map(q.topValues.map((t) => [t.value, t.count]));
      current.set('\u0000other', q.count - q.nulls - q.topValues.reduce((sum, t) => sum + t.count, 0));
      diff.psi = categoricalPsi(p.topValues, Math.max(1, p.count - p.nulls), current);
    }
    columns.push(diff);
  }
  return { schemaChanges, columns };
}

const statistics = (p: ColumnProfile): ColumnStatistics => ({
  count: p.count,
  nulls: p.nulls,
  distinct: p.distinct,
  mean: p.mean,
  std: p.std,
  min: p.min,
  max: p.max,
});

/**
 * Counts of `values` in `bins` equal-width bins on [lo, hi], outliers clamped to the end bins; [] when there are no
 * values.
 */
export function equalWidthCounts(values: ArrayLike<number>, lo: number, hi: number, bins: number): number[] {
  if (!values.length) return [];
  const counts = new Array<number>(bins).fill(0);
  const width = hi > lo ? (hi - lo) / bins : 1;
  for (let i = 0; i < values.length; i++)
    counts[Math.min(bins - 1, Math.max(0, Math.floor((values[i]! - lo) / width)))]!++;
  return counts;
}
