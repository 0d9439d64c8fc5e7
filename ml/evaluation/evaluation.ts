/**
 * The evaluation of a model release, as pure functions (no I/O): classification and regression metrics with
 * their curves, metrics per slice, fairness gaps over a sensitive attribute, and the SVG plots of each.
 * Definitions follow scikit-learn (metrics) and fairlearn (fairness), so the numbers can be checked against them.
 */

import { regressionMetrics } from './metrics';
import { heatmapSvg, lineChartSvg, scatterSvg, stride } from './plot';

export interface RocCurve {
  fpr: number[];
  tpr: number[];
}
export interface PrCurve {
  recall: number[];
  precision: number[];
}
export interface CalibrationBin {
  meanPredicted: number;
  fractionPositive: number;
  count: number;
}
export interface Confusion {
  labels: string[];
  /** [actual][predicted] counts. */ matrix: number[][];
}

export interface ClassificationEvaluation {
  metrics: Record<string, number>;
  confusion: Confusion;
  curves: { roc?: RocCurve; pr?: PrCurve; calibration: { bins: CalibrationBin[] } };
}

/** Curves keep at most this many points (evenly thinned), so they stay small as artifacts and plots. */
const MAX_CURVE_POINTS = 1000;
/**
 * Right-closed equal-width bins [0, .1], (.1, .2], …, (.9, 1], with numpy's linspace edges (as sklearn's
 * calibration_curve).
 */
const BIN_EDGES = Array.from({ length: 9 }, (_, i) => (i + 1) * 0.1);
const binOf = (p: number) => {
  let b = 0;
  while (b < 9 && BIN_EDGES[b]! < p) b++;
  return b;
};

/**
 * Metrics, confusion matrix and curves of a classifier on a holdout. `actual` holds class indices into `classes`,
 * `probabilities` is row-major n × classes.length; the prediction is the arg-max class (the first on ties).
 *
 * - accuracy; precision, recall, f1: of class 1 when binary, else macro averages over the classes present in
 *   actual or predicted (sklearn's default labels), 0 where undefined (sklearn's zero_division).
 * - roc_auc: binary AUC of the class-1 probability as the Mann–Whitney statistic with tied scores counted half
 *   (= sklearn roc_auc_score); multiclass: macro one-vs-rest over the classes present in `actual`.
 * - pr_auc: average precision (= sklearn average_precision_score), binary or macro one-vs-rest likewise.
 *   Both are omitted (not NaN) when `actual` holds fewer than two classes, and so are the roc and pr curves.
 * - log_loss: probabilities clipped to [1e-15, 1 − 1e-15] and each row renormalised (sklearn log_loss with
 *   eps=1e-15, its default before 1.2; 1.2's eps='auto' clips at float64 epsilon, which differs only for p < 1e-15).
 * - ece: expected calibration error of the top-label confidence against correctness, 10 equal-width bins.
 * - brier: binary only, mean squared error of the class-1 probability (sklearn brier_score_loss).
 *
 * Curves: roc and pr are binary only (class 1 positive): roc as sklearn roc_curve (drop_intermediate), pr as
 * sklearn precision_recall_curve in order of decreasing threshold from (recall 0, precision 1). Calibration bins
 * (non-empty only): binary, the class-1 probability against the fraction of class 1 (sklearn calibration_curve,
 * 10 uniform bins); multiclass, the top-label confidence against the fraction predicted correctly.
 */
export function classificationEvaluation(
  actual: ArrayLike<number>,
  probabilities: ArrayLike<number>,
  classes: string[],
): ClassificationEvaluation {
  const n = actual.length,
    k = classes.length;
  if (k < 2) throw new Error(`classificationEvaluation: needs at least 2 classes, got ${k}`);
  if (n === 0) throw new Error('classificationEvaluation: no rows');
  if (probabilities.length !== n * k)
    throw new Error(
      `classificationEvaluation: expected ${n} × ${k} = ${n * k} probabilities, got ${probabilities.length}`,
    );
  for (let i = 0; i < n; i++) {
    const y = actual[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= k)
      throw new Error(`classificationEvaluation: row ${i}: actual ${y} is not a class index in 0..${k - 1}`);
  }
  for (let j = 0; j < n * k; j++) {
    if (!Number.isFinite(probabilities[j]!))
      throw new Error(
        `classificationEvaluation: row ${Math.floor(j / k)}: probability ${probabilities[j]} is not finite`,
      );
  }

  const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const eceBins = Array.from({ length: 10 }, () => ({ confidence: 0, correct: 0, count: 0 }));
  let correct = 0,
    logLoss = 0;
  for (let i = 0; i < n; i++) {
    const y = actual[i]!,
      row = i * k;
    let best = 0,
      sum = 0;
    for (let c = 0; c < k; c++) {
      const p = probabilities[row + c]!;
      if (p > probabilities[row + best]!) best = c;
      sum += clip(p);
    }
    matrix[y]![best]!++;
    if (best === y) correct++;
    logLoss -= Math.log(clip(probabilities[row + y]!) / sum);
    const confidence = probabilities[row + best]!;
    const bin = eceBins[binOf(confidence)]!;
    bin.confidence += confidence;
    bin.count++;
    if (best === y) bin.correct++;
  }

  const metrics: Record<string, number> = { accuracy: correct / n };
  const present = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  if (k === 2) {
    Object.assign(metrics, classScores(matrix, 1));
  } else {
    const scored = classes.map((_, c) => c).filter((c) => present[c]! > 0 || matrix.some((row) => row[c]! > 0));
    const scores = scored.map((c) => classScores(matrix, c));
    for (const key of ['precision', 'recall', 'f1'] as const) metrics[key] = mean(scores.map((s) => s[key]));
  }

  const curves: ClassificationEvaluation['curves'] = { calibration: { bins: [] } };
  if (present.filter((count) => count > 0).length >= 2) {
    if (k === 2) {
      const ranked = rankGroups(actual, probabilities, 2, 1);
      metrics.roc_auc = ranked.auc;
      metrics.pr_auc = ranked.averagePrecision;
      curves.roc = ranked.roc;
      curves.pr = ranked.pr;
    } else {
      const ranked = classes
        .map((_, c) => c)
        .filter((c) => present[c]! > 0)
        .map((c) => rankGroups(actual, probabilities, k, c));
      metrics.roc_auc = mean(ranked.map((r) => r.auc));
      metrics.pr_auc = mean(ranked.map((r) => r.averagePrecision));
    }
  }
  metrics.log_loss = logLoss / n;
  metrics.ece =
    eceBins.reduce(
      (sum, b) => sum + (b.count ? Math.abs(b.correct / b.count - b.confidence / b.count) * b.count : 0),
      0,
    ) / n;

  if (k === 2) {
    let brier = 0;
    const bins = Array.from({ length: 10 }, () => ({ predicted: 0, positive: 0, count: 0 }));
    for (let i = 0; i < n; i++) {
      const p = probabilities[i * 2 + 1]!,
        y = actual[i] === 1 ? 1 : 0;
      brier += (p - y) ** 2;
      const bin = bins[binOf(p)]!;
      bin.predicted += p;
      bin.positive += y;
      bin.count++;
    }
    metrics.brier = brier / n;
    curves.calibration.bins = bins
      .filter((b) => b.count > 0)
      .map((b) => ({ meanPredicted: b.predicted / b.count, fractionPositive: b.positive / b.count, count: b.count }));
  } else {
    curves.calibration.bins = eceBins
      .filter((b) => b.count > 0)
      .map((b) => ({ meanPredicted: b.confidence / b.count, fractionPositive: b.correct / b.count, count: b.count }));
  }
  metrics.count = n;
  return { metrics, confusion: { labels: classes.slice(), matrix }, curves };
}

const clip = (p: number) => Math.min(Math.max(p, 1e-15), 1 - 1e-15);
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/** Precision, recall and F1 of class `c` from a confusion matrix, 0 where a denominator is 0. */
function classScores(matrix: number[][], c: number) {
  const tp = matrix[c]![c]!;
  const predicted = matrix.reduce((sum, row) => sum + row[c]!, 0);
  const actual = matrix[c]!.reduce((a, b) => a + b, 0);
  const precision = predicted ? tp / predicted : 0,
    recall = actual ? tp / actual : 0;
  return { precision, recall, f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
}

/**
 * One-vs-rest ranking of class `c` by its probability column: rows sorted by decreasing score, tied scores
 * grouped into one threshold. Needs both positives and negatives.
 */
function rankGroups(actual: ArrayLike<number>, probabilities: ArrayLike<number>, k: number, c: number) {
  const n = actual.length;
  const score = new Float64Array(n);
  for (let i = 0; i < n; i++) score[i] = probabilities[i * k + c]!;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => score[b]! - score[a]!);
  // Cumulative true and false positives at each distinct threshold.
  const tps: number[] = [],
    fps: number[] = [];
  let tp = 0,
    fp = 0;
  for (let j = 0; j < n; j++) {
    const i = order[j]!;
    if (actual[i] === c) tp++;
    else fp++;
    if (j === n - 1 || score[order[j + 1]!] !== score[i]) {
      tps.push(tp);
      fps.push(fp);
    }
  }
  const positives = tp,
    negatives = fp;
  // AUC = P(score of a positive > score of a negative) + ½ P(tie): each negative counts the positives ranked
  // above it plus half those tied with it; doubled so the sum stays an exact integer.
  let twiceU = 0,
    average = 0,
    prevTp = 0,
    prevFp = 0;
  for (let g = 0; g < tps.length; g++) {
    const groupTp = tps[g]! - prevTp,
      groupFp = fps[g]! - prevFp;
    twiceU += groupFp * (2 * prevTp + groupTp);
    average += (groupTp / positives) * (tps[g]! / (tps[g]! + fps[g]!));
    prevTp = tps[g]!;
    prevFp = fps[g]!;
  }
  // ROC as sklearn's roc_curve(drop_intermediate=True): drop the points collinear with both neighbours, then prepend
  // (0, 0).
  const keep = tps.map(
    (_, g) =>
      g === 0 ||
      g === tps.length - 1 ||
      tps[g + 1]! - 2 * tps[g]! + tps[g - 1]! !== 0 ||
      fps[g + 1]! - 2 * fps[g]! + fps[g - 1]! !== 0,
  );
  const rocIdx = stride(
    tps.map((_, g) => g).filter((g) => keep[g]),
    MAX_CURVE_POINTS - 1,
  );
  if (rocIdx[rocIdx.length - 1] !== tps.length - 1) rocIdx[rocIdx.length - 1] = tps.length - 1;
  const roc = {
    fpr: [0, ...rocIdx.map((g) => fps[g]! / negatives)],
    tpr: [0, ...rocIdx.map((g) => tps[g]! / positives)],
  };
  // PR as sklearn's precision_recall_curve: thresholds down to the first that reaches full recall.
  const full = tps.indexOf(positives);
  const prIdx = stride(
    tps.slice(0, full + 1).map((_, g) => g),
    MAX_CURVE_POINTS - 1,
  );
  if (prIdx[prIdx.length - 1] !== full) prIdx[prIdx.length - 1] = full;
  const pr = {
    recall: [0, ...prIdx.map((g) => tps[g]! / positives)],
    precision: [1, ...prIdx.map((g) => tps[g]! / (tps[g]! + fps[g]!))],
  };
  return { auc: twiceU / (2 * positives * negatives), averagePrecision: average, roc, pr };
}

/**
 * Regression metrics: `regressionMetrics` (rmse, mae, r2, wape, count; same values) plus mape, the mean of
 * |error| / |actual| as a fraction over the rows whose actual is not 0; `mape_skipped` counts the rows left out
 * and is present only when some were, and mape is absent when every actual is 0.
 */
export function regressionEvaluation(
  actual: ArrayLike<number>,
  predicted: ArrayLike<number>,
): { metrics: Record<string, number> } {
  const n = actual.length;
  if (predicted.length !== n) throw new Error(`regressionEvaluation: ${n} actuals but ${predicted.length} predictions`);
  const metrics = regressionMetrics(actual, predicted);
  let ape = 0,
    used = 0;
  for (let i = 0; i < n; i++) {
    if (actual[i] === 0) continue;
    ape += Math.abs((predicted[i]! - actual[i]!) / actual[i]!);
    used++;
  }
  if (used > 0) metrics.mape = ape / used;
  if (used < n) metrics.mape_skipped = n - used;
  return { metrics };
}

export interface SliceResult {
  value: string;
  rows: number;
  metrics: Record<string, number>;
}

/**
 * Metrics per value of a slicing column: `evaluate` gets the (ascending) row indices of each slice.
 * The `maxSlices` largest values with at least `minRows` rows are reported by name; the rows of every other
 * value are pooled into one "(other)" slice, itself reported only when it has at least `minRows` rows.
 * Nulls form the "(null)" slice. Results are sorted by rows, largest first (ties by value).
 * A real value spelled "(null)" or "(other)" stays a slice of its own, apart from these.
 */
export function sliceMetrics(
  sliceValues: ArrayLike<string | null>,
  evaluate: (rows: Int32Array) => Record<string, number>,
  opts: { maxSlices?: number; minRows?: number } = {},
): SliceResult[] {
  const { maxSlices = 50, minRows = 1 } = opts;
  const n = sliceValues.length;
  const ids = new Map<string | null, number>();
  const code = new Int32Array(n);
  const counts: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = sliceValues[i] ?? null;
    let id = ids.get(v);
    if (id === undefined) {
      id = ids.size;
      ids.set(v, id);
      counts.push(0);
    }
    code[i] = id;
    counts[id]!++;
  }
  const values = [...ids.keys()];
  const label = (v: string | null) => v ?? '(null)';
  const ranked = values
    .map((_, id) => id)
    .sort((a, b) => counts[b]! - counts[a]! || compare(label(values[a]!), label(values[b]!)));
  const named = ranked.filter((id) => counts[id]! >= minRows).slice(0, maxSlices);
  const slot = new Int32Array(values.length).fill(named.length); // slot named.length is "(other)"
  named.forEach((id, s) => {
    slot[id] = s;
  });
  const sizes = new Int32Array(named.length + 1);
  for (let i = 0; i < n; i++) sizes[slot[code[i]!]!]!++;
  const rows = Array.from(sizes, (size) => new Int32Array(size));
  const fill = new Int32Array(named.length + 1);
  for (let i = 0; i < n; i++) {
    const s = slot[code[i]!]!;
    rows[s]![fill[s]!++] = i;
  }
  const out: SliceResult[] = named.map((id, s) => ({
    value: label(values[id]!),
    rows: sizes[s]!,
    metrics: evaluate(rows[s]!),
  }));
  const other = sizes[named.length]!;
  if (other > 0 && other >= minRows)
    out.push({ value: '(other)', rows: other, metrics: evaluate(rows[named.length]!) });
  return out.sort((a, b) => b.rows - a.rows || compare(a.value, b.value));
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface FairnessGroup {
  value: string;
  rows: number;
  /** Fraction predicted positive. */
  selectionRate: number;
  /** True positive rate; NaN for a group without actual positives. */
  tpr: number;
  /** False positive rate; NaN for a group without actual negatives. */
  fpr: number;
}

export interface FairnessResult {
  groups: FairnessGroup[];
  /** max − min selection rate over groups (fairlearn demographic_parity_difference). */
  demographic_parity_difference: number;
  /** max(TPR gap, FPR gap) over groups (fairlearn equalized_odds_difference). */
  equalized_odds_difference: number;
  /** min / max selection rate (fairlearn demographic_parity_ratio); 1 when every rate is 0. */
  disparate_impact_ratio: number;
}

/**
 * Group fairness of a binary decision over a sensitive attribute, as fairlearn defines it. Nulls form the
 * "(null)" group; groups are sorted by rows, largest first. A group's TPR (FPR) is NaN when it has no actual
 * positives (negatives) and is then left out of the TPR (FPR) gap; a gap over fewer than two groups is 0.
 */
export function fairnessMetrics(
  sensitive: ArrayLike<string | null>,
  actualPositive: ArrayLike<boolean | number>,
  predictedPositive: ArrayLike<boolean | number>,
): FairnessResult {
  const n = sensitive.length;
  if (actualPositive.length !== n || predictedPositive.length !== n) {
    throw new Error(
      `fairnessMetrics: ${n} sensitive values, ${actualPositive.length} actuals, ${predictedPositive.length} predictions`,
    );
  }
  const tally = new Map<
    string | null,
    { rows: number; selected: number; positives: number; tp: number; negatives: number; fp: number }
  >();
  for (let i = 0; i < n; i++) {
    const v = sensitive[i] ?? null;
    let t = tally.get(v);
    if (!t) {
      t = { rows: 0, selected: 0, positives: 0, tp: 0, negatives: 0, fp: 0 };
      tally.set(v, t);
    }
    const yes = Boolean(actualPositive[i]),
      predicted = Boolean(predictedPositive[i]);
    t.rows++;
    if (predicted) t.selected++;
    if (yes) {
      t.positives++;
      if (predicted) t.tp++;
    } else {
      t.negatives++;
      if (predicted) t.fp++;
    }
  }
  const groups: FairnessGroup[] = [...tally]
    .map(([v, t]) => ({
      value: v ?? '(null)',
      rows: t.rows,
      selectionRate: t.selected / t.rows,
      tpr: t.positives ? t.tp / t.positives : NaN,
      fpr: t.negatives ? t.fp / t.negatives : NaN,
    }))
    .sort((a, b) => b.rows - a.rows || compare(a.value, b.value));
  const selection = spread(groups, 'selectionRate');
  return {
    groups,
    demographic_parity_difference: selection.gap,
    equalized_odds_difference: Math.max(spread(groups, 'tpr').gap, spread(groups, 'fpr').gap),
    disparate_impact_ratio:
      selection.high && selection.high.selectionRate > 0
        ? selection.low!.selectionRate / selection.high.selectionRate
        : 1,
  };
}

/** The groups with the lowest and highest finite `key`, and the gap between them (0 below two groups). */
function spread(groups: FairnessGroup[], key: 'selectionRate' | 'tpr' | 'fpr') {
  let low: FairnessGroup | undefined,
    high: FairnessGroup | undefined,
    count = 0;
  for (const g of groups) {
    if (!Number.isFinite(g[key])) continue;
    count++;
    if (!low || g[key] < low[key]) low = g;
    if (!high || g[key] > high[key]) high = g;
  }
  return { low, high, gap: count >= 2 ? high![key] - low![key] : 0 };
}

export interface FairnessThresholds {
  maxDemographicParityDifference?: number;
  maxEqualizedOddsDifference?: number;
  minDisparateImpactRatio?: number;
}

/** The fairness gate: each failure names the value, the two groups behind it with their rates, and the threshold. */
export function checkFairness(
  result: FairnessResult,
  thresholds: FairnessThresholds,
): { passed: boolean; failures: string[] } {
  const failures: string[] = [];
  const rates = (name: string, key: 'selectionRate' | 'tpr' | 'fpr', first: FairnessGroup, second: FairnessGroup) =>
    `(${name} ${round(first[key])} for ${JSON.stringify(first.value)} vs ${round(second[key])} for ${JSON.stringify(second.value)})`;
  const selection = spread(result.groups, 'selectionRate');
  const dpd = result.demographic_parity_difference;
  if (thresholds.maxDemographicParityDifference !== undefined && dpd > thresholds.maxDemographicParityDifference) {
    failures.push(
      `demographic_parity_difference = ${round(dpd)} ${rates('selection rate', 'selectionRate', selection.high!, selection.low!)} is above the maximum ${thresholds.maxDemographicParityDifference}`,
    );
  }
  const eod = result.equalized_odds_difference;
  if (thresholds.maxEqualizedOddsDifference !== undefined && eod > thresholds.maxEqualizedOddsDifference) {
    const tpr = spread(result.groups, 'tpr'),
      fpr = spread(result.groups, 'fpr');
    const detail =
      tpr.gap >= fpr.gap
        ? rates('true positive rate', 'tpr', tpr.high!, tpr.low!)
        : rates('false positive rate', 'fpr', fpr.high!, fpr.low!);
    failures.push(
      `equalized_odds_difference = ${round(eod)} ${detail} is above the maximum ${thresholds.maxEqualizedOddsDifference}`,
    );
  }
  const dir = result.disparate_impact_ratio;
  if (thresholds.minDisparateImpactRatio !== undefined && dir < thresholds.minDisparateImpactRatio) {
    failures.push(
      `disparate_impact_ratio = ${round(dir)} ${rates('selection rate', 'selectionRate', selection.low!, selection.high!)} is below the minimum ${thresholds.minDisparateImpactRatio}`,
    );
  }
  return { passed: failures.length === 0, failures };
}

function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}

// ---------------------------------------------------------------------------------------------- plots

const UNIT = { minX: 0, maxX: 1, minY: 0, maxY: 1 };
const fixed = (v: number) => String(Number(v.toFixed(4)));
const pairs = (xs: number[], ys: number[]) => xs.map((x, i) => ({ x, y: ys[i]! }));

/** The ROC curve with the chance diagonal. */
export function rocCurveSvg(roc: RocCurve, auc?: number, title = 'ROC curve'): string {
  const name = auc === undefined ? 'model' : `AUC ${fixed(auc)}`;
  return lineChartSvg(
    title,
    [{ name, points: pairs(roc.fpr, roc.tpr) }],
    { x: 'false positive rate', y: 'true positive rate' },
    640,
    360,
    { domain: UNIT, diagonal: true },
  );
}

export function precisionRecallSvg(pr: PrCurve, averagePrecision?: number, title = 'Precision–recall curve'): string {
  const name = averagePrecision === undefined ? 'model' : `AP ${fixed(averagePrecision)}`;
  return lineChartSvg(
    title,
    [{ name, points: pairs(pr.recall, pr.precision) }],
    { x: 'recall', y: 'precision' },
    640,
    360,
    { domain: UNIT },
  );
}

/** Reliability diagram: mean predicted probability against the observed fraction per bin, with y = x. */
export function calibrationSvg(bins: CalibrationBin[], title = 'Calibration'): string {
  const points = bins.map((b) => ({ x: b.meanPredicted, y: b.fractionPositive }));
  return lineChartSvg(
    title,
    [{ name: 'model', points }],
    { x: 'mean predicted probability', y: 'fraction positive' },
    640,
    360,
    { domain: UNIT, diagonal: true, markers: true },
  );
}

/** Residual (actual − predicted) against predicted, at most 5,000 evenly strided points, with the zero line. */
export function residualsSvg(actual: ArrayLike<number>, predicted: ArrayLike<number>, title = 'Residuals'): string {
  const n = Math.min(actual.length, predicted.length);
  const points = new Array<{ x: number; y: number }>(n);
  for (let i = 0; i < n; i++) points[i] = { x: predicted[i]!, y: actual[i]! - predicted[i]! };
  return scatterSvg(
    title,
    points,
    { x: 'predicted', y: 'residual (actual − predicted)' },
    { hline: 0, maxPoints: 5000 },
  );
}

/** Counts per (actual, predicted) cell, shaded by the share of the actual class's rows (its recall on the diagonal). */
export function confusionMatrixSvg(confusion: Confusion, title = 'Confusion matrix'): string {
  const cells = confusion.matrix.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count) => ({ shade: total ? count / total : 0, text: String(count) }));
  });
  return heatmapSvg(title, confusion.labels, confusion.labels, cells, { x: 'predicted', y: 'actual' });
}
