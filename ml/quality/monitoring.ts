/**
 * Per-feature drift and data quality of a window of served requests against the training profile, with Evidently's
 * choice of test: a reference of at most 1,000 rows gets KS (p < 0.05) for numbers and chi² (p < 0.05) for
 * categories; a larger one gets the normed Wasserstein distance (≥ 0.1) and the Jensen–Shannon distance (≥ 0.1).
 * The dataset drifts when at least half of the columns do. Pure functions over the stored profile and raw values.
 */
import {
  categoryShares,
  chiSquareTest,
  DRIFT_TESTS,
  isDrift,
  jensenShannonDistance,
  ksTest,
  wassersteinNormed,
  type DriftTestId,
} from './drift';
import { chooseDriftTest } from './driftChooser';
import type { ColumnProfile } from '../profiling/profile';

export { chiSquareTest, jensenShannonDistance, regularizedGammaP, wassersteinNormed } from './drift';

export interface FeatureDriftOptions {
  /** @default 0.1 */ wassersteinThreshold: number;
  /** @default 0.1 */ jensenShannonThreshold: number;
  /** @default 0.05 */ pValue: number;
  /** @default 0.5 */ datasetDriftShare: number;
}

/**
 * Each test's own threshold from the registry (KS and chi² share the p-value); half of the columns make dataset drift.
 */
export const FEATURE_DRIFT_DEFAULTS: Readonly<FeatureDriftOptions> = {
  wassersteinThreshold: DRIFT_TESTS.wasserstein_normed.defaultThreshold,
  jensenShannonThreshold: DRIFT_TESTS.jensen_shannon.defaultThreshold,
  pValue: DRIFT_TESTS.ks.defaultThreshold,
  datasetDriftShare: 0.5,
};

const thresholdOf = (test: DriftTestId, options: FeatureDriftOptions) =>
  test === 'wasserstein_normed'
    ? options.wassersteinThreshold
    : test === 'jensen_shannon'
      ? options.jensenShannonThreshold
      : options.pValue;

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

export interface QualityIssue {
  column: string;
  check: 'null_rate' | 'unseen_categories' | 'type';
  value: number;
  reference: number;
  message: string;
}

const isNumeric = (p: ColumnProfile) => (p.type === 'number' || p.type === 'integer') && !!p.sample?.length;

/**
 * Values of one feature in the window: numbers for numeric columns, strings otherwise; null/undefined are missing.
 * The test is chosen by the reference's size (Evidently's rule: the training profile is the reference).
 */
export function columnDrift(
  reference: ColumnProfile,
  values: unknown[],
  options: FeatureDriftOptions = FEATURE_DRIFT_DEFAULTS,
): ColumnDrift | undefined {
  const referenceRows = reference.count - reference.nulls;
  if (isNumeric(reference)) {
    const current = values.map(toNumber).filter((v): v is number => v !== undefined);
    if (current.length === 0) return undefined;
    const test = chooseDriftTest('numeric', referenceRows) as 'ks' | 'wasserstein_normed';
    const outcome =
      test === 'ks'
        ? ksTest(reference.sample!, current)
        : { statistic: wassersteinNormed(reference.sample!, current, reference.std ?? 0) };
    const threshold = thresholdOf(test, options);
    return {
      column: reference.name,
      test,
      ...outcome,
      threshold,
      drifted: isDrift(test, outcome, threshold),
      rows: current.length,
    };
  }
  const current = values.filter((v) => v !== null && v !== undefined && v !== '').map(String);
  if (current.length === 0 || !reference.topValues?.length) return undefined;
  const counts = new Map<string, number>();
  for (const v of current) counts.set(v, (counts.get(v) ?? 0) + 1);
  const { expected, observed } = categoryShares(reference.topValues, referenceRows, counts);
  const test = chooseDriftTest('categorical', referenceRows) as 'chi2' | 'jensen_shannon';
  const outcome =
    test === 'chi2'
      ? chiSquareTest(expected, observed, current.length)
      : {
          statistic: jensenShannonDistance(
            expected,
            observed.map((c) => c / current.length),
          ),
        };
  const threshold = thresholdOf(test, options);
  return {
    column: reference.name,
    test,
    ...outcome,
    threshold,
    drifted: isDrift(test, outcome, threshold),
    rows: current.length,
  };
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

/**
 * Data quality of the window per feature: a null rate well above training's (+0.1 by default), and categories
 * training never saw (when training's top values listed every category).
 */
export function dataQuality(
  reference: ColumnProfile,
  values: unknown[],
  options = { nullRateIncrease: 0.1, unseenShare: 0.05 },
): QualityIssue[] {
  if (values.length === 0) return [];
  const issues: QualityIssue[] = [];
  const nulls = values.filter((v) => v === null || v === undefined || v === '').length;
  const rate = nulls / values.length;
  const refRate = reference.count ? reference.nulls / reference.count : 0;
  if (rate - refRate >= options.nullRateIncrease) {
    issues.push({
      column: reference.name,
      check: 'null_rate',
      value: rate,
      reference: refRate,
      message: `feature "${reference.name}": ${(rate * 100).toFixed(1)} % of requests have no value (training: ${(refRate * 100).toFixed(1)} %)`,
    });
  }
  const exhaustive =
    !reference.distinctApprox && reference.topValues && reference.topValues.length === reference.distinct;
  if (!isNumeric(reference) && exhaustive) {
    const known = new Set(reference.topValues!.map((t) => t.value));
    const present = values.filter((v) => v !== null && v !== undefined && v !== '').map(String);
    const unseen = present.filter((v) => !known.has(v));
    if (present.length && unseen.length / present.length >= options.unseenShare) {
      const examples = [...new Set(unseen)]
        .slice(0, 5)
        .map((v) => `"${v}"`)
        .join(', ');
      issues.push({
        column: reference.name,
        check: 'unseen_categories',
        value: unseen.length / present.length,
        reference: 0,
        message: `feature "${reference.name}": ${((100 * unseen.length) / present.length).toFixed(1)} % of requests carry categories training never saw (${examples})`,
      });
    }
  }
  return issues;
}
