/** Holdout metrics for regression and classification, and the threshold gate over them. */

export function regressionMetrics(actual: ArrayLike<number>, predicted: ArrayLike<number>): Record<string, number> {
  const n = actual.length;
  let se = 0, ae = 0, sum = 0, absSum = 0;
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
export function classificationMetrics(actual: ArrayLike<number>, probabilities: ArrayLike<number>, classes: number): Record<string, number> {
  const n = actual.length;
  let correct = 0, logLoss = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (probabilities[i * classes + k]! > probabilities[i * classes + best]!) best = k;
    if (best === actual[i]) correct++;
    logLoss -= Math.log(Math.max(probabilities[i * classes + actual[i]!]!, 1e-15));
  }
  return { accuracy: correct / n, log_loss: logLoss / n, count: n };
}

export interface Gate {
  metric: string;
  min?: number;
  max?: number;
}

export interface GateResult {
  passed: boolean;
  failures: string[];
}

export function checkGates(metrics: Record<string, number>, gates: Gate[]): GateResult {
  const failures: string[] = [];
  for (const gate of gates) {
    const value = metrics[gate.metric];
    if (value === undefined || !Number.isFinite(value)) {
      failures.push(`${gate.metric}: not computed (available: ${Object.keys(metrics).join(', ')})`);
      continue;
    }
    if (gate.min !== undefined && value < gate.min) failures.push(`${gate.metric} = ${round(value)} is below the minimum ${gate.min}`);
    if (gate.max !== undefined && value > gate.max) failures.push(`${gate.metric} = ${round(value)} is above the maximum ${gate.max}`);
  }
  return { passed: failures.length === 0, failures };
}

function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}
