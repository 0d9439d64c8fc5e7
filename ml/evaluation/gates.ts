/**
 * Release gates, as MLflow's `MetricThreshold`: per metric an absolute threshold, and a minimum absolute or relative
 * improvement over a baseline (the current champion, scored on the same holdout), with a direction.
 * Pure: the evaluate activity computes the metrics, this decides.
 */

export interface Gate {
  metric: string;
  /** The candidate's value must be at least (greater is better) or at most (lower is better) this. */
  threshold?: number;
  /** Shorthands for a threshold with an explicit direction. */
  min?: number;
  max?: number;
  /** The candidate must beat the baseline by at least this much (in the metric's unit). */
  minAbsoluteChange?: number;
  /** … or by at least this fraction of the baseline's value (0.05 = 5 %). */
  minRelativeChange?: number;
  /** @default inferred from the name: errors, losses and calibration error are lower-is-better, the rest greater */
  greaterIsBetter?: boolean;
}

export interface GateCheck {
  metric: string;
  rule: string;
  value: number | null;
  baseline?: number;
  passed: boolean;
  /** Why a change rule was not applied (no champion yet). */
  skipped?: string;
}

export interface GateResult {
  passed: boolean;
  /** One line per failed check, with the numbers. */
  failures: string[];
  checks: GateCheck[];
}

/** What a registered version carries about its release. */
export interface ReleaseEvaluation {
  reportKey: string;
  plots: Record<string, string>;
  gate: GateResult;
  baseline: { version: number; metrics: Record<string, number> } | null;
}

const LOWER_IS_BETTER =
  /(^|_)(rmse|mse|mae|mape|wape|log_loss|loss|ece|brier|error|latency|demographic_parity_difference|equalized_odds_difference)$/;

export function greaterIsBetter(gate: Pick<Gate, 'metric' | 'greaterIsBetter'>): boolean {
  return gate.greaterIsBetter ?? !LOWER_IS_BETTER.test(gate.metric);
}

export function checkGates(
  metrics: Record<string, number>,
  gates: Gate[],
  baseline?: { version: number; metrics: Record<string, number> } | null,
): GateResult {
  const checks: GateCheck[] = [];
  const failures: string[] = [];
  for (const gate of gates) {
    const value = metrics[gate.metric];
    if (value === undefined || !Number.isFinite(value)) {
      checks.push({ metric: gate.metric, rule: 'computed', value: null, passed: false });
      failures.push(`${gate.metric}: not computed (available: ${Object.keys(metrics).join(', ')})`);
      continue;
    }
    const greater = greaterIsBetter(gate);
    const add = (rule: string, passed: boolean, failure: string, extra: Partial<GateCheck> = {}) => {
      checks.push({ metric: gate.metric, rule, value, passed, ...extra });
      if (!passed) failures.push(failure);
    };
    if (gate.min !== undefined)
      add(`>= ${gate.min}`, value >= gate.min, `${gate.metric} = ${round(value)} is below the minimum ${gate.min}`);
    if (gate.max !== undefined)
      add(`<= ${gate.max}`, value <= gate.max, `${gate.metric} = ${round(value)} is above the maximum ${gate.max}`);
    if (gate.threshold !== undefined) {
      const ok = greater ? value >= gate.threshold : value <= gate.threshold;
      add(
        `${greater ? '>=' : '<='} ${gate.threshold}`,
        ok,
        `${gate.metric} = ${round(value)} is ${greater ? 'below' : 'above'} the threshold ${gate.threshold}`,
      );
    }
    if (gate.minAbsoluteChange === undefined && gate.minRelativeChange === undefined) continue;
    const base = baseline?.metrics[gate.metric];
    if (!baseline || base === undefined || !Number.isFinite(base)) {
      checks.push({
        metric: gate.metric,
        rule: 'change vs champion',
        value,
        passed: true,
        skipped: baseline ? `champion v${baseline.version} has no ${gate.metric}` : 'no champion to compare with',
      });
      continue;
    }
    const gain = greater ? value - base : base - value;
    const versus = `${gate.metric} = ${round(value)} vs ${round(base)} for champion v${baseline.version}`;
    if (gate.minAbsoluteChange !== undefined) {
      add(
        `improves by >= ${gate.minAbsoluteChange}`,
        gain >= gate.minAbsoluteChange,
        `${versus}: improves by ${round(gain)}, needs at least ${gate.minAbsoluteChange} (${greater ? 'higher' : 'lower'} is better)`,
        { baseline: base },
      );
    }
    if (gate.minRelativeChange !== undefined) {
      const relative = base === 0 ? (gain > 0 ? Infinity : 0) : gain / Math.abs(base);
      add(
        `improves by >= ${gate.minRelativeChange * 100} %`,
        relative >= gate.minRelativeChange,
        `${versus}: improves by ${round(relative * 100)} %, needs at least ${round(gate.minRelativeChange * 100)} % (${greater ? 'higher' : 'lower'} is better)`,
        { baseline: base },
      );
    }
  }
  return { passed: failures.length === 0, failures, checks };
}

function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}
