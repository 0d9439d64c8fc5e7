import { describe, expect, it } from 'vitest';
import { binReference, ksTest, psi } from '../../ml/quality/drift';
import { sortFloat64 } from '../../ml/profiling/sort';
import { checkGates } from '../../ml/evaluation/gates';
import { regressionMetrics } from '../../ml/evaluation/metrics';
import { encodeInstance, fitPreprocessor, FeatureError } from '../../training/preprocess';
import { ProfileBuilder } from '../../ml/profiling/profile';
import { normal, seededRandom } from '../../ml/random';
import { splitRows } from '../../training/split';

const sample = (n: number, shift: number, seed: number) => {
  const random = seededRandom(seed);
  return Float64Array.from({ length: n }, () => normal(random) + shift);
};

describe('drift tests', () => {
  it('PSI is near zero for the same distribution and large for a shifted one', () => {
    const reference = binReference(sample(5000, 0, 1));
    expect(psi(reference, sample(5000, 0, 2))).toBeLessThan(0.02);
    expect(psi(reference, sample(5000, 1, 3))).toBeGreaterThan(0.2);
  });

  it('KS separates shifted samples and not identical ones', () => {
    expect(ksTest(sample(2000, 0, 4), sample(2000, 0, 5)).pValue).toBeGreaterThan(0.01);
    expect(ksTest(sample(2000, 0, 6), sample(2000, 0.3, 7)).pValue).toBeLessThan(1e-6);
  });
});

describe('metrics and gates', () => {
  it('computes regression metrics', () => {
    const m = regressionMetrics([1, 2, 3, 4], [1, 2, 3, 5]);
    expect(m.rmse).toBeCloseTo(0.5);
    expect(m.mae).toBeCloseTo(0.25);
    expect(m.r2).toBeCloseTo(0.8);
  });

  it('reports each failed gate with its numbers', () => {
    const result = checkGates({ r2: 0.4, rmse: 3 }, [
      { metric: 'r2', min: 0.6 },
      { metric: 'rmse', max: 5 },
      { metric: 'auc', min: 0.5 },
    ]);
    expect(result.passed).toBe(false);
    expect(result.failures).toEqual([
      'r2 = 0.4 is below the minimum 0.6',
      expect.stringContaining('auc: not computed'),
    ]);
  });

  it('applies MLflow-style thresholds and changes against the champion, with the direction inferred from the metric', () => {
    const champion = { version: 3, metrics: { rmse: 10, r2: 0.8, roc_auc: 0.9 } };
    const gates = [
      { metric: 'rmse', minRelativeChange: 0.05 }, // lower is better: needs rmse ≤ 9.5
      { metric: 'r2', minAbsoluteChange: 0.01 }, // greater is better: needs r2 ≥ 0.81
      { metric: 'roc_auc', threshold: 0.85 },
      { metric: 'mae', threshold: 5 }, // lower is better: ≤ 5
    ];
    expect(checkGates({ rmse: 9.4, r2: 0.815, roc_auc: 0.86, mae: 4 }, gates, champion)).toMatchObject({
      passed: true,
      failures: [],
    });
    const failed = checkGates({ rmse: 9.8, r2: 0.805, roc_auc: 0.84, mae: 6 }, gates, champion);
    expect(failed.failures).toEqual([
      'rmse = 9.8 vs 10 for champion v3: improves by 2 %, needs at least 5 % (lower is better)',
      'r2 = 0.805 vs 0.8 for champion v3: improves by 0.005, needs at least 0.01 (higher is better)',
      'roc_auc = 0.84 is below the threshold 0.85',
      'mae = 6 is above the threshold 5',
    ]);
    // No champion yet: change rules are skipped (and say so), absolute ones still hold.
    const first = checkGates({ rmse: 50, r2: 0.1, roc_auc: 0.9, mae: 1 }, gates, null);
    expect(first.passed).toBe(true);
    expect(first.checks.filter((c) => c.skipped === 'no champion to compare with')).toHaveLength(2);
    expect(checkGates({ loss: 2 }, [{ metric: 'loss', threshold: 1, greaterIsBetter: true }]).passed).toBe(true);
  });
});

describe('profiles, splits and preprocessing', () => {
  it('profiles types, nulls and moments in one pass', () => {
    const builder = new ProfileBuilder(['x', 'c']);
    [
      ['1', 'a'],
      ['2', 'b'],
      ['', 'a'],
      ['3', 'a'],
    ].forEach((row) => builder.addRow(row));
    const [x, c] = builder.finish();
    expect(x).toMatchObject({ type: 'integer', nulls: 1, min: 1, max: 3, mean: 2 });
    expect(c!.topValues![0]).toEqual({ value: 'a', count: 3 });
  });

  it('splits deterministically and without overlap', () => {
    const a = splitRows(1000, 0.2, 42, 'abc');
    const b = splitRows(1000, 0.2, 42, 'abc');
    expect(Array.from(a.holdout)).toEqual(Array.from(b.holdout));
    expect(new Set([...a.train, ...a.validation, ...a.holdout]).size).toBe(1000);
    expect(a.holdout.length).toBe(200);
  });

  it('encodes serving instances exactly like training and names bad fields', () => {
    const columns = { x: ['1', '3'], c: ['a', 'b'], y: ['0', '1'] };
    const pre = fitPreprocessor(columns, [0, 1], {
      task: 'regression',
      target: 'y',
      numeric: ['x'],
      categorical: ['c'],
    });
    expect(Array.from(encodeInstance(pre, { x: 3, c: 'b' }))).toEqual([expect.closeTo(0.7071, 3), 0, 1]);
    expect(() => encodeInstance(pre, { x: 'NaN', c: 'a' })).toThrowError(/instance\.x: expected a finite number/);
    expect(() => encodeInstance(pre, { c: 'a' })).toThrowError(FeatureError);
    expect(() => encodeInstance(pre, { x: 1, c: 'a', z: 2 })).toThrowError(/instance\.z: unknown feature/);
  });

  it('switches to a HyperLogLog past the exact bound, within 3 %, and samples uniformly', () => {
    const builder = new ProfileBuilder(['id', 'label']);
    for (let i = 0; i < 200_000; i++) builder.addRow([String(i), `L${i % 50_000}`]);
    const [id, label] = builder.finish();
    expect(id).toMatchObject({ type: 'integer', count: 200_000, distinctApprox: true, min: 0, max: 199_999 });
    expect(Math.abs(id!.distinct - 200_000) / 200_000).toBeLessThan(0.03);
    expect(Math.abs(label!.distinct - 50_000) / 50_000).toBeLessThan(0.03);
    expect(Math.abs(id!.quantiles!.p50 - 100_000)).toBeLessThan(3_000);
    expect(id!.bins!.edges).toHaveLength(9);
    expect(id!.sample).toHaveLength(500);
  });
});

describe('sortFloat64', () => {
  it('orders like Float64Array.prototype.sort, specials included', () => {
    const random = seededRandom(9);
    const values = Array.from({ length: 50_000 }, (_, i) =>
      i % 997 === 0
        ? [NaN, Infinity, -Infinity, -0, 0, 5e-324, -1e308][i % 7]!
        : (random() - 0.5) * 10 ** Math.floor(random() * 12 - 6),
    );
    const expected = Float64Array.from(values).sort();
    const actual = sortFloat64(values);
    expect(actual.length).toBe(expected.length);
    for (let i = 0; i < expected.length; i++) expect(Object.is(actual[i], expected[i])).toBe(true);
  });
});

describe('sortFloat64 on sorted input', () => {
  it('returns an already sorted sample as is, and still sorts one that only looks sorted', () => {
    const sorted = Float64Array.from({ length: 5000 }, (_, i) => i - 2500);
    expect(Array.from(sortFloat64(sorted))).toEqual(Array.from(sorted));
    const zeros = Float64Array.from({ length: 5000 }, (_, i) => (i < 2500 ? -1 : i === 2500 ? 0 : i === 2501 ? -0 : 1));
    const out = sortFloat64(zeros);
    expect([Object.is(out[2500], -0), Object.is(out[2501], 0)]).toEqual([true, true]);
  });
});
