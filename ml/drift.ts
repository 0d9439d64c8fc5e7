/** Distribution-shift tests shared by validation and monitoring; each is a pure function over numbers. */
import { sortFloat64 } from './sort';

export interface BinnedReference {
  /** Ascending bin edges; the outer bins extend to ±∞. */
  edges: number[];
  /** Share of reference values per bin (sums to 1). */
  shares: number[];
  mean: number;
  count: number;
}

/** Bins a reference sample into `bins` quantile bins (equal mass), the usual PSI setup. */
export function binReference(values: ArrayLike<number>, bins = 10): BinnedReference {
  const sorted = sortFloat64(values);
  const edges: number[] = [];
  for (let i = 1; i < bins; i++) {
    const edge = sorted[Math.min(sorted.length - 1, Math.floor((i * sorted.length) / bins))]!;
    if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
  }
  const counts = binCounts(sorted, edges);
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!;
  return { edges, shares: counts.map((c) => c / sorted.length), mean: sum / sorted.length, count: sorted.length };
}

/** Counts per bin: bin i holds values in [edges[i-1], edges[i]), first and last bins open-ended. */
export function binCounts(values: ArrayLike<number>, edges: number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    let lo = 0, hi = edges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (value < edges[mid]!) hi = mid; else lo = mid + 1;
    }
    counts[lo]!++;
  }
  return counts;
}

/** Population Stability Index of a current sample against a binned reference (ε-smoothed empty bins). */
export function psi(reference: Pick<BinnedReference, 'edges' | 'shares'>, current: ArrayLike<number>): number {
  return psiFromCounts(reference.shares, binCounts(current, reference.edges));
}

/** PSI from reference shares and current counts over the same bins. */
export function psiFromCounts(expectedShares: number[], actualCounts: number[]): number {
  let n = 0;
  for (const c of actualCounts) n += c;
  if (n === 0) return 0;
  const epsilon = 1e-4;
  let total = 0;
  for (let i = 0; i < actualCounts.length; i++) {
    const expected = Math.max(expectedShares[i] ?? 0, epsilon);
    const actual = Math.max(actualCounts[i]! / n, epsilon);
    total += (actual - expected) * Math.log(actual / expected);
  }
  return total;
}

/**
 * PSI over categories: the reference's top values plus one bucket for everything else (values the reference
 * did not list, including new categories).
 */
export function categoricalPsi(reference: { value: string; count: number }[], referenceTotal: number, current: Map<string, number>): number {
  const index = new Map(reference.map((r, i) => [r.value, i]));
  const shares = reference.map((r) => r.count / referenceTotal);
  shares.push(Math.max(0, 1 - shares.reduce((a, b) => a + b, 0)));
  const counts = new Array<number>(shares.length).fill(0);
  for (const [value, count] of current) counts[index.get(value) ?? reference.length]! += count;
  return psiFromCounts(shares, counts);
}

/** Two-sample Kolmogorov–Smirnov statistic D and its asymptotic p-value. */
export function ksTest(a: ArrayLike<number>, b: ArrayLike<number>): { statistic: number; pValue: number } {
  const x = sortFloat64(a);
  const y = sortFloat64(b);
  let i = 0, j = 0, d = 0;
  while (i < x.length && j < y.length) {
    const value = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= value) i++;
    while (j < y.length && y[j]! <= value) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  const n = (x.length * y.length) / (x.length + y.length);
  const lambda = (Math.sqrt(n) + 0.12 + 0.11 / Math.sqrt(n)) * d;
  let p = 0;
  for (let k = 1; k <= 100; k++) p += 2 * (-1) ** (k - 1) * Math.exp(-2 * k * k * lambda * lambda);
  return { statistic: d, pValue: Math.min(1, Math.max(0, p)) };
}

export function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return values.length ? sum / values.length : NaN;
}
