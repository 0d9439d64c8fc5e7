/** One-pass column profiles (counts, nulls, moments, quantiles, histogram, top values): the monitoring reference. */
import { seededRandom } from './random';

export type ColumnType = 'number' | 'integer' | 'boolean' | 'string';

export interface ColumnProfile {
  name: string;
  type: ColumnType;
  count: number;
  nulls: number;
  /** Exact up to `DISTINCT_CAP`, then a lower bound (`distinctCapped`). */
  distinct: number;
  distinctCapped: boolean;
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
  quantiles?: Record<'p01' | 'p05' | 'p25' | 'p50' | 'p75' | 'p95' | 'p99', number>;
  histogram?: { edges: number[]; counts: number[] };
  topValues?: { value: string; count: number }[];
}

const NULL_TOKENS = new Set(['', 'NA', 'N/A', 'null', 'NULL']);
const DISTINCT_CAP = 10_000;
const RESERVOIR_SIZE = 4_096;
const HISTOGRAM_BINS = 10;

/** True for the tokens Flywheel reads as a missing value. */
export function isNullToken(raw: string): boolean {
  return NULL_TOKENS.has(raw);
}

/** Parses a numeric cell strictly: finite decimal/scientific numbers only (no NaN, Infinity, hex, blanks). */
export function parseNumber(raw: string): number | undefined {
  if (!/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(raw)) return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

export function parseBoolean(raw: string): boolean | undefined {
  const lower = raw.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  return undefined;
}

class ColumnAccumulator {
  count = 0;
  nulls = 0;
  numeric = 0;
  integers = 0;
  booleans = 0;
  min = Infinity;
  max = -Infinity;
  mean = 0;
  m2 = 0;
  readonly distinct = new Map<string, number>();
  distinctCapped = false;
  readonly reservoir: number[] = [];
  seen = 0;

  constructor(readonly name: string, private readonly random: () => number) {}

  add(raw: string): void {
    this.count++;
    if (isNullToken(raw)) {
      this.nulls++;
      return;
    }
    const seen = this.distinct.get(raw);
    if (seen !== undefined) this.distinct.set(raw, seen + 1);
    else if (this.distinct.size < DISTINCT_CAP) this.distinct.set(raw, 1);
    else this.distinctCapped = true;

    if (parseBoolean(raw) !== undefined) this.booleans++;
    const value = parseNumber(raw);
    if (value === undefined) return;
    this.numeric++;
    if (Number.isInteger(value)) this.integers++;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    const delta = value - this.mean;
    this.mean += delta / this.numeric;
    this.m2 += delta * (value - this.mean);
    this.seen++;
    if (this.reservoir.length < RESERVOIR_SIZE) this.reservoir.push(value);
    else {
      const slot = Math.floor(this.random() * this.seen);
      if (slot < RESERVOIR_SIZE) this.reservoir[slot] = value;
    }
  }

  finish(): ColumnProfile {
    const present = this.count - this.nulls;
    const type: ColumnType =
      present > 0 && this.numeric === present
        ? this.integers === present ? 'integer' : 'number'
        : present > 0 && this.booleans === present ? 'boolean' : 'string';
    const profile: ColumnProfile = {
      name: this.name,
      type,
      count: this.count,
      nulls: this.nulls,
      distinct: this.distinct.size,
      distinctCapped: this.distinctCapped,
    };
    if ((type === 'number' || type === 'integer') && this.numeric > 0) {
      const sorted = [...this.reservoir].sort((a, b) => a - b);
      profile.min = this.min;
      profile.max = this.max;
      profile.mean = this.mean;
      profile.std = this.numeric > 1 ? Math.sqrt(this.m2 / (this.numeric - 1)) : 0;
      profile.quantiles = {
        p01: quantileSorted(sorted, 0.01),
        p05: quantileSorted(sorted, 0.05),
        p25: quantileSorted(sorted, 0.25),
        p50: quantileSorted(sorted, 0.5),
        p75: quantileSorted(sorted, 0.75),
        p95: quantileSorted(sorted, 0.95),
        p99: quantileSorted(sorted, 0.99),
      };
      profile.histogram = histogram(sorted, this.min, this.max, HISTOGRAM_BINS, this.numeric);
    } else {
      profile.topValues = [...this.distinct.entries()]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 20)
        .map(([value, count]) => ({ value, count }));
    }
    return profile;
  }
}

/** Builds profiles row by row; `finish` once at the end. */
export class ProfileBuilder {
  private readonly columns: ColumnAccumulator[];

  constructor(names: string[], seed = 1) {
    const random = seededRandom(seed);
    this.columns = names.map((name) => new ColumnAccumulator(name, random));
  }

  addRow(fields: string[]): void {
    for (let i = 0; i < this.columns.length; i++) this.columns[i]!.add(fields[i] ?? '');
  }

  finish(): ColumnProfile[] {
    return this.columns.map((column) => column.finish());
  }
}

/** Linear-interpolated quantile of an ascending array. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.min(lower + 1, sorted.length - 1);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

/** Equal-width histogram between min and max, scaled from a sample to the full count. */
export function histogram(sorted: number[], min: number, max: number, bins: number, total: number): { edges: number[]; counts: number[] } {
  const width = max > min ? (max - min) / bins : 1;
  const edges = Array.from({ length: bins + 1 }, (_, i) => min + i * width);
  const counts = new Array<number>(bins).fill(0);
  for (const value of sorted) counts[Math.min(bins - 1, Math.max(0, Math.floor((value - min) / width)))]!++;
  const scale = sorted.length > 0 ? total / sorted.length : 0;
  return { edges, counts: counts.map((c) => Math.round(c * scale)) };
}
