/**
 * Per-feature drift and data quality of a window of served requests against the training profile, with Evidently's
 * choice of test: a reference of at most 1,000 rows gets KS (p < 0.05) for numbers and chi² (p < 0.05) for
 * categories; a larger one gets the normed Wasserstein distance (≥ 0.1) and the Jensen–Shannon distance (≥ 0.1).
 * The dataset drifts when at least half of the columns do. Pure functions over the stored profile and raw values.
 */
import { ksTest } from './drift';
import { sortFloat64 } from './sort';
import type { ColumnProfile } from './profile';

export interface FeatureDriftOptions {
  /** @default 0.1 */ wassersteinThreshold: number;
  /** @default 0.1 */ jensenShannonThreshold: number;
  /** @default 0.05 */ pValue: number;
  /** @default 0.5 */ datasetDriftShare: number;
}

export const FEATURE_DRIFT_DEFAULTS: FeatureDriftOptions = { wassersteinThreshold: 0.1, jensenShannonThreshold: 0.1, pValue: 0.05, datasetDriftShare: 0.5 };

export interface ColumnDrift {
  column: string;
  test: 'ks' | 'chi2' | 'wasserstein_normed' | 'jensen_shannon';
  /** The test's statistic (distance, or KS D / chi²). */
  statistic: number;
  pValue?: number;
  threshold: number;
  drifted: boolean;
  rows: number;
}

export interface QualityIssue { column: string; check: 'null_rate' | 'unseen_categories' | 'type'; value: number; reference: number; message: string }

const isNumeric = (p: ColumnProfile) => (p.type === 'number' || p.type === 'integer') && !!p.sample?.length;

/** Values of one feature in the window: numbers for numeric columns, strings otherwise; null/undefined are missing. */
export function columnDrift(reference: ColumnProfile, values: unknown[], options: FeatureDriftOptions = FEATURE_DRIFT_DEFAULTS): ColumnDrift | undefined {
  const small = reference.count - reference.nulls <= 1000;
  if (isNumeric(reference)) {
    const current = values.map(toNumber).filter((v): v is number => v !== undefined);
    if (current.length === 0) return undefined;
    if (small) {
      const { statistic, pValue } = ksTest(reference.sample!, current);
      return { column: reference.name, test: 'ks', statistic, pValue, threshold: options.pValue, drifted: pValue < options.pValue, rows: current.length };
    }
    const distance = wassersteinNormed(reference.sample!, current, reference.std ?? 0);
    return { column: reference.name, test: 'wasserstein_normed', statistic: distance, threshold: options.wassersteinThreshold, drifted: distance >= options.wassersteinThreshold, rows: current.length };
  }
  const current = values.filter((v) => v !== null && v !== undefined && v !== '').map(String);
  if (current.length === 0 || !reference.topValues?.length) return undefined;
  const { expected, observed } = categoryShares(reference, current);
  if (small) {
    const { statistic, pValue } = chiSquareTest(expected, observed, current.length);
    return { column: reference.name, test: 'chi2', statistic, pValue, threshold: options.pValue, drifted: pValue < options.pValue, rows: current.length };
  }
  const distance = jensenShannonDistance(expected, observed.map((c) => c / current.length));
  return { column: reference.name, test: 'jensen_shannon', statistic: distance, threshold: options.jensenShannonThreshold, drifted: distance >= options.jensenShannonThreshold, rows: current.length };
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return Number(value);
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Reference shares over its top values plus "other", and the window's counts over the same buckets. */
function categoryShares(reference: ColumnProfile, current: string[]): { expected: number[]; observed: number[] } {
  const top = reference.topValues!;
  const total = Math.max(1, reference.count - reference.nulls);
  const expected = top.map((t) => t.count / total);
  expected.push(Math.max(0, 1 - expected.reduce((a, b) => a + b, 0)));
  const index = new Map(top.map((t, i) => [t.value, i]));
  const observed = new Array<number>(expected.length).fill(0);
  for (const v of current) observed[index.get(v) ?? top.length]!++;
  return { expected, observed };
}

/** W1 between the two empirical distributions (quantile functions on a common grid), divided by the reference std. */
export function wassersteinNormed(reference: ArrayLike<number>, current: ArrayLike<number>, referenceStd: number): number {
  const a = sortFloat64(reference);
  const b = sortFloat64(current);
  const steps = 1000;
  let sum = 0;
  for (let k = 0; k < steps; k++) {
    const u = (k + 0.5) / steps;
    sum += Math.abs(a[Math.min(a.length - 1, Math.floor(u * a.length))]! - b[Math.min(b.length - 1, Math.floor(u * b.length))]!);
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

/** Pearson's chi² goodness of fit of observed counts against expected shares (buckets with no expectation merged away). */
export function chiSquareTest(expectedShares: number[], observed: number[], n: number): { statistic: number; pValue: number } {
  let statistic = 0, buckets = 0, unexpected = 0;
  for (let i = 0; i < expectedShares.length; i++) {
    const e = expectedShares[i]! * n;
    if (e <= 0) { unexpected += observed[i]!; continue; }
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
    let term = 1 / a, sum = term;
    for (let n = 1; n < 500; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-14) break;
    }
    return Math.min(1, sum * Math.exp(-x + a * Math.log(x) - lnGammaA));
  }
  let b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
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
  const g = [76.18009172947146, -86.50532032941677, 24.01409824083091, -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5];
  let x = z, y = z;
  let tmp = x + 5.5;
  tmp -= (x + 0.5) * Math.log(tmp);
  let ser = 1.000000000190015;
  for (const c of g) ser += c / ++y;
  return -tmp + Math.log((2.5066282746310005 * ser) / x);
}

/**
 * Data quality of the window per feature: a null rate well above training's (+0.1 by default), and categories
 * training never saw (when training's top values listed every category).
 */
export function dataQuality(reference: ColumnProfile, values: unknown[], options = { nullRateIncrease: 0.1, unseenShare: 0.05 }): QualityIssue[] {
  if (values.length === 0) return [];
  const issues: QualityIssue[] = [];
  const nulls = values.filter((v) => v === null || v === undefined || v === '').length;
  const rate = nulls / values.length;
  const refRate = reference.count ? reference.nulls / reference.count : 0;
  if (rate - refRate >= options.nullRateIncrease) {
    issues.push({ column: reference.name, check: 'null_rate', value: rate, reference: refRate, message: `feature "${reference.name}": ${(rate * 100).toFixed(1)} % of requests have no value (training: ${(refRate * 100).toFixed(1)} %)` });
  }
  const exhaustive = !reference.distinctApprox && reference.topValues && reference.topValues.length === reference.distinct;
  if (!isNumeric(reference) && exhaustive) {
    const known = new Set(reference.topValues!.map((t) => t.value));
    const present = values.filter((v) => v !== null && v !== undefined && v !== '').map(String);
    const unseen = present.filter((v) => !known.has(v));
    if (present.length && unseen.length / present.length >= options.unseenShare) {
      const examples = [...new Set(unseen)].slice(0, 5).map((v) => `"${v}"`).join(', ');
      issues.push({ column: reference.name, check: 'unseen_categories', value: unseen.length / present.length, reference: 0, message: `feature "${reference.name}": ${(100 * unseen.length / present.length).toFixed(1)} % of requests carry categories training never saw (${examples})` });
    }
  }
  return issues;
}
