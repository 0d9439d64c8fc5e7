/**
 * One-pass column profiles in bounded memory: counts, nulls, distinct (exact, then HyperLogLog), moments, quantiles
 * and histogram from a reservoir sample, decile bins and a small sample for drift tests, top values.
 * Stored with each dataset version; it is the reference monitors and distribution checks compare against.
 */
import { ArrayRecord, type RecordFields } from '../formats/csv';
import { binReference } from '../quality/drift';
import { isNonFiniteToken, parseBoolean } from '../formats/numbers';
import { seededRandom } from '../random';
import { hashKey, hashNumber, HyperLogLog, Reservoir } from './sketch';

interface StringEntry {
  text: string;
  count: number;
  nonFinite: 0 | 1;
  boolean: 0 | 1;
}
export { isNullToken, parseBoolean, parseNumber } from '../formats/numbers';

export type ColumnType = 'number' | 'integer' | 'boolean' | 'string';

export interface ColumnProfile {
  name: string;
  type: ColumnType;
  count: number;
  nulls: number;
  /** Exact while `distinctApprox` is false; a HyperLogLog estimate (±2 %) past the exact bound. */
  distinct: number;
  distinctApprox: boolean;
  /** NaN / Infinity spellings in a numeric column: counted, never part of the statistics. */
  nonFinite?: number;
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
  quantiles?: Record<'p01' | 'p05' | 'p10' | 'p25' | 'p50' | 'p75' | 'p90' | 'p95' | 'p99', number>;
  histogram?: { edges: number[]; counts: number[] };
  /** Equal-mass bins of the values: the reference for PSI. */
  bins?: { edges: number[]; shares: number[] };
  /** A uniform sample of the values (at most `SAMPLE_SIZE`): the reference for KS tests. */
  sample?: number[];
  /** Most frequent values with counts: the reference for categorical drift. Also kept for low-cardinality numbers. */
  topValues?: { value: string; count: number }[];
}

const EXACT_DISTINCT_STRINGS = 10_000;
const EXACT_DISTINCT_NUMBERS = 1_000;
const RESERVOIR_SIZE = 16_384;
const SAMPLE_SIZE = 500;
const HISTOGRAM_BINS = 10;
const TOP_VALUES = 20;

class ColumnAccumulator {
  count = 0;
  nulls = 0;
  numeric = 0;
  integers = 0;
  booleans = 0;
  nonFinite = 0;
  min = Infinity;
  max = -Infinity;
  mean = 0;
  m2 = 0;
  numberCounts: Map<number, number> | null = new Map();
  /** Keyed by the field's 52-bit hash, so a repeated value is counted without decoding it again. */
  stringCounts: Map<number, StringEntry> | null = new Map();
  readonly hll = new HyperLogLog();
  readonly reservoir: Reservoir;

  constructor(
    readonly name: string,
    random: () => number,
  ) {
    this.reservoir = new Reservoir(RESERVOIR_SIZE, random);
  }

  add(record: RecordFields, i: number): void {
    this.count++;
    if (record.isNull(i)) {
      this.nulls++;
      return;
    }
    const value = record.number(i);
    if (value === value) {
      this.numeric++;
      if (Number.isInteger(value)) this.integers++;
      if (value < this.min) this.min = value;
      if (value > this.max) this.max = value;
      const delta = value - this.mean;
      this.mean += delta / this.numeric;
      this.m2 += delta * (value - this.mean);
      this.reservoir.add(value);
      const counts = this.numberCounts;
      if (counts !== null) {
        counts.set(value, (counts.get(value) ?? 0) + 1);
        if (counts.size > EXACT_DISTINCT_NUMBERS) {
          for (const key of counts.keys()) this.hll.add(hashNumber(key));
          this.numberCounts = null;
        }
      } else this.hll.add(hashNumber(value));
      return;
    }
    const key = record.key(i);
    const counts = this.stringCounts;
    let entry = counts?.get(key);
    if (entry === undefined) {
      const text = record.text(i);
      entry = {
        text,
        count: 0,
        nonFinite: isNonFiniteToken(text) ? 1 : 0,
        boolean: parseBoolean(text) !== undefined ? 1 : 0,
      };
      if (counts !== null) {
        counts.set(key, entry);
        if (counts.size > EXACT_DISTINCT_STRINGS) {
          for (const k of counts.keys()) this.hll.add(hashKey(k));
          this.stringCounts = null;
        }
      }
    }
    entry.count++;
    this.nonFinite += entry.nonFinite;
    this.booleans += entry.boolean;
    if (this.stringCounts === null) this.hll.add(hashKey(key));
  }

  finish(): ColumnProfile {
    const present = this.count - this.nulls;
    const numericLike = present > 0 && this.numeric > 0 && this.numeric + this.nonFinite === present;
    const type: ColumnType = numericLike
      ? this.integers === this.numeric && this.nonFinite === 0
        ? 'integer'
        : 'number'
      : present > 0 && this.booleans === present
        ? 'boolean'
        : 'string';
    const exact = this.numberCounts !== null && this.stringCounts !== null;
    const profile: ColumnProfile = {
      name: this.name,
      type,
      count: this.count,
      nulls: this.nulls,
      distinct: exact ? this.numberCounts!.size + this.stringCounts!.size : this.hll.estimate(),
      distinctApprox: !exact,
    };
    if (type === 'number' || type === 'integer') {
      const sorted = this.reservoir.values.slice().sort((a, b) => a - b);
      if (this.nonFinite) profile.nonFinite = this.nonFinite;
      profile.min = this.min;
      profile.max = this.max;
      profile.mean = this.mean;
      profile.std = this.numeric > 1 ? Math.sqrt(this.m2 / (this.numeric - 1)) : 0;
      const q = (p: number) => quantileSorted(sorted, p);
      profile.quantiles = {
        p01: q(0.01),
        p05: q(0.05),
        p10: q(0.1),
        p25: q(0.25),
        p50: q(0.5),
        p75: q(0.75),
        p90: q(0.9),
        p95: q(0.95),
        p99: q(0.99),
      };
      profile.histogram = histogram(sorted, this.min, this.max, HISTOGRAM_BINS, this.numeric);
      const bins = binReference(sorted, 10);
      profile.bins = { edges: bins.edges, shares: bins.shares };
      const step = sorted.length / SAMPLE_SIZE;
      profile.sample =
        step <= 1 ? sorted : Array.from({ length: SAMPLE_SIZE }, (_, k) => sorted[Math.floor(k * step)]!);
      if (this.numberCounts) profile.topValues = topOf(this.numberCounts, (v) => String(v));
    } else {
      const merged = new Map<string, number>([...(this.stringCounts?.values() ?? [])].map((e) => [e.text, e.count]));
      for (const [value, count] of this.numberCounts ?? [])
        merged.set(String(value), (merged.get(String(value)) ?? 0) + count);
      profile.topValues = topOf(merged, (v) => v);
    }
    return profile;
  }
}

function topOf<K>(counts: Map<K, number>, label: (key: K) => string): { value: string; count: number }[] {
  return [...counts.entries()]
    .map(([key, count]) => ({ value: label(key), count }))
    .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0))
    .slice(0, TOP_VALUES);
}

/**
 * Builds profiles record by record; `finish` once at the end. Deterministic for the same rows: each column samples
 * with its own seeded generator, so profiling columns in separate threads gives the very same result.
 */
export class ProfileBuilder {
  private readonly columns: ColumnAccumulator[];
  private readonly positions: number[];
  private readonly strings = new ArrayRecord([]);

  /** `positions[i]` is where column `names[i]` sits in each record (default: i) — a builder may take a subset. */
  constructor(names: string[], seed = 1, positions?: number[]) {
    this.positions = positions ?? names.map((_, i) => i);
    this.columns = names.map((name, i) => new ColumnAccumulator(name, seededRandom(seed * 7919 + this.positions[i]!)));
  }

  add(record: RecordFields): void {
    const columns = this.columns,
      positions = this.positions;
    for (let i = 0; i < columns.length; i++) columns[i]!.add(record, positions[i]!);
  }

  /** Convenience for string rows. */
  addRow(fields: string[]): void {
    this.strings.values = fields;
    this.add(this.strings);
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
export function histogram(
  sorted: number[],
  min: number,
  max: number,
  bins: number,
  total: number,
): { edges: number[]; counts: number[] } {
  const width = max > min ? (max - min) / bins : 1;
  const edges = Array.from({ length: bins + 1 }, (_, i) => min + i * width);
  const counts = new Array<number>(bins).fill(0);
  for (const value of sorted) counts[Math.min(bins - 1, Math.max(0, Math.floor((value - min) / width)))]!++;
  const scale = sorted.length > 0 ? total / sorted.length : 0;
  return { edges, counts: counts.map((c) => Math.round(c * scale)) };
}
