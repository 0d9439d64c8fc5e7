/**
 * Distribution-shift tests shared by validation and monitoring. Each test is a pure function over numbers plus a
 * descriptor (column kind, what decides, default threshold) registered under a stable id in `DRIFT_TESTS`; the
 * chooser that picks one by column kind and sample size lives apart, in driftChooser.ts.
 */
import { sortFloat64 } from '../profiling/sort';

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
    let lo = 0,
      hi = edges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (value < edges[mid]!) hi = mid;
      else lo = mid + 1;
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
export function categoricalPsi(
  reference: { value: string; count: number }[],
  referenceTotal: number,
  current: Map<string, number>,
): number {
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
  let i = 0,
    j = 0,
    d = 0;
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

/** W1 between the two empirical distributions (quantile functions on a common grid), divided by the reference std. */
export function wassersteinNormed(
  reference: ArrayLike<number>,
  current: ArrayLike<number>,
  referenceStd: number,
): number {
  const a = sortFloat64(reference);
  const b = sortFloat64(current);
  const steps = 1000;
  let sum = 0;
  for (let k = 0; k < steps; k++) {
    const u = (k + 0.5) / steps;
    sum += Math.abs(
      a[Math.min(a.length - 1, Math.floor(u * a.length))]! - b[Math.min(b.length - 1, Math.floor(u * b.length))]!,
    );
  }
  const w = sum / steps;
  return referenceStd > 0 ? w / referenceStd : w === 0 ? 0 : Infinity;
}

/** Jensen–Shannon distance (base 2, in [0, 1]), as scipy.spatial.distance.jensenshannon. */
export function jensenShannonDistance(p: number[], q: number[]): number {
  let divergence = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i]! + q[i]!) / 2;
    if (p[i]! > 0) divergence += 0.5 * p[i]! * Math.log2(p[i]! / m);
    if (q[i]! > 0) divergence += 0.5 * q[i]! * Math.log2(q[i]! / m);
  }
  return Math.sqrt(Math.max(0, divergence));
}

/**
 * Pearson's chi² goodness of fit of observed counts against expected shares (buckets with no expectation merged away).
 */
export function chiSquareTest(
  expectedShares: number[],
  observed: number[],
  n: number,
): { statistic: number; pValue: number } {
  let statistic = 0,
    buckets = 0,
    unexpected = 0;
  for (let i = 0; i < expectedShares.length; i++) {
    const e = expectedShares[i]! * n;
    if (e <= 0) {
      unexpected += observed[i]!;
      continue;
    }
    statistic += (observed[i]! - e) ** 2 / e;
    buckets++;
  }
  // Values the reference never had: each one is maximally surprising.
  if (unexpected > 0) statistic += unexpected * n;
  const dof = Math.max(1, buckets - 1);
  return { statistic, pValue: 1 - regularizedGammaP(dof / 2, statistic / 2) };
}

/** P(a, x), the regularized lower incomplete gamma function (series / continued fraction, as in Numerical Recipes). */
export function regularizedGammaP(a: number, x: number): number {
  if (x <= 0) return 0;
  const lnGammaA = lnGamma(a);
  if (x < a + 1) {
    let term = 1 / a,
      sum = term;
    for (let n = 1; n < 500; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-14) break;
    }
    return Math.min(1, sum * Math.exp(-x + a * Math.log(x) - lnGammaA));
  }
  let b = x + 1 - a,
    c = 1e300,
    d = 1 / b,
    h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-14) break;
  }
  return Math.max(0, 1 - Math.exp(-x + a * Math.log(x) - lnGammaA) * h);
}

function lnGamma(z: number): number {
  const g = [
    76.18009172947146, -86.50532032941678, 24.01409824083091, -1.231739572450155, 0.1208650973866179e-2,
    -0.5395239384953e-5,
  ];
  const x = z;
  let y = z;
  let tmp = x + 5.5;
  tmp -= (x + 0.5) * Math.log(tmp);
  let ser = 1.000000000190015;
  for (const c of g) ser += c / ++y;
  return -tmp + Math.log((2.5066282746310007 * ser) / x);
}

/**
 * Reference shares over its top values plus "other", and the current counts over the same buckets (a value the
 * reference did not list, a new category included, counts as "other").
 */
export function categoryShares(
  top: { value: string; count: number }[],
  referenceTotal: number,
  current: Iterable<[string, number]>,
): { expected: number[]; observed: number[]; n: number } {
  const expected = top.map((t) => t.count / Math.max(1, referenceTotal));
  expected.push(Math.max(0, 1 - expected.reduce((a, b) => a + b, 0)));
  const index = new Map(top.map((t, i) => [t.value, i]));
  const observed = new Array<number>(expected.length).fill(0);
  let n = 0;
  for (const [value, count] of current) {
    observed[index.get(value) ?? top.length]! += count;
    n += count;
  }
  return { expected, observed, n };
}

export type DriftColumnKind = 'numeric' | 'categorical';

export interface DriftTestDescriptor {
  /** Stable id, stored in reports. */
  id: string;
  /** How reports and messages name it. */
  label: string;
  columns: DriftColumnKind;
  /** `p_value`: drift when p < threshold; `distance`: drift when the statistic ≥ threshold. */
  decides: 'p_value' | 'distance';
  defaultThreshold: number;
}

/** Every drift test by id, with Evidently's default thresholds (PSI: the usual 0.25 "major shift"). */
export const DRIFT_TESTS = {
  ks: { id: 'ks', label: 'KS', columns: 'numeric', decides: 'p_value', defaultThreshold: 0.05 },
  chi2: { id: 'chi2', label: 'chi²', columns: 'categorical', decides: 'p_value', defaultThreshold: 0.05 },
  wasserstein_normed: {
    id: 'wasserstein_normed',
    label: 'normed Wasserstein distance',
    columns: 'numeric',
    decides: 'distance',
    defaultThreshold: 0.1,
  },
  jensen_shannon: {
    id: 'jensen_shannon',
    label: 'Jensen–Shannon distance',
    columns: 'categorical',
    decides: 'distance',
    defaultThreshold: 0.1,
  },
  psi: { id: 'psi', label: 'PSI', columns: 'numeric', decides: 'distance', defaultThreshold: 0.25 },
  psi_categorical: {
    id: 'psi_categorical',
    label: 'PSI',
    columns: 'categorical',
    decides: 'distance',
    defaultThreshold: 0.25,
  },
} as const satisfies Record<string, DriftTestDescriptor>;

export type DriftTestId = keyof typeof DRIFT_TESTS;

/** The verdict of a test's outcome against its threshold (the registered default unless given). */
export function isDrift(
  test: DriftTestId,
  outcome: { statistic: number; pValue?: number },
  threshold: number = DRIFT_TESTS[test].defaultThreshold,
): boolean {
  return DRIFT_TESTS[test].decides === 'p_value' ? (outcome.pValue ?? 1) < threshold : outcome.statistic >= threshold;
}
