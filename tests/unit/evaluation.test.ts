import { describe, expect, it } from 'vitest';
import {
  calibrationSvg,
  checkFairness,
  classificationEvaluation,
  confusionMatrixSvg,
  fairnessMetrics,
  precisionRecallSvg,
  regressionEvaluation,
  residualsSvg,
  rocCurveSvg,
  sliceMetrics,
} from '../../ml/evaluation/evaluation';
import { regressionMetrics } from '../../ml/evaluation/metrics';
import { seededRandom } from '../../ml/random';

/**
 * Reference numbers below came from scikit-learn 1.2.1 (Debian python3-sklearn, /usr/bin/python3) with numpy, as
 *   P = np.column_stack([1 - p1, p1]); pred = np.argmax(P, axis=1)
 *   accuracy_score(y, pred), precision_score(y, pred), recall_score(y, pred), f1_score(y, pred),
 *   roc_auc_score(y, p1), average_precision_score(y, p1), log_loss(y, P, labels=[0, 1], eps=1e-15), brier_score_loss(y,
 * p1),
 *   roc_curve(y, p1), precision_recall_curve(y, p1) (reversed), calibration_curve(y, p1, n_bins=10, strategy='uniform')
 * (log_loss with eps=1e-15 as flywheel clips: sklearn 1.2's default eps='auto' is float64 eps and gives
 * 3.204136437262222 here.)
 * ECE is not in sklearn: it is numpy over top-label confidence with the same bins,
 *   conf = P.max(1); b = np.searchsorted(np.linspace(0, 1, 11)[1:-1], conf);
 *   sum(abs((P.argmax(1) == y)[b == i].mean() - conf[b == i].mean()) * (b == i).sum() for non-empty i) / len(y)
 */
const y = [0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1];
// Ties: 0.4 (two negatives), 0.8 and 0.5 (two positives each), 0.65 (a positive and a negative); 0.5 predicts class 0
// (first arg-max); 0.0 for a positive exercises the log-loss clip.
const p1 = [0.1, 0.4, 0.35, 0.8, 0.4, 0.8, 0.5, 0.2, 0.65, 0.65, 0.9, 0.5, 0.95, 0.0];
const binaryProbabilities = p1.flatMap((p) => [1 - p, p]);

/** Multiclass fixture (with an arg-max tie in row 5 and a zero probability); sklearn 1.2.1 as
 *   predm = np.argmax(Pm, axis=1); precision_score(ym, predm, average='macro') (recall, f1 likewise),
 *   roc_auc_score(ym, Pm, multi_class='ovr', average='macro'),
 *   average_precision_score(label_binarize(ym, classes=[0, 1, 2]), Pm, average='macro'),
 *   log_loss(ym, Pm, labels=[0, 1, 2], eps=1e-15), confusion_matrix(ym, predm, labels=[0, 1, 2]); ECE as above. */
const ym = [0, 1, 2, 2, 1, 0, 2, 1, 0, 2, 1, 2];
const Pm = [
  [0.7, 0.2, 0.1],
  [0.2, 0.5, 0.3],
  [0.1, 0.3, 0.6],
  [0.3, 0.4, 0.3],
  [0.25, 0.5, 0.25],
  [0.4, 0.4, 0.2],
  [0.2, 0.2, 0.6],
  [0.5, 0.3, 0.2],
  [0.6, 0.1, 0.3],
  [0.1, 0.1, 0.8],
  [0.3, 0.3, 0.4],
  [0.0, 0.5, 0.5],
];

describe('classification evaluation', () => {
  it('matches sklearn on a binary holdout with tied scores', () => {
    const { metrics, confusion } = classificationEvaluation(y, binaryProbabilities, ['no', 'yes']);
    expect(metrics.accuracy).toBeCloseTo(0.5714285714285714, 12);
    expect(metrics.precision).toBeCloseTo(0.6666666666666666, 12);
    expect(metrics.recall).toBeCloseTo(0.5, 12);
    expect(metrics.f1).toBeCloseTo(0.5714285714285715, 12);
    expect(metrics.roc_auc).toBeCloseTo(0.6145833333333334, 12);
    expect(metrics.pr_auc).toBeCloseTo(0.6718073593073592, 12);
    expect(metrics.log_loss).toBeCloseTo(3.0966452233903317, 12);
    expect(metrics.brier).toBeCloseTo(0.2735714285714286, 12);
    expect(metrics.ece).toBeCloseTo(0.39285714285714285, 12);
    expect(metrics.count).toBe(14);
    // sklearn binary pred [0,0,0,1,0,1,0,0,1,1,1,0,1,0]
    expect(confusion).toEqual({
      labels: ['no', 'yes'],
      matrix: [
        [4, 2],
        [4, 4],
      ],
    });
  });

  it('matches sklearn roc_curve, precision_recall_curve and calibration_curve', () => {
    const { curves } = classificationEvaluation(y, binaryProbabilities, ['no', 'yes']);
    const close = (actual: number[] | undefined, expected: number[]) => {
      expect(actual).toHaveLength(expected.length);
      expected.forEach((v, i) => expect(actual![i]).toBeCloseTo(v, 12));
    };
    close(curves.roc?.fpr, [0.0, 1 / 6, 1 / 6, 1 / 6, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0, 1.0]);
    close(curves.roc?.tpr, [0.0, 0.0, 0.125, 0.375, 0.5, 0.75, 0.75, 0.875, 0.875, 1.0]);
    close(curves.pr?.recall, [0.0, 0.0, 0.125, 0.375, 0.5, 0.75, 0.75, 0.875, 0.875, 0.875, 1.0]);
    close(
      curves.pr?.precision,
      [
        1.0, 0.0, 0.5, 0.75, 0.6666666666666666, 0.75, 0.6, 0.6363636363636364, 0.5833333333333334, 0.5384615384615384,
        0.5714285714285714,
      ],
    );
    const bins = curves.calibration.bins;
    close(
      bins.map((b) => b.fractionPositive),
      [0.5, 0.0, 0.3333333333333333, 1.0, 0.5, 1.0, 1.0, 0.0],
    );
    close(
      bins.map((b) => b.meanPredicted),
      [0.05, 0.2, 0.3833333333333333, 0.5, 0.65, 0.8, 0.9, 0.95],
    );
    // np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p1)) without the empty bins
    expect(bins.map((b) => b.count)).toEqual([2, 1, 3, 2, 2, 2, 1, 1]);
  });

  it('matches sklearn macro averages on a multiclass holdout', () => {
    const { metrics, confusion, curves } = classificationEvaluation(ym, Pm.flat(), ['a', 'b', 'c']);
    expect(metrics.accuracy).toBeCloseTo(0.6666666666666666, 12);
    expect(metrics.precision).toBeCloseTo(0.6666666666666666, 12);
    expect(metrics.recall).toBeCloseTo(0.7000000000000001, 12);
    expect(metrics.f1).toBeCloseTo(0.6746031746031745, 12);
    expect(metrics.roc_auc).toBeCloseTo(0.8852733686067019, 12);
    expect(metrics.pr_auc).toBeCloseTo(0.8083333333333332, 12);
    expect(metrics.log_loss).toBeCloseTo(0.7266621710902261, 12);
    expect(metrics.ece).toBeCloseTo(0.15833333333333335, 12);
    expect(metrics.brier).toBeUndefined();
    expect(confusion.matrix).toEqual([
      [3, 0, 0],
      [1, 2, 1],
      [0, 2, 3],
    ]);
    expect(curves.roc).toBeUndefined();
    expect(curves.calibration.bins.reduce((s, b) => s + b.count, 0)).toBe(12);
  });

  it('computes AUC exactly as the pairwise rank statistic with ties counted half', () => {
    const random = seededRandom(11);
    const n = 3000;
    const actual = Array.from({ length: n }, () => (random() < 0.3 ? 1 : 0));
    const score = actual.map((a) => Math.round((random() + 0.3 * a) * 20) / 20 / 1.3); // many ties
    let wins = 0,
      pairs = 0;
    for (let i = 0; i < n; i++)
      if (actual[i])
        for (let j = 0; j < n; j++)
          if (!actual[j]) {
            pairs++;
            wins += score[i]! > score[j]! ? 1 : score[i] === score[j] ? 0.5 : 0;
          }
    const { metrics, curves } = classificationEvaluation(
      actual,
      score.flatMap((p) => [1 - p, p]),
      ['0', '1'],
    );
    expect(metrics.roc_auc).toBeCloseTo(wins / pairs, 12);
    expect(curves.roc!.fpr.at(-1)).toBe(1);
    expect(curves.roc!.tpr.at(-1)).toBe(1);
  });

  it('thins long curves to at most 1,000 points, keeping both ends', () => {
    const random = seededRandom(5);
    const actual = Array.from({ length: 20_000 }, () => (random() < 0.5 ? 1 : 0));
    const score = actual.map((a) => Math.min(1, random() * 0.8 + 0.2 * a));
    const { curves } = classificationEvaluation(
      actual,
      score.flatMap((p) => [1 - p, p]),
      ['0', '1'],
    );
    for (const [xs, ys] of [
      [curves.roc!.fpr, curves.roc!.tpr],
      [curves.pr!.recall, curves.pr!.precision],
    ] as const) {
      expect(xs.length).toBeLessThanOrEqual(1000);
      expect(xs.length).toBeGreaterThan(900);
      expect(ys.length).toBe(xs.length);
      expect(xs[0]).toBe(0);
      expect(xs.at(-1)).toBe(1);
      expect(xs.every((x, i) => i === 0 || x >= xs[i - 1]!)).toBe(true);
    }
  });

  it('omits roc_auc, pr_auc and their curves when actual holds a single class, keeping every value finite', () => {
    const binary = classificationEvaluation([0, 0, 0], [0.9, 0.1, 0.6, 0.4, 0.2, 0.8], ['n', 'y']);
    expect(binary.metrics).not.toHaveProperty('roc_auc');
    expect(binary.metrics).not.toHaveProperty('pr_auc');
    expect(binary.curves.roc).toBeUndefined();
    expect(binary.curves.pr).toBeUndefined();
    expect(Object.values(binary.metrics).every(Number.isFinite)).toBe(true);
    expect(binary.metrics.accuracy).toBeCloseTo(2 / 3);
    expect(binary.metrics.precision).toBe(0); // a predicted positive that is wrong
    expect(binary.metrics.recall).toBe(0); // no positives: 0, as sklearn's zero_division

    const multi = classificationEvaluation([2, 2], [0.1, 0.2, 0.7, 0.3, 0.3, 0.4], ['a', 'b', 'c']);
    expect(multi.metrics).not.toHaveProperty('roc_auc');
    expect(Object.values(multi.metrics).every(Number.isFinite)).toBe(true);

    // Two of three classes present: one-vs-rest over those two (sklearn refuses this case). By hand: class a scores
    // positives 0.8, 0.4 vs negatives 0.2, 0.5 → 3/4; class c positives 0.7, 0.4 vs 0.1, 0.4 (a tie, counted half) →
    // 3.5/4.
    const two = classificationEvaluation(
      [0, 2, 0, 2],
      [0.8, 0.1, 0.1, 0.2, 0.1, 0.7, 0.4, 0.2, 0.4, 0.5, 0.1, 0.4],
      ['a', 'b', 'c'],
    );
    expect(two.metrics.roc_auc).toBeCloseTo((0.75 + 0.875) / 2, 12);
  });

  it('rejects malformed input', () => {
    expect(() => classificationEvaluation([0, 1], [0.5, 0.5, 0.5], ['a', 'b'])).toThrow(
      /expected 2 × 2 = 4 probabilities/,
    );
    expect(() => classificationEvaluation([0, 2], [0.5, 0.5, 0.5, 0.5], ['a', 'b'])).toThrow(/row 1: actual 2/);
    expect(() => classificationEvaluation([0, 1], [0.5, 0.5, NaN, 0.5], ['a', 'b'])).toThrow(/row 1: probability NaN/);
    expect(() => classificationEvaluation([0], [1], ['a'])).toThrow(/at least 2 classes/);
  });
});

describe('regression evaluation', () => {
  it('matches sklearn and keeps regressionMetrics values', () => {
    // sklearn 1.2.1: mean_squared_error(ya, yp, squared=False), mean_absolute_error, r2_score,
    // mean_absolute_percentage_error
    const ya = [3.0, -1.5, 2.0, 7.25, 10.0, 4.0],
      yp = [2.5, -1.0, 2.5, 8.0, 9.0, 4.0];
    const { metrics } = regressionEvaluation(ya, yp);
    expect(metrics.rmse).toBeCloseTo(0.6208193510729725, 12);
    expect(metrics.mae).toBeCloseTo(0.5416666666666666, 12);
    expect(metrics.r2).toBeCloseTo(0.9717017208413002, 12);
    expect(metrics.mape).toBeCloseTo(0.1589080459770115, 12);
    expect(metrics).not.toHaveProperty('mape_skipped');
    expect(metrics).toMatchObject(regressionMetrics(ya, yp));
  });

  it('leaves rows with a zero actual out of mape and counts them', () => {
    expect(regressionEvaluation([0, 2, 4, 0], [1, 3, 3, 0]).metrics).toMatchObject({
      mape: (0.5 + 0.25) / 2,
      mape_skipped: 2,
      count: 4,
    });
    const allZero = regressionEvaluation([0, 0], [1, 2]).metrics;
    expect(allZero).not.toHaveProperty('mape');
    expect(allZero.mape_skipped).toBe(2);
    expect(() => regressionEvaluation([1, 2], [1])).toThrow(/2 actuals but 1 predictions/);
  });
});

describe('slice metrics', () => {
  const values = ['a', 'b', 'a', null, 'c', 'a', 'b', 'd', null, 'e'];
  const evaluate = (rows: Int32Array) => ({ n: rows.length, first: rows[0]! });

  it('pools values beyond maxSlices into (other) and names nulls (null), sorted by rows', () => {
    // a: 3 rows; b and (null): 2 each, ties broken by name, so (null) is kept; b, c, d, e pool into (other).
    const slices = sliceMetrics(values, (rows) => ({ ...evaluate(rows), last: rows[rows.length - 1]! }), {
      maxSlices: 2,
    });
    expect(slices).toEqual([
      { value: '(other)', rows: 5, metrics: { n: 5, first: 1, last: 9 } },
      { value: 'a', rows: 3, metrics: { n: 3, first: 0, last: 5 } },
      { value: '(null)', rows: 2, metrics: { n: 2, first: 3, last: 8 } },
    ]);
  });

  it('pools slices under minRows, and drops (other) when it is under minRows too', () => {
    expect(sliceMetrics(values, evaluate, { minRows: 2 }).map((s) => [s.value, s.rows])).toEqual([
      ['(other)', 3],
      ['a', 3],
      ['(null)', 2],
      ['b', 2],
    ]);
    expect(sliceMetrics(['x', 'x', 'y'], evaluate, { minRows: 2 }).map((s) => s.value)).toEqual(['x']);
    expect(sliceMetrics(values, evaluate).map((s) => s.value)).toEqual(['a', '(null)', 'b', 'c', 'd', 'e']);
  });
});

describe('fairness', () => {
  //            F: actual 1 1 1 0 0, predicted 1 1 0 1 0 → selection 3/5, TPR 2/3, FPR 1/2
  //            M: actual 1 1 0 0 0, predicted 1 0 0 0 0 → selection 1/5, TPR 1/2, FPR 0
  //       (null): actual 0 0,       predicted 1 0       → selection 1/2, TPR NaN (no positives), FPR 1/2
  const sensitive = ['F', 'F', 'F', 'F', 'F', 'M', 'M', 'M', 'M', 'M', null, null];
  const actual = [1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0];
  const predicted = [true, true, false, true, false, true, false, false, false, false, true, false];

  it('computes group rates and the fairlearn gaps, leaving undefined rates out', () => {
    const result = fairnessMetrics(sensitive, actual, predicted);
    expect(result.groups.map((g) => g.value)).toEqual(['F', 'M', '(null)']);
    expect(result.groups[0]).toMatchObject({ rows: 5, selectionRate: 0.6, fpr: 0.5 });
    expect(result.groups[0]!.tpr).toBeCloseTo(2 / 3, 12);
    expect(result.groups[2]!.tpr).toBeNaN();
    expect(result.demographic_parity_difference).toBeCloseTo(0.4, 12); // 0.6 − 0.2
    expect(result.equalized_odds_difference).toBeCloseTo(0.5, 12); // max(TPR gap 2/3 − 1/2, FPR gap 1/2 − 0)
    expect(result.disparate_impact_ratio).toBeCloseTo(1 / 3, 12); // 0.2 / 0.6
  });

  it('reports each failed threshold with its numbers and worst groups', () => {
    const result = fairnessMetrics(sensitive, actual, predicted);
    expect(
      checkFairness(result, {
        maxDemographicParityDifference: 0.5,
        maxEqualizedOddsDifference: 0.5,
        minDisparateImpactRatio: 0.3,
      }),
    ).toEqual({ passed: true, failures: [] });
    expect(
      checkFairness(result, {
        maxDemographicParityDifference: 0.1,
        maxEqualizedOddsDifference: 0.2,
        minDisparateImpactRatio: 0.8,
      }),
    ).toEqual({
      passed: false,
      failures: [
        'demographic_parity_difference = 0.4 (selection rate 0.6 for "F" vs 0.2 for "M") is above the maximum 0.1',
        'equalized_odds_difference = 0.5 (false positive rate 0.5 for "F" vs 0 for "M") is above the maximum 0.2',
        'disparate_impact_ratio = 0.3333 (selection rate 0.2 for "M" vs 0.6 for "F") is below the minimum 0.8',
      ],
    });
  });

  it('is neutral with one group or no selections', () => {
    const one = fairnessMetrics(['x', 'x'], [1, 0], [0, 0]);
    expect(one).toMatchObject({
      demographic_parity_difference: 0,
      equalized_odds_difference: 0,
      disparate_impact_ratio: 1,
    });
    expect(checkFairness(one, { maxDemographicParityDifference: 0, minDisparateImpactRatio: 1 }).passed).toBe(true);
  });
});

describe('evaluation plots', () => {
  /** Opening and closing tags balance (a cheap well-formedness check: no stray < from unescaped text). */
  const wellFormed = (svg: string, title: string) => {
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.endsWith('</svg>')).toBe(true);
    expect(svg).toContain(title);
    const stack: string[] = [];
    for (const [, close, name, self] of svg.matchAll(/<(\/?)([a-zA-Z]+)[^<>]*?(\/?)>/g)) {
      if (self) continue;
      if (close) expect(stack.pop()).toBe(name);
      else stack.push(name!);
    }
    expect(stack).toEqual([]);
    expect(svg.replace(/<[^<>]*>/g, '')).not.toMatch(/[<>]/);
  };

  it('draws each plot as well-formed SVG with escaped titles and labels', () => {
    const binary = classificationEvaluation(y, binaryProbabilities, ['no', 'yes']);
    wellFormed(rocCurveSvg(binary.curves.roc!, binary.metrics.roc_auc), 'ROC curve');
    expect(rocCurveSvg(binary.curves.roc!, binary.metrics.roc_auc)).toContain('AUC 0.6146');
    wellFormed(
      rocCurveSvg(binary.curves.roc!, undefined, 'ROC <model> & "v2"'),
      'ROC &#60;model&#62; &#38; &#34;v2&#34;',
    );
    wellFormed(precisionRecallSvg(binary.curves.pr!, binary.metrics.pr_auc), 'Precision–recall curve');
    const calibration = calibrationSvg(binary.curves.calibration.bins);
    wellFormed(calibration, 'Calibration');
    expect(calibration).toContain('stroke-dasharray'); // the y = x reference
    expect(calibration.match(/<circle/g)).toHaveLength(8);
    const confusion = confusionMatrixSvg(
      {
        labels: ['<a>', 'b & c'],
        matrix: [
          [5, 1],
          [0, 7],
        ],
      },
      'Confusion <test>',
    );
    wellFormed(confusion, 'Confusion &#60;test&#62;');
    expect(confusion).toContain('&#60;a&#62;');
    expect(confusion).toContain('>7</text>');
  });

  it('subsamples residuals to 5,000 points deterministically', () => {
    const random = seededRandom(3);
    const actual = Array.from({ length: 20_000 }, () => random() * 10);
    const predicted = actual.map((a) => a + random() - 0.5);
    const svg = residualsSvg(actual, predicted);
    wellFormed(svg, 'Residuals');
    expect(svg.match(/<circle/g)).toHaveLength(5000);
    expect(svg).toContain('5000 of 20000 points');
    expect(residualsSvg(actual, predicted)).toBe(svg);
    expect(residualsSvg([1, 2, 3], [1.5, 2, 2]).match(/<circle/g)).toHaveLength(3);
  });
});
