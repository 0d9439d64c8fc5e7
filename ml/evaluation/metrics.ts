/** Holdout metrics for regression and classification (gates: `gates.ts`; the full report: `evaluation.ts`). */

export function regressionMetrics(actual: ArrayLike<number>, predicted: ArrayLike<number>): Record<string, number> {
  const n = actual.length;
  let se = 0,
    ae = 0,
    sum = 0,
    absSum = 0;
  for (let i = 0; i < n; i++) {
    const error = predicted[i]! - actual[i]!;
    se += error * error;
    ae += Math.abs(error);
    sum += actual[i]!;
    absSum += Math.abs(actual[i]!);
  }
  const mean = sum / n;
  let tss = 0;
  for (let i = 0; i < n; i++) tss += (actual[i]! - mean) ** 2;
  return {
    rmse: Math.sqrt(se / n),
    mae: ae / n,
    r2: tss > 0 ? 1 - se / tss : 0,
    /** Weighted absolute percentage error: robust where actuals are near zero (unlike MAPE). */
    wape: absSum > 0 ? ae / absSum : 0,
    count: n,
  };
}

/** `probabilities` is row-major n × classes. */
export function classificationMetrics(
  actual: ArrayLike<number>,
  probabilities: ArrayLike<number>,
  classes: number,
): Record<string, number> {
  const n = actual.length;
  let correct = 0,
    logLoss = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++)
      if (probabilities[i * classes + k]! > probabilities[i * classes + best]!) best = k;
    if (best === actual[i]) correct++;
    logLoss -= Math.log(Math.max(probabilities[i * classes + actual[i]!]!, 1e-15));
  }
  return { accuracy: correct / n, log_loss: logLoss / n, count: n };
}

/**
 * Quality on labels that arrived after serving: rmse for regression (non-numeric labels skipped), or accuracy when
 * `classes` is given (the log holds the predicted class index, labels are class names).
 */
export function labelledQuality(
  pairs: { prediction: number; label: string }[],
  classes?: string[],
): { name: 'rmse' | 'accuracy'; value: number; labels: number } | null {
  if (classes) {
    if (pairs.length === 0) return null;
    return {
      name: 'accuracy',
      value: pairs.filter((p) => classes[p.prediction] === p.label).length / pairs.length,
      labels: pairs.length,
    };
  }
  const numeric = pairs.map((p) => [Number(p.label), p.prediction] as const).filter(([y]) => Number.isFinite(y));
  if (numeric.length === 0) return null;
  return {
    name: 'rmse',
    value: Math.sqrt(numeric.reduce((sum, [y, p]) => sum + (y - p) ** 2, 0) / numeric.length),
    labels: numeric.length,
  };
}
